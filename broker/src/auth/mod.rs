//! Deciding who a connecting client is.
//!
//! An [`Authenticator`] is built once per configuration revision from the `auth` section and
//! the files it names (password file, JWT keys); building it reads and checks everything, so a
//! broken Secret rejects the revision instead of failing clients one by one. After that,
//! [`Authenticator::authenticate`] is a pure decision over the CONNECT's credentials, testable
//! without sockets, and [`Authenticator::recheck`] tells, after a reload, whether a live
//! client's credential still stands.
//!
//! Checks run in this order, the first that applies deciding:
//! 1. an MQTT 5 authentication method (enhanced authentication) is refused — Tern has none;
//! 2. a client certificate, when `tlsIdentity` is set: its CN or SAN is the username, any
//!    CONNECT username and password are ignored (as Mosquitto's `use_identity_as_username`);
//! 3. a password shaped like a JWT, when `jwt` is configured: the token alone decides;
//! 4. the password file, for any other username/password;
//! 5. anonymous access, for a CONNECT without username and password.
//!
//! Nothing here logs or returns a password or token; rejections are logged at debug level with
//! the username and a reason.

mod cache;
pub mod certificate;
mod error;
pub mod jwt;
pub mod password;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;

use sha2::{Digest, Sha256};
use tracing::debug;

use crate::config::{AuthConfig, TlsIdentity};
use crate::protocol::{Connect, ReasonCode};

pub use certificate::{certificate_username, CertificateRejection};
pub use error::{AuthError, PasswordLineProblem};
pub use jwt::{JwtVerifier, TokenRejection, VerifiedToken};
pub use password::{hash_password, PasswordCheck, PasswordFile};

use cache::VerifiedPasswords;

/// How many recently verified passwords an [`Authenticator`] remembers (about 100 bytes each).
const VERIFIED_PASSWORDS_CAPACITY: usize = 10_000;

/// What a CONNECT offers to prove who the client is. Borrowed from the decoded packet and the
/// TLS session, so building one costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The CONNECT user name.
    pub username: Option<&'a str>,
    /// The CONNECT password (binary in MQTT 5).
    pub password: Option<&'a [u8]>,
    /// The client identifier (after the server assigned one, if it did).
    pub client_id: &'a str,
    /// The client's end-entity certificate (DER), when the listener verified one.
    pub peer_certificate: Option<&'a [u8]>,
    /// The MQTT 5 Authentication Method property, if the client asked for enhanced auth.
    pub authentication_method: Option<&'a str>,
}

impl AuthMethod {
    /// Every method, in `repr` order (for metrics).
    pub const ALL: [AuthMethod; 4] = [
        AuthMethod::Anonymous,
        AuthMethod::Password,
        AuthMethod::Jwt,
        AuthMethod::Certificate,
    ];

    /// Lower-case name, the `method` label of the authentication metrics.
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Password => "password",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Certificate => "certificate",
        }
    }
}

impl<'a> Credentials<'a> {
    /// The credentials carried by a CONNECT packet, plus the TLS client certificate if any.
    pub fn from_connect(connect: &'a Connect, peer_certificate: Option<&'a [u8]>) -> Self {
        Credentials {
            username: connect.username.as_deref(),
            password: connect.password.as_deref(),
            client_id: &connect.client_id,
            peer_certificate,
            authentication_method: connect.properties.authentication_method.as_deref(),
        }
    }
}

/// Which check admitted a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum AuthMethod {
    /// No credentials, admitted by `allowAnonymous`.
    Anonymous,
    /// Username and password from the password file.
    Password,
    /// A JSON Web Token in the password field.
    Jwt,
    /// A verified TLS client certificate.
    Certificate,
}

