//! Password files in `mosquitto_passwd` format, so existing Mosquitto deployments move over
//! with their files unchanged.
//!
//! Each line is `username:hash`; blank lines and lines starting with `#` are ignored. The hash
//! schemes are Mosquitto's (`libcommon/password_common.c`):
//! - `$7$<iterations>$<base64 salt>$<base64 hash>`: PBKDF2-HMAC-SHA512, 64-byte hash. Mosquitto
//!   2.0 writes 12-byte salts and 101 iterations, 2.1 writes 64-byte salts and 1000 iterations.
//! - `$6$<base64 salt>$<base64 hash>`: SHA-512 over the password followed by the salt
//!   (Mosquitto 1.6 and earlier).
//! - `$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>`: a PHC string (Mosquitto 2.1).
//!
//! Every hash is parsed when the file is loaded, so a broken line rejects the configuration
//! revision instead of failing one client at a time later. Verification is deliberately slow
//! (that is the point of these schemes): see [`crate::auth::Authenticator`] for where it runs.

use std::collections::HashMap;
use std::path::Path;

use argon2::{Argon2, PasswordVerifier};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::error::{AuthError, PasswordLineProblem};
use super::fingerprint;

/// Standard base64 as OpenSSL writes it, also accepting hand-made files without padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Iterations [`hash_password`] uses: Mosquitto 2.1's default for `$7$` hashes.
pub const DEFAULT_ITERATIONS: u32 = 1000;

/// Salt length [`hash_password`] uses: 12 bytes, the length Mosquitto 2.0 writes and the only
/// one it reads, so generated files work with every Mosquitto 2.x as well as with Tern.
const SALT_LEN: usize = 12;

/// Length of a SHA-512 (and PBKDF2-SHA512) hash.
const HASH_LEN: usize = 64;

/// The users of one password file, with their parsed hashes.
pub struct PasswordFile {
    users: HashMap<String, StoredPassword>,
}

/// One user's hash, ready to verify.
struct StoredPassword {
    hash: PasswordHash,
    /// Fingerprint of the hash text: changes exactly when the user's password entry changes.
    credential: u64,
}

/// The schemes a password file line may use.
enum PasswordHash {
    /// `$6$`: SHA-512(password ‖ salt).
    Sha512 { salt: Vec<u8>, hash: [u8; HASH_LEN] },
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
    /// `$argon2id$`: the PHC string, validated at load, re-parsed (cheaply) to verify.
    Argon2id(String),
}

/// The outcome of checking one username and password against the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is right; `credential` fingerprints the entry that matched.
    Match {
        /// Fingerprint of the user's hash line, for [`crate::auth::Identity::credential`].
        credential: u64,
    },
    /// The user exists but the password is wrong.
    Mismatch,
    /// No such user in the file.
    UnknownUser,
}

impl PasswordFile {
    /// Parses a password file's contents; `path` only names the file in errors.
    pub fn parse(contents: &[u8], path: &Path) -> Result<PasswordFile, AuthError> {
        let mut users = HashMap::new();
        let mut first_lines: HashMap<String, usize> = HashMap::new();
        for (index, raw_line) in contents.split(|&byte| byte == b'\n').enumerate() {
            let line_number = index + 1;
            let line_error = |problem| AuthError::PasswordLine {
                path: path.to_path_buf(),
                line: line_number,
                problem,
            };
            let line = std::str::from_utf8(raw_line)
                .map_err(|_| line_error(PasswordLineProblem::NotUtf8))?
                .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (username, hash_text) = line
                .split_once(':')
                .ok_or_else(|| line_error(PasswordLineProblem::MissingSeparator))?;
            let username = username.trim();
            let hash_text = hash_text.trim();
            if username.is_empty() {
                return Err(line_error(PasswordLineProblem::EmptyUsername));
            }
            if let Some(&first_line) = first_lines.get(username) {
                return Err(line_error(PasswordLineProblem::DuplicateUser {
                    username: username.to_owned(),
                    first_line,
                }));
            }
            let hash = PasswordHash::parse(hash_text).map_err(line_error)?;
            first_lines.insert(username.to_owned(), line_number);
            users.insert(
                username.to_owned(),
                StoredPassword {
                    hash,
                    credential: fingerprint(hash_text.as_bytes()),
                },
            );
        }
        Ok(PasswordFile { users })
    }

