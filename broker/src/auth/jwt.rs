//! JSON Web Tokens presented as the CONNECT password.
//!
//! An identity provider signs a token; the broker only holds the verification keys (the HMAC
//! secret, or a PEM public key), read once per configuration revision. A token is accepted when
//! a key of the algorithm named in its header verifies the signature and its `exp` (required),
//! `nbf`, `iss` and `aud` claims hold, with `jsonwebtoken`'s default 60 s of clock leeway.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::error::AuthError;
use super::fingerprint;
use crate::config::{JwtAlgorithm, JwtConfig};

/// Verifies tokens against the configured keys and maps their claims to an identity.
pub struct JwtVerifier {
    keys: Vec<VerificationKey>,
    username_claim: String,
    groups_claim: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_seconds: u64,
}

/// One configured key.
struct VerificationKey {
    algorithm: Algorithm,
    key: DecodingKey,
    /// Fingerprint of the key file's contents, so a live client can be traced to the key that
    /// vouched for it after the keys are rotated.
    credential: u64,
    file: PathBuf,
}

/// What a valid token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The value of the username claim.
    pub username: String,
    /// The strings in the groups claim (empty when no groups claim is configured or present).
    pub groups: Vec<String>,
    /// Fingerprint of the key that verified the token.
    pub credential: u64,
    /// Unix time (seconds) after which the token no longer vouches for the client: its `exp`
    /// plus the configured leeway.
    pub valid_until: u64,
}

/// Why a token was refused; safe to log (it never quotes the token or its claims' values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// The header is unreadable or names an algorithm Tern does not verify.
    #[error("malformed token")]
    Malformed,
    /// No configured key is for the token's algorithm.
    #[error("no configured key for the token's algorithm {0:?}")]
    NoKeyForAlgorithm(Algorithm),
    /// No key of the token's algorithm verifies the signature.
    #[error("the signature does not verify with any configured key")]
    BadSignature,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not the configured one")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("the token's audience is not the configured one")]
    WrongAudience,
    /// A claim the configuration requires is absent (`exp`, `iss`, `aud`).
    #[error("the token lacks the required `{0}` claim")]
    MissingClaim(String),
    /// The username claim is absent or not a string.
    #[error("the `{0}` claim is missing or not a string")]
    NoUsername(String),
    /// The groups claim is not a list of strings.
    #[error("the `{0}` claim is not a list of strings")]
    BadGroups(String),
    /// The signature verified but the payload is not a JSON object with well-typed claims.
    #[error("the token's claims are malformed")]
    BadClaims,
}

impl JwtVerifier {
    /// Reads every key file (relative paths against `base_dir`) and prepares verification.
    pub fn load(config: &JwtConfig, base_dir: &Path) -> Result<JwtVerifier, AuthError> {
        if config.keys.is_empty() {
            return Err(AuthError::NoJwtKeys);
        }
        install_crypto_provider();
        let keys = config
            .keys
            .iter()
            .map(|key| {
                let path = base_dir.join(&key.file);
                let contents = std::fs::read(&path).map_err(|source| AuthError::Read {
                    path: path.clone(),
                    source,
                })?;
                let decoding_key =
                    decoding_key(key.algorithm, &contents).map_err(|reason| AuthError::JwtKey {
                        path: path.clone(),
                        algorithm: key.algorithm,
                        reason,
                    })?;
                Ok(VerificationKey {
                    algorithm: algorithm(key.algorithm),
                    key: decoding_key,
                    credential: fingerprint(&contents),
                    file: path,
                })
            })
            .collect::<Result<Vec<_>, AuthError>>()?;
        Ok(JwtVerifier {
            keys,
            username_claim: config.username_claim.clone(),
            groups_claim: config.groups_claim.clone(),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_seconds: config.leeway_seconds,
        })
    }

