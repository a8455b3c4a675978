//! The authentication decision as a specification: which credentials admit whom, with which
//! reason a client is refused, and what a reload does to clients already admitted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::config::{JwtAlgorithm, JwtConfig, JwtKey};
use crate::protocol::{ConnectProperties, ProtocolVersion};

const JWT_SECRET: &[u8] = b"the broker's token secret";

/// A configuration directory like the mounted ConfigMap/Secret: `users/passwd`, `jwt/secret`.
struct ConfigDir {
    dir: tempfile::TempDir,
}

impl ConfigDir {
    fn new() -> ConfigDir {
        let dir = tempfile::tempdir().expect("temporary directory");
        for sub in ["users", "jwt"] {
            std::fs::create_dir(dir.path().join(sub)).expect("create subdirectory");
        }
        std::fs::write(dir.path().join("jwt/secret"), JWT_SECRET).expect("write secret");
        ConfigDir { dir }
    }

    fn with_users(users: &[(&str, &str)]) -> ConfigDir {
        let config_dir = ConfigDir::new();
        config_dir.write_users(users);
        config_dir
    }

    fn write_users(&self, users: &[(&str, &str)]) {
        let lines: String = users
            .iter()
            .map(|(user, password)| format!("{user}:{}\n", hash_password(password)))
            .collect();
        self.write("users/passwd", lines.as_bytes());
    }

    fn write(&self, file: &str, contents: &[u8]) {
        std::fs::write(self.dir.path().join(file), contents).expect("write file");
    }

    fn load(&self, config: &AuthConfig) -> Authenticator {
        match Authenticator::load(config, self.dir.path()) {
            Ok(authenticator) => authenticator,
            Err(error) => panic!("the configuration should load: {error}"),
        }
    }
}

fn password_config() -> AuthConfig {
    AuthConfig {
        password_file: Some(PathBuf::from("users/passwd")),
        ..AuthConfig::default()
    }
}

fn jwt_config() -> JwtConfig {
    JwtConfig {
        username_claim: "sub".into(),
        groups_claim: Some("groups".into()),
        issuer: None,
        audience: None,
        keys: vec![JwtKey {
            file: PathBuf::from("jwt/secret"),
            algorithm: JwtAlgorithm::HS256,
        }],
        leeway_seconds: 60,
    }
}

fn groups(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(group, members)| {
            let members = members.iter().map(|member| member.to_string()).collect();
            (group.to_string(), members)
        })
        .collect()
}

fn token(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET),
    )
    .expect("signing succeeds")
}

fn valid_token(subject: &str) -> String {
    let expiry = jsonwebtoken::get_current_timestamp() + 600;
    token(json!({"sub": subject, "groups": ["fleet"], "exp": expiry}))
}

fn user<'a>(username: &'a str, password: &'a str) -> Credentials<'a> {
    Credentials {
        username: Some(username),
        password: Some(password.as_bytes()),
        client_id: "client-1",
        ..Credentials::default()
    }
}

fn nobody() -> Credentials<'static> {
    Credentials {
        client_id: "client-1",
        ..Credentials::default()
    }
}

fn certificate(common_name: &str) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().expect("key generation");
    params
        .self_signed(&key)
        .expect("self-signing succeeds")
        .der()
        .to_vec()
}

fn method_and_username(
    result: Result<Identity, ReasonCode>,
) -> Result<(AuthMethod, Option<String>), ReasonCode> {
    result.map(|identity| (identity.method, identity.username))
}

// --- order and reason codes -------------------------------------------------------------------

#[test]
fn enhanced_authentication_is_refused_before_anything_else() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        allow_anonymous: true,
        ..AuthConfig::default()
    });
    let request = Credentials {
        authentication_method: Some("SCRAM-SHA-1"),
        ..nobody()
    };
    assert_eq!(
        authenticator.authenticate(&request),
        Err(ReasonCode::BadAuthenticationMethod)
    );
}

#[test]
fn anonymous_clients_are_refused_unless_allowed() {
    let authenticator = ConfigDir::new().load(&AuthConfig::default());
    assert_eq!(
        authenticator.authenticate(&nobody()),
        Err(ReasonCode::NotAuthorized)
    );
}

#[test]
fn anonymous_clients_are_admitted_when_allowed() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        allow_anonymous: true,
        ..AuthConfig::default()
    });
    assert_eq!(
        method_and_username(authenticator.authenticate(&nobody())),
        Ok((AuthMethod::Anonymous, None))
    );
}