/// Who an admitted client is, for ACL decisions, logs and re-checks after a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The verified username; `None` for anonymous clients (an unverified CONNECT user name is
    /// never kept, so ACL rules on usernames cannot be satisfied by claiming a name).
    pub username: Option<String>,
    /// Group memberships for ACL `group` principals: the configured groups listing the username,
    /// then the token's own groups; sorted, without duplicates.
    pub groups: Vec<String>,
    /// The groups the credential itself claimed (a JWT's groups claim), kept apart so `groups`
    /// can be recomputed when the configured groups change ([`Authenticator::current_groups`]).
    pub claimed_groups: Box<[String]>,
    /// Which check admitted the client.
    pub method: AuthMethod,
    /// Fingerprint of what vouched for the client: the password file entry, the JWT key, the
    /// certificate identity setting. [`Authenticator::recheck`] compares it after a reload.
    pub credential: u64,
    /// Unix time (seconds) after which the credential no longer vouches for the client (a
    /// JWT's `exp` plus the leeway); the broker then closes the connection. `None`: no expiry.
    pub valid_until: Option<u64>,
}

/// Whether a live client's credential survives a configuration reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Still admitted exactly as before.
    Valid,
    /// The user (or the whole mechanism that admitted it) is gone.
    Removed,
    /// The user still exists but its credential changed (new password, rotated JWT key,
    /// different certificate identity field).
    Changed,
}

impl Recheck {
    /// The DISCONNECT reason for a client whose credential no longer stands: 0x87 (Not
    /// authorized) when removed, 0x98 (Administrative action) when changed; `None` when the
    /// client may stay. 0x8C (Bad authentication method) would describe a change better, but
    /// MQTT 5.0 §3.14.2.1 does not allow it in DISCONNECT, and conforming clients treat it as
    /// a malformed packet.
    pub fn disconnect_reason(self) -> Option<ReasonCode> {
        match self {
            Recheck::Valid => None,
            Recheck::Removed => Some(ReasonCode::NotAuthorized),
            Recheck::Changed => Some(ReasonCode::AdministrativeAction),
        }
    }
}

/// The authentication decisions of one configuration revision.
///
/// Share it (`Arc`) between connections; it is `Send + Sync`. Password verification is
/// CPU-heavy by design (PBKDF2, argon2id: milliseconds to tens of milliseconds per attempt), so
/// callers run [`Authenticator::authenticate`] on a blocking thread
/// (`tokio::task::spawn_blocking`), never on the async executor. Successful password checks are
/// remembered (bounded, see `cache.rs`) so reconnecting clients skip the slow hash.
pub struct Authenticator {
    allow_anonymous: bool,
    passwords: Option<PasswordFile>,
    jwt: Option<JwtVerifier>,
    tls_identity: Option<TlsIdentity>,
    /// Username → the configured groups listing it, sorted.
    groups_by_user: HashMap<String, Vec<String>>,
    verified_passwords: VerifiedPasswords,
}

