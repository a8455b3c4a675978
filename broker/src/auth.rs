//! Deciding whether a CONNECT may proceed.
//!
//! Kept a pure function of the live configuration and the CONNECT, so it is testable without
//! sockets and a configuration swap takes effect for the very next client.

use crate::config::AuthConfig;
use crate::protocol::{Connect, ReasonCode};

/// Accepts or refuses a client's credentials.
///
/// With no user database configured (the password file, JWT and mTLS identities come with the
/// live-configuration work), credentials cannot be verified: anonymous access then decides,
/// as in Mosquitto without a `password_file`.
pub fn authenticate(config: &AuthConfig, connect: &Connect) -> Result<(), ReasonCode> {
    if connect.properties.authentication_method.is_some() {
        return Err(ReasonCode::BadAuthenticationMethod);
    }
    let anonymous = connect.username.is_none() && connect.password.is_none();
    match (config.allow_anonymous, anonymous) {
        (true, _) => Ok(()),
        (false, true) => Err(ReasonCode::NotAuthorized),
        (false, false) => Err(ReasonCode::BadUserNameOrPassword),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConnectProperties, ProtocolVersion};

    fn connect(username: Option<&str>) -> Connect {
        Connect {
            protocol_version: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: "c".into(),
            will: None,
            username: username.map(Into::into),
            password: None,
            properties: ConnectProperties::default(),
        }
    }

    #[test]
    fn anonymous_clients_are_refused_unless_allowed() {
        let config = AuthConfig {
            allow_anonymous: false,
            ..AuthConfig::default()
        };
        assert_eq!(
            authenticate(&config, &connect(None)),
            Err(ReasonCode::NotAuthorized)
        );
    }

    #[test]
    fn anonymous_clients_are_accepted_when_allowed() {
        let config = AuthConfig {
            allow_anonymous: true,
            ..AuthConfig::default()
        };
        assert_eq!(authenticate(&config, &connect(None)), Ok(()));
    }

    #[test]
    fn unknown_users_are_refused_without_a_user_database() {
        let config = AuthConfig {
            allow_anonymous: false,
            ..AuthConfig::default()
        };
        assert_eq!(
            authenticate(&config, &connect(Some("alice"))),
            Err(ReasonCode::BadUserNameOrPassword)
        );
    }

    #[test]
    fn enhanced_authentication_is_refused() {
        let mut request = connect(None);
        request.properties.authentication_method = Some("SCRAM-SHA-1".into());
        let config = AuthConfig {
            allow_anonymous: true,
            ..AuthConfig::default()
        };
        assert_eq!(
            authenticate(&config, &request),
            Err(ReasonCode::BadAuthenticationMethod)
        );
    }
}
