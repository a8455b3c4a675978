//! Why an authentication configuration could not be loaded.
//!
//! Every message names the file (and for password files the line) so an operator can fix it
//! without guessing. No message ever contains a password, a hash or a key: a log line about a
//! broken Secret must not leak the Secret.

use std::path::PathBuf;

use crate::config::JwtAlgorithm;

/// A credential source in the authentication configuration is unusable; the whole configuration
/// revision is refused and the previous one stays in force.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A password or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file, as resolved against the configuration directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// One line of the password file is malformed.
    #[error("{path} line {line}: {problem}")]
    PasswordLine {
        /// The password file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        problem: PasswordLineProblem,
    },
    /// A JWT verification key file does not hold a key for its algorithm.
    #[error("{path}: not a usable {algorithm:?} key: {reason}")]
    JwtKey {
        /// The key file.
        path: PathBuf,
        /// The algorithm the configuration says the key is for.
        algorithm: JwtAlgorithm,
        /// Why the key was refused.
        reason: String,
    },
    /// `jwt` is configured without any key, so no token could ever verify.
    #[error("auth.jwt.keys: at least one verification key is required")]
    NoJwtKeys,
}

/// What is wrong with a password file line. Deliberately never carries the hash text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordLineProblem {
    /// The line is not valid UTF-8.
    #[error("the line is not valid UTF-8")]
    NotUtf8,
    /// No `:` separates the username from the hash.
    #[error("expected `username:hash`")]
    MissingSeparator,
    /// The part before `:` is empty.
    #[error("the username is empty")]
    EmptyUsername,
    /// The same username appears twice; which entry wins would be a guess.
    #[error("user `{username}` is already defined on line {first_line}")]
    DuplicateUser {
        /// The repeated username.
        username: String,
        /// Where it was first defined.
        first_line: usize,
    },
    /// The hash is in no scheme Tern verifies (a plain-text password, for instance).
    #[error(
        "unsupported password hash; expected `$7$` (PBKDF2-SHA512), `$6$` (SHA-512) or \
         `$argon2id$` — hash plain-text files with `mosquitto_passwd -U`"
    )]
    UnsupportedScheme,
    /// The hash has a known scheme but a broken field.
    #[error("malformed {scheme} hash: {field}")]
    MalformedHash {
        /// The scheme, e.g. `$7$`.
        scheme: &'static str,
        /// Which field is wrong and how.
        field: &'static str,
    },
}