impl Authenticator {
    /// Builds the authenticator for `config`, reading the password file and JWT key files
    /// (relative paths are resolved against `base_dir`, the configuration directory).
    pub fn load(config: &AuthConfig, base_dir: &Path) -> Result<Authenticator, AuthError> {
        let passwords = match &config.password_file {
            None => None,
            Some(file) => {
                let path = base_dir.join(file);
                let contents = std::fs::read(&path).map_err(|source| AuthError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(PasswordFile::parse(&contents, &path)?)
            }
        };
        let jwt = config
            .jwt
            .as_ref()
            .map(|jwt| JwtVerifier::load(jwt, base_dir))
            .transpose()?;
        let mut groups_by_user: HashMap<String, Vec<String>> = HashMap::new();
        for (group, members) in &config.groups {
            for member in members {
                groups_by_user
                    .entry(member.clone())
                    .or_default()
                    .push(group.clone());
            }
        }
        let capacity = NonZeroUsize::new(VERIFIED_PASSWORDS_CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Ok(Authenticator {
            allow_anonymous: config.allow_anonymous,
            passwords,
            jwt,
            tls_identity: config.tls_identity,
            groups_by_user,
            verified_passwords: VerifiedPasswords::new(capacity),
        })
    }

    /// Decides whether `request` may connect and as whom. The error is the CONNACK reason:
    /// `BadAuthenticationMethod` for enhanced auth, `BadUserNameOrPassword` for wrong or
    /// unverifiable credentials, `NotAuthorized` for refused anonymous access or an unusable
    /// client certificate.
    pub fn authenticate(&self, request: &Credentials<'_>) -> Result<Identity, ReasonCode> {
        if let Some(method) = request.authentication_method {
            debug!(
                client_id = request.client_id,
                method, "enhanced authentication refused"
            );
            return Err(ReasonCode::BadAuthenticationMethod);
        }
        if let (Some(source), Some(der)) = (self.tls_identity, request.peer_certificate) {
            return self.by_certificate(source, der, request.client_id);
        }
        if let Some(jwt) = &self.jwt {
            if let Some(token) = request.password.and_then(jwt::as_token) {
                return self.by_token(jwt, token, request);
            }
        }
        if request.username.is_none() && request.password.is_none() {
            return self.anonymous(request.client_id);
        }
        match &self.passwords {
            Some(passwords) => self.by_password(passwords, request),
            // Credentials nothing could verify: with anonymous access on they are ignored (the
            // client is anonymous), as in Mosquitto without a password file.
            None if self.allow_anonymous && self.jwt.is_none() => self.anonymous(request.client_id),
            None => {
                debug!(
                    client_id = request.client_id,
                    "no credential source for a username/password"
                );
                Err(ReasonCode::BadUserNameOrPassword)
            }
        }
    }

    /// The check [`Authenticator::authenticate`] applies to `request` (the first that applies,
    /// in the documented order), for metrics that count attempts by method — failed ones too.
    pub fn method_for(&self, request: &Credentials<'_>) -> AuthMethod {
        if self.tls_identity.is_some() && request.peer_certificate.is_some() {
            AuthMethod::Certificate
        } else if self.jwt.is_some() && request.password.and_then(jwt::as_token).is_some() {
            AuthMethod::Jwt
        } else if request.username.is_none() && request.password.is_none() {
            AuthMethod::Anonymous
        } else {
            AuthMethod::Password
        }
    }

    /// After a reload (`self` is the new revision), whether `identity`, admitted by an earlier
    /// revision, still stands. The broker disconnects clients that are not
    /// [`Recheck::Valid`], unless configured to keep them.
    pub fn recheck(&self, identity: &Identity) -> Recheck {
        match identity.method {
            AuthMethod::Anonymous if self.allow_anonymous => Recheck::Valid,
            AuthMethod::Anonymous => Recheck::Removed,
            AuthMethod::Password => {
                let current = self.passwords.as_ref().and_then(|passwords| {
                    identity
                        .username
                        .as_deref()
                        .and_then(|username| passwords.credential(username))
                });
                match current {
                    None => Recheck::Removed,
                    Some(credential) if credential == identity.credential => Recheck::Valid,
                    Some(_) => Recheck::Changed,
                }
            }
            AuthMethod::Jwt => match &self.jwt {
                None => Recheck::Removed,
                Some(jwt) if jwt.trusts(identity.credential) => Recheck::Valid,
                Some(_) => Recheck::Changed,
            },
            AuthMethod::Certificate => match self.tls_identity {
                None => Recheck::Removed,
                Some(source) if certificate_credential(source) == identity.credential => {
                    Recheck::Valid
                }
                Some(_) => Recheck::Changed,
            },
        }
    }

    /// `identity`'s groups under this revision's group configuration: what
    /// [`Identity::groups`] would be if the client connected now.
    pub fn current_groups(&self, identity: &Identity) -> Vec<String> {
        self.groups_of(identity.username.as_deref(), &identity.claimed_groups)
    }

    fn by_certificate(
        &self,
        source: TlsIdentity,
        der: &[u8],
        client_id: &str,
    ) -> Result<Identity, ReasonCode> {
        let username = certificate_username(der, source).map_err(|reason| {
            debug!(client_id, %reason, "client certificate refused");
            ReasonCode::NotAuthorized
        })?;
        Ok(self.identity(
            username,
            Vec::new(),
            AuthMethod::Certificate,
            certificate_credential(source),
        ))
    }

    fn by_token(
        &self,
        jwt: &JwtVerifier,
        token: &str,
        request: &Credentials<'_>,
    ) -> Result<Identity, ReasonCode> {
        let verified = jwt.verify(token).map_err(|reason| {
            debug!(client_id = request.client_id, username = request.username, %reason, "JWT refused");
            ReasonCode::BadUserNameOrPassword
        })?;
        if let Some(claimed) = request.username {
            if claimed != verified.username {
                debug!(
                    client_id = request.client_id,
                    username = claimed,
                    "JWT refused: it was issued for another username"
                );
                return Err(ReasonCode::BadUserNameOrPassword);
            }
        }
        let mut identity = self.identity(
            verified.username,
            verified.groups,
            AuthMethod::Jwt,
            verified.credential,
        );
        identity.valid_until = Some(verified.valid_until);
        Ok(identity)
    }

    fn by_password(
        &self,
        passwords: &PasswordFile,
        request: &Credentials<'_>,
    ) -> Result<Identity, ReasonCode> {
        let (Some(username), Some(password)) = (request.username, request.password) else {
            debug!(
                client_id = request.client_id,
                username = request.username,
                "refused: the password file needs both a username and a password"
            );
            return Err(ReasonCode::BadUserNameOrPassword);
        };
        let cache_key = self.verified_passwords.key(username, password);
        let credential = match self.verified_passwords.get(&cache_key) {
            Some(credential) => credential,
            None => match passwords.check(username, password) {
                PasswordCheck::Match { credential } => {
                    self.verified_passwords.remember(cache_key, credential);
                    credential
                }
                PasswordCheck::Mismatch | PasswordCheck::UnknownUser => {
                    debug!(
                        client_id = request.client_id,
                        username, "wrong username or password"
                    );
                    return Err(ReasonCode::BadUserNameOrPassword);
                }
            },
        };
        Ok(self.identity(
            username.to_owned(),
            Vec::new(),
            AuthMethod::Password,
            credential,
        ))
    }

    fn anonymous(&self, client_id: &str) -> Result<Identity, ReasonCode> {
        if !self.allow_anonymous {
            debug!(client_id, "anonymous access refused");
            return Err(ReasonCode::NotAuthorized);
        }
        Ok(Identity {
            username: None,
            groups: Vec::new(),
            claimed_groups: Box::default(),
            method: AuthMethod::Anonymous,
            credential: 0,
            valid_until: None,
        })
    }

    fn identity(
        &self,
        username: String,
        claimed_groups: Vec<String>,
        method: AuthMethod,
        credential: u64,
    ) -> Identity {
        Identity {
            groups: self.groups_of(Some(&username), &claimed_groups),
            username: Some(username),
            claimed_groups: claimed_groups.into_boxed_slice(),
            method,
            credential,
            valid_until: None,
        }
    }

    fn groups_of(&self, username: Option<&str>, claimed_groups: &[String]) -> Vec<String> {
        let configured = username
            .and_then(|username| self.groups_by_user.get(username))
            .into_iter()
            .flatten();
        let mut groups: Vec<String> = configured.chain(claimed_groups).cloned().collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

impl std::fmt::Debug for Authenticator {
    /// A summary safe for logs: which sources are configured, never their contents.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Authenticator")
            .field("allow_anonymous", &self.allow_anonymous)
            .field(
                "password_file_users",
                &self.passwords.as_ref().map(PasswordFile::len),
            )
            .field(
                "jwt_key_files",
                &self
                    .jwt
                    .as_ref()
                    .map(|jwt| jwt.key_files().collect::<Vec<_>>()),
            )
            .field("tls_identity", &self.tls_identity)
            .field("groups_by_user", &self.groups_by_user)
            .finish_non_exhaustive()
    }
}

/// First 8 bytes of SHA-256: a stable fingerprint of a credential's stored form, short enough
/// to keep per connection, never reversible to the credential.
fn fingerprint(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// What vouches for a certificate identity: the setting that picked the name out of it.
fn certificate_credential(source: TlsIdentity) -> u64 {
    match source {
        TlsIdentity::CommonName => fingerprint(b"tlsIdentity: commonName"),
        TlsIdentity::SubjectAltName => fingerprint(b"tlsIdentity: subjectAltName"),
    }
}

#[cfg(test)]
mod tests;