#[test]
fn unverifiable_credentials_are_ignored_when_anonymous_access_is_allowed() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        allow_anonymous: true,
        ..AuthConfig::default()
    });
    assert_eq!(
        method_and_username(authenticator.authenticate(&user("admin", "anything"))),
        Ok((AuthMethod::Anonymous, None))
    );
}

#[test]
fn unverifiable_credentials_are_refused_without_anonymous_access() {
    let authenticator = ConfigDir::new().load(&AuthConfig::default());
    assert_eq!(
        authenticator.authenticate(&user("alice", "secret")),
        Err(ReasonCode::BadUserNameOrPassword)
    );
}

// --- password file ----------------------------------------------------------------------------

#[test]
fn password_file_user_with_the_right_password_is_admitted() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    assert_eq!(
        method_and_username(authenticator.authenticate(&user("alice", "secret"))),
        Ok((AuthMethod::Password, Some("alice".into())))
    );
}

#[test]
fn wrong_password_is_refused() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    assert_eq!(
        authenticator.authenticate(&user("alice", "guess")),
        Err(ReasonCode::BadUserNameOrPassword)
    );
}

#[test]
fn unknown_user_is_refused_like_a_wrong_password() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    assert_eq!(
        authenticator.authenticate(&user("mallory", "secret")),
        Err(ReasonCode::BadUserNameOrPassword)
    );
}

#[test]
fn username_without_password_is_refused() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    let request = Credentials {
        password: None,
        ..user("alice", "")
    };
    assert_eq!(
        authenticator.authenticate(&request),
        Err(ReasonCode::BadUserNameOrPassword)
    );
}

#[test]
fn a_wrong_password_is_not_downgraded_to_anonymous_access() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&AuthConfig {
        allow_anonymous: true,
        ..password_config()
    });
    assert_eq!(
        authenticator.authenticate(&user("alice", "guess")),
        Err(ReasonCode::BadUserNameOrPassword)
    );
}

#[test]
fn a_real_mosquitto_passwd_file_is_accepted() {
    let config_dir = ConfigDir::new();
    // `mosquitto_passwd -c -b passwd carol tern` (Mosquitto 2.0.11).
    config_dir.write(
        "users/passwd",
        b"carol:$7$101$F2hEcRYkl0x4rOZZ$dHzDNwCQYKbK83Er1L5h2bSW/aRxqBW0veFzV6il50RbIkxQGQtMy40oCqmvW05BixQF1Lsbs3Bt0pvQkWzESQ==\n",
    );
    let authenticator = config_dir.load(&password_config());
    assert_eq!(
        method_and_username(authenticator.authenticate(&user("carol", "tern"))),
        Ok((AuthMethod::Password, Some("carol".into())))
    );
}

#[test]
fn a_successful_verification_is_remembered() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    let _ = authenticator.authenticate(&user("alice", "secret"));
    assert_eq!(authenticator.verified_passwords.len(), 1);
}

#[test]
fn a_failed_verification_is_not_remembered() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    let _ = authenticator.authenticate(&user("alice", "guess"));
    assert_eq!(authenticator.verified_passwords.len(), 0);
}

#[test]
fn a_remembered_password_still_admits_with_the_same_identity() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    let first = authenticator.authenticate(&user("alice", "secret"));
    let second = authenticator.authenticate(&user("alice", "secret"));
    assert_eq!(first, second);
}

// --- groups -----------------------------------------------------------------------------------

#[test]
fn configured_groups_are_attached_to_the_user() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&AuthConfig {
        groups: groups(&[
            ("ops", &["alice", "bob"]),
            ("dev", &["alice"]),
            ("qa", &["bob"]),
        ]),
        ..password_config()
    });
    let attached = authenticator
        .authenticate(&user("alice", "secret"))
        .map(|identity| identity.groups);
    assert_eq!(attached, Ok(vec!["dev".to_string(), "ops".to_string()]));
}

#[test]
fn token_groups_join_the_configured_groups() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        jwt: Some(jwt_config()),
        groups: groups(&[("ops", &["sensor-1"])]),
        ..AuthConfig::default()
    });
    let jwt = valid_token("sensor-1");
    let request = Credentials {
        username: None,
        ..user("", &jwt)
    };
    let attached = authenticator
        .authenticate(&request)
        .map(|identity| identity.groups);
    assert_eq!(attached, Ok(vec!["fleet".to_string(), "ops".to_string()]));
}