    /// Verifies `token` and extracts the username and groups.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        let validation = self.validation(header.alg);
        let mut candidates = self
            .keys
            .iter()
            .filter(|key| key.algorithm == header.alg)
            .peekable();
        if candidates.peek().is_none() {
            return Err(TokenRejection::NoKeyForAlgorithm(header.alg));
        }
        // Claims are checked only after a signature verified, so the first error that is not
        // about the signature is final; a bad signature means "try the next key".
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return self.identity(&data.claims, key.credential),
                Err(error) => match rejection(error.kind()) {
                    TokenRejection::BadSignature => continue,
                    other => return Err(other),
                },
            }
        }
        Err(TokenRejection::BadSignature)
    }

    /// Whether the key with this fingerprint is still configured: after a reload, clients whose
    /// token was verified by a key that is gone are no longer vouched for.
    pub fn trusts(&self, credential: u64) -> bool {
        self.keys.iter().any(|key| key.credential == credential)
    }

    /// The key files, for diagnostics.
    pub fn key_files(&self) -> impl Iterator<Item = &Path> {
        self.keys.iter().map(|key| key.file.as_path())
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            // Without a configured audience a token's `aud` is not ours to judge.
            None => validation.validate_aud = false,
        }
        validation
    }

    fn identity(
        &self,
        claims: &Map<String, Value>,
        credential: u64,
    ) -> Result<VerifiedToken, TokenRejection> {
        let username = claims
            .get(&self.username_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| TokenRejection::NoUsername(self.username_claim.clone()))?;
        let groups = match &self.groups_claim {
            None => Vec::new(),
            Some(claim) => match claims.get(claim) {
                None => Vec::new(),
                Some(value) => {
                    string_list(value).ok_or_else(|| TokenRejection::BadGroups(claim.clone()))?
                }
            },
        };
        // `exp` is a required claim, checked to be a number by the validation above.
        let expires = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0);
        Ok(VerifiedToken {
            username: username.to_owned(),
            groups,
            credential,
            valid_until: (expires.max(0.0) as u64).saturating_add(self.leeway_seconds),
        })
    }
}

/// Whether a CONNECT password has the shape of a JWT (three base64url segments whose first
/// decodes to a JOSE header); returns it as text if so. Cheap: no signature is checked.
pub fn as_token(password: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(password).ok()?;
    let is_segment = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    let segments: Vec<&str> = text.split('.').collect();
    let shaped = segments.len() == 3 && segments.iter().all(|segment| is_segment(segment));
    (shaped && jsonwebtoken::decode_header(text).is_ok()).then_some(text)
}

/// `jsonwebtoken` picks its backend from its crate features; installing it explicitly keeps
/// that working even if another crate in the build enables a second backend. Idempotent: a
/// provider installed earlier (by us or anyone) stays.
fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

fn decoding_key(algorithm: JwtAlgorithm, contents: &[u8]) -> Result<DecodingKey, String> {
    use JwtAlgorithm::*;
    match algorithm {
        HS256 | HS384 | HS512 if contents.is_empty() => Err("the secret is empty".into()),
        HS256 | HS384 | HS512 => Ok(DecodingKey::from_secret(contents)),
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
            DecodingKey::from_rsa_pem(contents).map_err(|error| error.to_string())
        }
        ES256 | ES384 => DecodingKey::from_ec_pem(contents).map_err(|error| error.to_string()),
    }
}

fn algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
    }
}