    /// Checks `password` for `username`. Slow by design for a match or mismatch (PBKDF2 or
    /// argon2); immediate for an unknown user.
    pub fn check(&self, username: &str, password: &[u8]) -> PasswordCheck {
        match self.users.get(username) {
            None => PasswordCheck::UnknownUser,
            Some(stored) if stored.hash.verify(password) => PasswordCheck::Match {
                credential: stored.credential,
            },
            Some(_) => PasswordCheck::Mismatch,
        }
    }

    /// The fingerprint of `username`'s current entry, or `None` if the user is not in the file.
    pub fn credential(&self, username: &str) -> Option<u64> {
        self.users.get(username).map(|stored| stored.credential)
    }

    /// How many users the file defines.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file defines no user at all.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl PasswordHash {
    fn parse(text: &str) -> Result<PasswordHash, PasswordLineProblem> {
        if let Some(fields) = text.strip_prefix("$7$") {
            Self::parse_pbkdf2(fields)
        } else if let Some(fields) = text.strip_prefix("$6$") {
            Self::parse_sha512(fields)
        } else if text.starts_with("$argon2id$") {
            Self::parse_argon2id(text)
        } else {
            Err(PasswordLineProblem::UnsupportedScheme)
        }
    }

    fn parse_pbkdf2(fields: &str) -> Result<PasswordHash, PasswordLineProblem> {
        const SCHEME: &str = "$7$";
        let malformed = |field| PasswordLineProblem::MalformedHash {
            scheme: SCHEME,
            field,
        };
        let mut parts = fields.split('$');
        let iterations = parts
            .next()
            .and_then(|text| text.parse::<u32>().ok())
            .filter(|&count| count > 0)
            .ok_or(malformed("the iteration count is not a positive number"))?;
        let salt = parts
            .next()
            .and_then(decode_salt)
            .ok_or(malformed("the salt is not non-empty base64"))?;
        let hash = parts
            .next()
            .and_then(decode_hash)
            .ok_or(malformed("the hash is not 64 bytes of base64"))?;
        if parts.next().is_some() {
            return Err(malformed("unexpected `$` after the hash"));
        }
        Ok(PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        })
    }

    fn parse_sha512(fields: &str) -> Result<PasswordHash, PasswordLineProblem> {
        const SCHEME: &str = "$6$";
        let malformed = |field| PasswordLineProblem::MalformedHash {
            scheme: SCHEME,
            field,
        };
        let mut parts = fields.split('$');
        let salt = parts
            .next()
            .and_then(decode_salt)
            .ok_or(malformed("the salt is not non-empty base64"))?;
        let hash = parts
            .next()
            .and_then(decode_hash)
            .ok_or(malformed("the hash is not 64 bytes of base64"))?;
        if parts.next().is_some() {
            return Err(malformed("unexpected `$` after the hash"));
        }
        Ok(PasswordHash::Sha512 { salt, hash })
    }

    fn parse_argon2id(text: &str) -> Result<PasswordHash, PasswordLineProblem> {
        let malformed = |field| PasswordLineProblem::MalformedHash {
            scheme: "$argon2id$",
            field,
        };
        let parsed =
            argon2::PasswordHash::new(text).map_err(|_| malformed("not a valid PHC string"))?;
        argon2::Params::try_from(&parsed)
            .map_err(|_| malformed("invalid argon2 parameters (m, t, p)"))?;
        if parsed.hash.is_none() {
            return Err(malformed("the hash is missing"));
        }
        Ok(PasswordHash::Argon2id(text.to_owned()))
    }

    /// Whether `password` produces this hash, compared in constant time.
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Sha512 { salt, hash } => {
                let computed = Sha512::new()
                    .chain_update(password)
                    .chain_update(salt)
                    .finalize();
                computed.as_slice().ct_eq(hash).into()
            }
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut computed = [0u8; HASH_LEN];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut computed);
                computed.ct_eq(hash).into()
            }
            // The argon2 crate compares in constant time itself.
            PasswordHash::Argon2id(text) => argon2::PasswordHash::new(text)
                .map(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
                .unwrap_or(false),
        }
    }
}

fn decode_salt(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text).ok().filter(|salt| !salt.is_empty())
}

fn decode_hash(text: &str) -> Option<[u8; HASH_LEN]> {
    BASE64
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; HASH_LEN]>::try_from(bytes).ok())
}

