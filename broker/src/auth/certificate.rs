//! Usernames taken from verified client certificates (mutual TLS).
//!
//! The TLS layer has already checked the chain against the listener's client CA; this module
//! only reads the name the operator chose to trust, as Mosquitto's `use_identity_as_username`
//! (Common Name) and `use_subject_as_username` do.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::config::TlsIdentity;

/// Why a certificate yields no username; safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateRejection {
    /// The bytes are not a DER X.509 certificate.
    #[error("the client certificate is not valid DER X.509")]
    Malformed,
    /// The subject has no (UTF-8) Common Name.
    #[error("the client certificate's subject has no Common Name")]
    NoCommonName,
    /// There is no DNS or e-mail Subject Alternative Name.
    #[error("the client certificate has no DNS or e-mail Subject Alternative Name")]
    NoSubjectAltName,
}

/// The username `source` selects from the DER-encoded certificate `der` (the end-entity
/// certificate as rustls hands it over): the subject's first Common Name, or the first DNS or
/// e-mail Subject Alternative Name.
pub fn certificate_username(
    der: &[u8],
    source: TlsIdentity,
) -> Result<String, CertificateRejection> {
    let (_, certificate) =
        X509Certificate::from_der(der).map_err(|_| CertificateRejection::Malformed)?;
    match source {
        TlsIdentity::CommonName => certificate
            .subject()
            .iter_common_name()
            .next()
            .and_then(|name| name.as_str().ok())
            .map(str::to_owned)
            .ok_or(CertificateRejection::NoCommonName),
        TlsIdentity::SubjectAltName => certificate
            .subject_alternative_name()
            .map_err(|_| CertificateRejection::Malformed)?
            .and_then(|extension| {
                extension
                    .value
                    .general_names
                    .iter()
                    .find_map(|name| match name {
                        GeneralName::DNSName(text) | GeneralName::RFC822Name(text) => {
                            Some((*text).to_owned())
                        }
                        _ => None,
                    })
            })
            .ok_or(CertificateRejection::NoSubjectAltName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn certificate(common_name: Option<&str>, alt_names: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        if let Some(name) = common_name {
            subject.push(DnType::CommonName, name);
        }
        params.distinguished_name = subject;
        params.subject_alt_names = alt_names;
        let key = KeyPair::generate().expect("key generation");
        params
            .self_signed(&key)
            .expect("self-signing succeeds")
            .der()
            .to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().expect("valid DNS name"))
    }

    fn email(address: &str) -> SanType {
        SanType::Rfc822Name(address.try_into().expect("valid e-mail"))
    }

    #[test]
    fn common_name_becomes_the_username() {
        let der = certificate(Some("sensor-17"), vec![dns("sensor-17.example")]);
        assert_eq!(
            certificate_username(&der, TlsIdentity::CommonName),
            Ok("sensor-17".into())
        );
    }

    #[test]
    fn first_dns_alt_name_becomes_the_username() {
        let der = certificate(
            Some("ignored"),
            vec![dns("gw-1.example"), dns("gw-2.example")],
        );
        assert_eq!(
            certificate_username(&der, TlsIdentity::SubjectAltName),
            Ok("gw-1.example".into())
        );
    }

    #[test]
    fn email_alt_name_becomes_the_username() {
        let der = certificate(None, vec![email("ops@example.com")]);
        assert_eq!(
            certificate_username(&der, TlsIdentity::SubjectAltName),
            Ok("ops@example.com".into())
        );
    }

    #[test]
    fn certificate_without_common_name_yields_no_username() {
        let der = certificate(None, vec![dns("gw-1.example")]);
        assert_eq!(
            certificate_username(&der, TlsIdentity::CommonName),
            Err(CertificateRejection::NoCommonName)
        );
    }

    #[test]
    fn certificate_without_alt_names_yields_no_username() {
        let der = certificate(Some("sensor-17"), Vec::new());
        assert_eq!(
            certificate_username(&der, TlsIdentity::SubjectAltName),
            Err(CertificateRejection::NoSubjectAltName)
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(
            certificate_username(b"not DER", TlsIdentity::CommonName),
            Err(CertificateRejection::Malformed)
        );
    }
}