fn rejection(kind: &jsonwebtoken::errors::ErrorKind) -> TokenRejection {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenRejection::BadSignature,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => TokenRejection::MissingClaim(claim.clone()),
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => TokenRejection::BadClaims,
        _ => TokenRejection::Malformed,
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JwtKey;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const RSA_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/rs256-private.pem");
    const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/rs256-public.pem");
    const HMAC_SECRET: &[u8] = b"a shared secret of reasonable length";

    /// A configuration directory holding the given key files.
    struct KeyDir {
        dir: tempfile::TempDir,
    }

    impl KeyDir {
        fn with(files: &[(&str, &[u8])]) -> KeyDir {
            let dir = tempfile::tempdir().expect("temporary directory");
            for (name, contents) in files {
                std::fs::write(dir.path().join(name), contents).expect("write key file");
            }
            KeyDir { dir }
        }

        fn verifier(&self, config: &JwtConfig) -> JwtVerifier {
            match JwtVerifier::load(config, self.dir.path()) {
                Ok(verifier) => verifier,
                Err(error) => panic!("keys should load: {error}"),
            }
        }
    }

    fn config(keys: &[(&str, JwtAlgorithm)]) -> JwtConfig {
        JwtConfig {
            username_claim: "sub".into(),
            groups_claim: Some("groups".into()),
            issuer: None,
            audience: None,
            keys: keys
                .iter()
                .map(|(file, algorithm)| JwtKey {
                    file: PathBuf::from(file),
                    algorithm: *algorithm,
                })
                .collect(),
            leeway_seconds: 60,
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn hs256_token(claims: &Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(HMAC_SECRET),
        )
        .expect("signing succeeds")
    }

    fn hs256_verifier() -> (KeyDir, JwtVerifier) {
        let dir = KeyDir::with(&[("secret", HMAC_SECRET)]);
        let verifier = dir.verifier(&config(&[("secret", JwtAlgorithm::HS256)]));
        (dir, verifier)
    }

    #[test]
    fn hs256_token_yields_its_subject_and_groups() {
        let (_dir, verifier) = hs256_verifier();
        let token =
            hs256_token(&json!({"sub": "alice", "groups": ["ops", "dev"], "exp": now() + 600}));
        let verified = verifier.verify(&token).map(|t| (t.username, t.groups));
        assert_eq!(
            verified,
            Ok((
                "alice".to_string(),
                vec!["ops".to_string(), "dev".to_string()]
            ))
        );
    }

    #[test]
    fn rs256_token_verifies_with_the_public_key() {
        let dir = KeyDir::with(&[("rsa.pem", RSA_PUBLIC.as_bytes())]);
        let verifier = dir.verifier(&config(&[("rsa.pem", JwtAlgorithm::RS256)]));
        let token = encode(
            &Header::new(Algorithm::RS256),
            &json!({"sub": "bob", "exp": now() + 600}),
            &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("fixture key"),
        )
        .expect("signing succeeds");
        assert_eq!(
            verifier.verify(&token).map(|t| t.username),
            Ok("bob".into())
        );
    }

    #[test]
    fn es256_token_verifies_with_the_public_key() {
        let key_pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key generation");
        let dir = KeyDir::with(&[("ec.pem", key_pair.public_key_pem().as_bytes())]);
        let verifier = dir.verifier(&config(&[("ec.pem", JwtAlgorithm::ES256)]));
        let token = encode(
            &Header::new(Algorithm::ES256),
            &json!({"sub": "carol", "exp": now() + 600}),
            &EncodingKey::from_ec_pem(key_pair.serialize_pem().as_bytes()).expect("generated key"),
        )
        .expect("signing succeeds");
        assert_eq!(
            verifier.verify(&token).map(|t| t.username),
            Ok("carol".into())
        );
    }

    #[test]
    fn token_signed_with_another_secret_is_refused() {
        let (_dir, verifier) = hs256_verifier();
        let token = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "alice", "exp": now() + 600}),
            &EncodingKey::from_secret(b"not the configured secret"),
        )
        .expect("signing succeeds");
        assert_eq!(verifier.verify(&token), Err(TokenRejection::BadSignature));
    }

    #[test]
    fn any_key_of_the_tokens_algorithm_may_verify_it() {
        let dir = KeyDir::with(&[("old", b"the previous secret"), ("new", HMAC_SECRET)]);
        let verifier = dir.verifier(&config(&[
            ("old", JwtAlgorithm::HS256),
            ("new", JwtAlgorithm::HS256),
        ]));
        let token = hs256_token(&json!({"sub": "alice", "exp": now() + 600}));
        assert_eq!(
            verifier.verify(&token).map(|t| t.username),
            Ok("alice".into())
        );
    }

    #[test]
    fn token_for_an_unconfigured_algorithm_is_refused() {
        let (_dir, verifier) = hs256_verifier();
        let token = encode(
            &Header::new(Algorithm::HS512),
            &json!({"sub": "alice", "exp": now() + 600}),
            &EncodingKey::from_secret(HMAC_SECRET),
        )
        .expect("signing succeeds");
        assert_eq!(
            verifier.verify(&token),
            Err(TokenRejection::NoKeyForAlgorithm(Algorithm::HS512))
        );
    }

    #[test]
    fn expired_token_is_refused() {
        let (_dir, verifier) = hs256_verifier();
        let token = hs256_token(&json!({"sub": "alice", "exp": now() - 3600}));
        assert_eq!(verifier.verify(&token), Err(TokenRejection::Expired));
    }

    #[test]
    fn a_token_is_valid_until_its_expiry_plus_the_leeway() {
        let (_dir, verifier) = hs256_verifier();
        let exp = now() + 600;
        let token = hs256_token(&json!({"sub": "alice", "exp": exp}));
        assert_eq!(verifier.verify(&token).map(|t| t.valid_until), Ok(exp + 60));
    }

    #[test]
    fn the_leeway_admits_a_token_that_just_expired_and_can_be_turned_off() {
        let dir = KeyDir::with(&[("secret", HMAC_SECRET)]);
        let token = hs256_token(&json!({"sub": "alice", "exp": now() - 30}));
        let lenient = dir.verifier(&config(&[("secret", JwtAlgorithm::HS256)]));
        let strict = dir.verifier(&JwtConfig {
            leeway_seconds: 0,
            ..config(&[("secret", JwtAlgorithm::HS256)])
        });
        assert_eq!(
            (lenient.verify(&token).is_ok(), strict.verify(&token)),
            (true, Err(TokenRejection::Expired))
        );
    }

    #[test]
    fn token_without_expiry_is_refused() {
        let (_dir, verifier) = hs256_verifier();
        let token = hs256_token(&json!({"sub": "alice"}));
        assert_eq!(
            verifier.verify(&token),
            Err(TokenRejection::MissingClaim("exp".into()))
        );
    }

    #[test]
    fn token_not_yet_valid_is_refused() {
        let (_dir, verifier) = hs256_verifier();
        let token = hs256_token(&json!({"sub": "alice", "nbf": now() + 3600, "exp": now() + 7200}));
        assert_eq!(verifier.verify(&token), Err(TokenRejection::NotYetValid));
    }

    #[test]
    fn configured_issuer_must_match() {
        let dir = KeyDir::with(&[("secret", HMAC_SECRET)]);
        let mut settings = config(&[("secret", JwtAlgorithm::HS256)]);
        settings.issuer = Some("https://idp.example".into());
        let verifier = dir.verifier(&settings);
        let token = hs256_token(
            &json!({"sub": "alice", "iss": "https://evil.example", "exp": now() + 600}),
        );
        assert_eq!(verifier.verify(&token), Err(TokenRejection::WrongIssuer));
    }

    #[test]
    fn configured_audience_must_match() {
        let dir = KeyDir::with(&[("secret", HMAC_SECRET)]);
        let mut settings = config(&[("secret", JwtAlgorithm::HS256)]);
        settings.audience = Some("tern".into());
        let verifier = dir.verifier(&settings);
        let token = hs256_token(&json!({"sub": "alice", "aud": "grafana", "exp": now() + 600}));
        assert_eq!(verifier.verify(&token), Err(TokenRejection::WrongAudience));
    }

    #[test]
    fn audience_is_ignored_when_none_is_configured() {
        let (_dir, verifier) = hs256_verifier();
        let token = hs256_token(&json!({"sub": "alice", "aud": "anything", "exp": now() + 600}));
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn username_comes_from_the_configured_claim() {
        let dir = KeyDir::with(&[("secret", HMAC_SECRET)]);
        let mut settings = config(&[("secret", JwtAlgorithm::HS256)]);
        settings.username_claim = "preferred_username".into();
        let verifier = dir.verifier(&settings);
        let token =
            hs256_token(&json!({"sub": "1234", "preferred_username": "alice", "exp": now() + 600}));
        assert_eq!(
            verifier.verify(&token).map(|t| t.username),
            Ok("alice".into())
        );
    }

    #[test]
    fn token_without_the_username_claim_is_refused() {
        let (_dir, verifier) = hs256_verifier();
        let token = hs256_token(&json!({"exp": now() + 600}));
        assert_eq!(
            verifier.verify(&token),
            Err(TokenRejection::NoUsername("sub".into()))
        );
    }

    #[test]
    fn groups_claim_that_is_not_a_string_list_is_refused() {
        let (_dir, verifier) = hs256_verifier();
        let token = hs256_token(&json!({"sub": "alice", "groups": "ops", "exp": now() + 600}));
        assert_eq!(
            verifier.verify(&token),
            Err(TokenRejection::BadGroups("groups".into()))
        );
    }

    #[test]
    fn the_verifying_key_is_identified_by_its_credential() {
        let (_dir, verifier) = hs256_verifier();
        let token = hs256_token(&json!({"sub": "alice", "exp": now() + 600}));
        let credential = verifier.verify(&token).map(|t| t.credential);
        assert_eq!(credential, Ok(fingerprint(HMAC_SECRET)));
    }

    #[test]
    fn missing_key_file_is_an_error_naming_it() {
        let dir = KeyDir::with(&[]);
        let message = JwtVerifier::load(
            &config(&[("jwt/key.pem", JwtAlgorithm::RS256)]),
            dir.dir.path(),
        )
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
        assert!(message.contains("jwt/key.pem"), "{message}");
    }

    #[test]
    fn a_key_file_that_is_not_pem_is_an_error_naming_it() {
        let dir = KeyDir::with(&[("key.pem", b"not a key")]);
        let error =
            JwtVerifier::load(&config(&[("key.pem", JwtAlgorithm::ES256)]), dir.dir.path()).err();
        assert!(matches!(error, Some(AuthError::JwtKey { path, .. }) if path.ends_with("key.pem")));
    }

    #[test]
    fn jwt_without_keys_is_refused() {
        let dir = KeyDir::with(&[]);
        let error = JwtVerifier::load(&config(&[]), dir.dir.path()).err();
        assert!(matches!(error, Some(AuthError::NoJwtKeys)));
    }

    #[test]
    fn a_token_shaped_password_is_recognised() {
        let token = hs256_token(&json!({"sub": "alice", "exp": now() + 600}));
        assert_eq!(as_token(token.as_bytes()), Some(token.as_str()));
    }

    #[test]
    fn an_ordinary_password_is_not_taken_for_a_token() {
        assert_eq!(as_token(b"correct.horse.battery"), None);
    }
}