/// Hashes `password` the way `mosquitto_passwd` does: `$7$`, a fresh random 12-byte salt and
/// [`DEFAULT_ITERATIONS`] rounds of PBKDF2-HMAC-SHA512.
///
/// The operator uses it to render password files from Kubernetes Secrets; the result is
/// accepted by Tern and by Mosquitto 2.x alike.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    pbkdf2_line(password.as_bytes(), &salt, DEFAULT_ITERATIONS)
}

fn pbkdf2_line(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut hash);
    format!(
        "$7${iterations}${}${}",
        BASE64.encode(salt),
        BASE64.encode(hash)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    /// `mosquitto_passwd -c -b FILE alice 'correct horse'` (Mosquitto 2.0.11, Debian 12).
    const MOSQUITTO_PBKDF2: &str = "alice:$7$101$UPvEUa7a7Wffzdjd$2h1T1WJsoq55S3avgssbSbAE2w20OsTuDohjzEJ+VyZBhex3Wy0295+iVlr0yP7lyLHZvAG7tPtsCVbRI5iacw==";

    /// `mosquitto_passwd -c -H sha512 -b FILE bob 's3cret pässword'` (Mosquitto 2.0.11).
    const MOSQUITTO_SHA512: &str = "bob:$6$0fgtWps0pk8rQjGn$aMP07guDn2ol8qgQ9KiLI+sj5NJLFUystDb/zr7a+Opx78NBwsVMtD/qkkV8G9gj1qFSmAyjbfKou9eF3SPlIA==";

    fn parse(text: &str) -> Result<PasswordFile, AuthError> {
        PasswordFile::parse(text.as_bytes(), Path::new("users/passwd"))
    }

    fn parse_ok(text: &str) -> PasswordFile {
        match parse(text) {
            Ok(file) => file,
            Err(error) => panic!("the file should parse: {error}"),
        }
    }

    fn line_problem(text: &str) -> (usize, PasswordLineProblem) {
        match parse(text) {
            Err(AuthError::PasswordLine { line, problem, .. }) => (line, problem),
            Err(other) => panic!("expected a line error, got {other}"),
            Ok(_) => panic!("expected a line error, the file parsed"),
        }
    }

    /// A cheap argon2id hash (tiny memory and time cost) so tests stay fast in debug builds.
    fn argon2id_hash(password: &str) -> String {
        let params = argon2::Params::new(64, 1, 1, None).expect("valid test parameters");
        let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"tern test salt").expect("valid test salt");
        hasher
            .hash_password(password.as_bytes(), &salt)
            .expect("hashing succeeds")
            .to_string()
    }

    fn is_match(check: PasswordCheck) -> bool {
        matches!(check, PasswordCheck::Match { .. })
    }

    #[test]
    fn mosquitto_passwd_pbkdf2_line_verifies_its_password() {
        let file = parse_ok(MOSQUITTO_PBKDF2);
        assert!(is_match(file.check("alice", b"correct horse")));
    }

    #[test]
    fn mosquitto_passwd_pbkdf2_line_rejects_another_password() {
        let file = parse_ok(MOSQUITTO_PBKDF2);
        assert_eq!(
            file.check("alice", b"correct horse!"),
            PasswordCheck::Mismatch
        );
    }

    #[test]
    fn mosquitto_passwd_sha512_line_verifies_its_password() {
        let file = parse_ok(MOSQUITTO_SHA512);
        assert!(is_match(file.check("bob", "s3cret pässword".as_bytes())));
    }

    #[test]
    fn mosquitto_passwd_sha512_line_rejects_another_password() {
        let file = parse_ok(MOSQUITTO_SHA512);
        assert_eq!(
            file.check("bob", b"s3cret password"),
            PasswordCheck::Mismatch
        );
    }

    #[test]
    fn argon2id_line_verifies_its_password() {
        let file = parse_ok(&format!("carol:{}", argon2id_hash("tern")));
        assert!(is_match(file.check("carol", b"tern")));
    }

    #[test]
    fn argon2id_line_rejects_another_password() {
        let file = parse_ok(&format!("carol:{}", argon2id_hash("tern")));
        assert_eq!(file.check("carol", b"term"), PasswordCheck::Mismatch);
    }

    #[test]
    fn unknown_users_are_reported_as_such() {
        let file = parse_ok(MOSQUITTO_PBKDF2);
        assert_eq!(
            file.check("mallory", b"correct horse"),
            PasswordCheck::UnknownUser
        );
    }

    #[test]
    fn hash_password_output_verifies_with_the_file_parser() {
        let file = parse_ok(&format!("dave:{}", hash_password("hunter2")));
        assert!(is_match(file.check("dave", b"hunter2")));
    }

    #[test]
    fn hash_password_writes_mosquittos_format() {
        let hash = hash_password("hunter2");
        let fields: Vec<&str> = hash.split('$').collect();
        // "", "7", iterations, salt, hash
        assert_eq!(
            (
                fields.len(),
                fields[1],
                fields[2],
                BASE64.decode(fields[3]).map(|salt| salt.len()).ok(),
                BASE64.decode(fields[4]).map(|hash| hash.len()).ok()
            ),
            (5, "7", "1000", Some(SALT_LEN), Some(HASH_LEN))
        );
    }

    #[test]
    fn hash_password_salts_every_hash_differently() {
        assert_ne!(hash_password("same"), hash_password("same"));
    }

    #[test]
    fn known_pbkdf2_vector_is_reproduced() {
        // Same salt and iterations as the mosquitto_passwd line above, so this pins the exact
        // derivation (password bytes, raw salt bytes, SHA-512, 64-byte output, padded base64).
        let salt = BASE64.decode("UPvEUa7a7Wffzdjd").expect("valid base64");
        let line = format!("alice:{}", pbkdf2_line(b"correct horse", &salt, 101));
        assert_eq!(line, MOSQUITTO_PBKDF2);
    }

    #[test]
    fn blank_lines_comments_and_crlf_are_ignored() {
        let text = format!("# users\n\n{MOSQUITTO_PBKDF2}\r\n   \n# end\n{MOSQUITTO_SHA512}\n");
        assert_eq!(parse_ok(&text).len(), 2);
    }

    #[test]
    fn line_without_separator_is_rejected_with_its_number() {
        assert_eq!(
            line_problem("# header\nalice"),
            (2, PasswordLineProblem::MissingSeparator)
        );
    }

    #[test]
    fn plain_text_password_is_rejected() {
        assert_eq!(
            line_problem("alice:secret"),
            (1, PasswordLineProblem::UnsupportedScheme)
        );
    }

    #[test]
    fn empty_username_is_rejected() {
        assert_eq!(
            line_problem(&format!(":{}", hash_password("x"))),
            (1, PasswordLineProblem::EmptyUsername)
        );
    }

    #[test]
    fn duplicate_user_is_rejected_naming_both_lines() {
        let text = format!("{MOSQUITTO_PBKDF2}\n{MOSQUITTO_PBKDF2}");
        assert_eq!(
            line_problem(&text),
            (
                2,
                PasswordLineProblem::DuplicateUser {
                    username: "alice".into(),
                    first_line: 1
                }
            )
        );
    }

    #[test]
    fn truncated_pbkdf2_hash_is_rejected() {
        let (line, problem) = line_problem("alice:$7$101$UPvEUa7a7Wffzdjd$2h1T1WJsoq55");
        assert_eq!(
            (line, problem),
            (
                1,
                PasswordLineProblem::MalformedHash {
                    scheme: "$7$",
                    field: "the hash is not 64 bytes of base64"
                }
            )
        );
    }

    #[test]
    fn zero_iterations_are_rejected() {
        let line = MOSQUITTO_PBKDF2.replace("$7$101$", "$7$0$");
        assert!(matches!(
            line_problem(&line).1,
            PasswordLineProblem::MalformedHash { scheme: "$7$", .. }
        ));
    }

    #[test]
    fn broken_argon2id_string_is_rejected() {
        assert!(matches!(
            line_problem("carol:$argon2id$v=19$m=oops").1,
            PasswordLineProblem::MalformedHash {
                scheme: "$argon2id$",
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_file_and_line_but_never_the_hash() {
        let hash = "$7$101$UPvEUa7a7Wffzdjd$2h1T1WJsoq55";
        let message = match parse(&format!("\nalice:{hash}")) {
            Err(error) => error.to_string(),
            Ok(_) => String::new(),
        };
        assert!(
            message.starts_with("users/passwd line 2:") && !message.contains("UPvEUa7a"),
            "{message}"
        );
    }

    #[test]
    fn changing_a_users_hash_changes_its_credential() {
        let before = parse_ok(MOSQUITTO_PBKDF2);
        let after = parse_ok(&format!("alice:{}", hash_password("correct horse")));
        assert_ne!(before.credential("alice"), after.credential("alice"));
    }
}