#[test]
fn current_groups_follow_the_new_group_configuration() {
    let config_dir = ConfigDir::with_users(&[("alice", "secret")]);
    let before = config_dir.load(&AuthConfig {
        groups: groups(&[("ops", &["alice"])]),
        ..password_config()
    });
    let after = config_dir.load(&AuthConfig {
        groups: groups(&[("dev", &["alice"])]),
        ..password_config()
    });
    let current = before
        .authenticate(&user("alice", "secret"))
        .map(|identity| after.current_groups(&identity));
    assert_eq!(current, Ok(vec!["dev".to_string()]));
}

// --- JWT --------------------------------------------------------------------------------------

#[test]
fn a_token_password_admits_its_subject() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        jwt: Some(jwt_config()),
        ..AuthConfig::default()
    });
    let jwt = valid_token("sensor-1");
    let request = Credentials {
        username: None,
        ..user("", &jwt)
    };
    assert_eq!(
        method_and_username(authenticator.authenticate(&request)),
        Ok((AuthMethod::Jwt, Some("sensor-1".into())))
    );
}

#[test]
fn a_token_with_a_matching_connect_username_is_admitted() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        jwt: Some(jwt_config()),
        ..AuthConfig::default()
    });
    let jwt = valid_token("sensor-1");
    assert_eq!(
        method_and_username(authenticator.authenticate(&user("sensor-1", &jwt))),
        Ok((AuthMethod::Jwt, Some("sensor-1".into())))
    );
}

#[test]
fn a_token_for_another_username_is_refused() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        jwt: Some(jwt_config()),
        ..AuthConfig::default()
    });
    let jwt = valid_token("sensor-1");
    assert_eq!(
        authenticator.authenticate(&user("admin", &jwt)),
        Err(ReasonCode::BadUserNameOrPassword)
    );
}

#[test]
fn an_expired_token_is_refused() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        jwt: Some(jwt_config()),
        ..AuthConfig::default()
    });
    let expired = token(json!({"sub": "sensor-1", "exp": 1_000_000}));
    assert_eq!(
        authenticator.authenticate(&user("sensor-1", &expired)),
        Err(ReasonCode::BadUserNameOrPassword)
    );
}

#[test]
fn an_ordinary_password_goes_to_the_password_file_when_jwt_is_configured() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&AuthConfig {
        jwt: Some(jwt_config()),
        ..password_config()
    });
    assert_eq!(
        method_and_username(authenticator.authenticate(&user("alice", "secret"))),
        Ok((AuthMethod::Password, Some("alice".into())))
    );
}

// --- certificates -----------------------------------------------------------------------------

#[test]
fn a_client_certificate_names_the_user_when_tls_identity_is_set() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        tls_identity: Some(TlsIdentity::CommonName),
        ..AuthConfig::default()
    });
    let der = certificate("sensor-9");
    let request = Credentials {
        peer_certificate: Some(&der),
        ..user("someone-else", "ignored")
    };
    assert_eq!(
        method_and_username(authenticator.authenticate(&request)),
        Ok((AuthMethod::Certificate, Some("sensor-9".into())))
    );
}

#[test]
fn a_client_certificate_is_ignored_without_tls_identity() {
    let authenticator = ConfigDir::with_users(&[("alice", "secret")]).load(&password_config());
    let der = certificate("sensor-9");
    let request = Credentials {
        peer_certificate: Some(&der),
        ..user("alice", "secret")
    };
    assert_eq!(
        method_and_username(authenticator.authenticate(&request)),
        Ok((AuthMethod::Password, Some("alice".into())))
    );
}

#[test]
fn a_certificate_without_the_chosen_name_is_refused() {
    let authenticator = ConfigDir::new().load(&AuthConfig {
        tls_identity: Some(TlsIdentity::SubjectAltName),
        ..AuthConfig::default()
    });
    let der = certificate("sensor-9");
    let request = Credentials {
        peer_certificate: Some(&der),
        ..nobody()
    };
    assert_eq!(
        authenticator.authenticate(&request),
        Err(ReasonCode::NotAuthorized)
    );
}

// --- loading ----------------------------------------------------------------------------------

#[test]
fn a_missing_password_file_is_an_error_naming_it() {
    let message = Authenticator::load(&password_config(), ConfigDir::new().dir.path())
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(message.contains("users/passwd"), "{message}");
}

#[test]
fn a_broken_password_line_is_an_error_naming_file_and_line() {
    let config_dir = ConfigDir::new();
    config_dir.write("users/passwd", b"# users\nalice:plaintext\n");
    let error = Authenticator::load(&password_config(), config_dir.dir.path()).err();
    assert!(matches!(
        error,
        Some(AuthError::PasswordLine { path, line: 2, .. }) if path.ends_with("users/passwd")
    ));
}

// --- re-checks after a reload -----------------------------------------------------------------

fn recheck_password_user(after_users: &[(&str, &str)]) -> Recheck {
    let config_dir = ConfigDir::with_users(&[("alice", "secret"), ("bob", "hunter2")]);
    let before = config_dir.load(&password_config());
    let identity = before.authenticate(&user("alice", "secret"));
    config_dir.write_users(after_users);
    let after = config_dir.load(&password_config());
    match identity {
        Ok(identity) => after.recheck(&identity),
        Err(reason) => panic!("alice should have been admitted: {reason}"),
    }
}

#[test]
fn an_unchanged_password_entry_stays_valid() {
    let config_dir = ConfigDir::with_users(&[("alice", "secret")]);
    let authenticator = config_dir.load(&password_config());
    let identity = authenticator.authenticate(&user("alice", "secret"));
    let reloaded = config_dir.load(&password_config());
    assert_eq!(
        identity.map(|identity| reloaded.recheck(&identity)),
        Ok(Recheck::Valid)
    );
}

#[test]
fn a_removed_user_is_reported_removed() {
    assert_eq!(
        recheck_password_user(&[("bob", "hunter2")]),
        Recheck::Removed
    );
}

#[test]
fn a_changed_password_is_reported_changed() {
    assert_eq!(
        recheck_password_user(&[("alice", "new secret"), ("bob", "hunter2")]),
        Recheck::Changed
    );
}

#[test]
fn anonymous_clients_are_removed_when_anonymous_access_is_turned_off() {
    let config_dir = ConfigDir::new();
    let before = config_dir.load(&AuthConfig {
        allow_anonymous: true,
        ..AuthConfig::default()
    });
    let after = config_dir.load(&AuthConfig::default());
    let identity = before.authenticate(&nobody());
    assert_eq!(
        identity.map(|identity| after.recheck(&identity)),
        Ok(Recheck::Removed)
    );
}

#[test]
fn token_clients_are_changed_when_their_key_is_rotated_away() {
    let config_dir = ConfigDir::new();
    let config = AuthConfig {
        jwt: Some(jwt_config()),
        ..AuthConfig::default()
    };
    let before = config_dir.load(&config);
    let identity = before.authenticate(&user("sensor-1", &valid_token("sensor-1")));
    config_dir.write("jwt/secret", b"a rotated secret");
    let after = config_dir.load(&config);
    assert_eq!(
        identity.map(|identity| after.recheck(&identity)),
        Ok(Recheck::Changed)
    );
}

#[test]
fn certificate_clients_are_changed_when_the_identity_field_changes() {
    let config_dir = ConfigDir::new();
    let before = config_dir.load(&AuthConfig {
        tls_identity: Some(TlsIdentity::CommonName),
        ..AuthConfig::default()
    });
    let after = config_dir.load(&AuthConfig {
        tls_identity: Some(TlsIdentity::SubjectAltName),
        ..AuthConfig::default()
    });
    let der = certificate("sensor-9");
    let identity = before.authenticate(&Credentials {
        peer_certificate: Some(&der),
        ..nobody()
    });
    assert_eq!(
        identity.map(|identity| after.recheck(&identity)),
        Ok(Recheck::Changed)
    );
}

#[test]
fn disconnect_reasons_are_valid_disconnect_codes() {
    assert_eq!(
        [Recheck::Valid, Recheck::Removed, Recheck::Changed].map(Recheck::disconnect_reason),
        [
            None,
            Some(ReasonCode::NotAuthorized),
            Some(ReasonCode::AdministrativeAction)
        ]
    );
}

// --- CONNECT mapping --------------------------------------------------------------------------

#[test]
fn credentials_are_taken_from_the_connect_packet() {
    let properties = ConnectProperties {
        authentication_method: Some("SCRAM-SHA-256".into()),
        ..ConnectProperties::default()
    };
    let connect = Connect {
        protocol_version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: "c-7".into(),
        will: None,
        username: Some("alice".into()),
        password: Some(bytes::Bytes::from_static(b"pw")),
        properties,
    };
    let credentials = Credentials::from_connect(&connect, Some(b"der"));
    assert_eq!(
        (
            credentials.username,
            credentials.password,
            credentials.client_id,
            credentials.peer_certificate,
            credentials.authentication_method
        ),
        (
            Some("alice"),
            Some(&b"pw"[..]),
            "c-7",
            Some(&b"der"[..]),
            Some("SCRAM-SHA-256")
        )
    );
}
