//! TLS material for listeners: turning a listener's certificate, key and client-CA files into a
//! rustls server configuration.
//!
//! Built while a configuration is loaded, so bad material (a missing file, a key that is not a
//! key, a CA bundle without certificates) rejects the whole configuration before it goes live.
//! The result is part of the live snapshot and looked up at every handshake, which is how a
//! rotated certificate reaches new connections without touching open ones.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What is wrong with a listener's TLS material; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file held no usable item of the expected kind.
    #[error("{file}: {problem}")]
    Material {
        /// The file, as configured.
        file: String,
        /// What was expected and not found.
        problem: String,
    },
    /// rustls refused the combination (e.g. the key does not fit the certificate).
    #[error("{0}")]
    Rustls(String),
}

/// The PEM contents of one listener's TLS files, as read by the loader.
pub struct TlsMaterial<'a> {
    /// Certificate chain file name (for messages) and bytes.
    pub cert: (&'a str, &'a [u8]),
    /// Private key file name and bytes.
    pub key: (&'a str, &'a [u8]),
    /// Client CA bundle file name and bytes, for mutual TLS.
    pub client_ca: Option<(&'a str, &'a [u8])>,
    /// Whether clients must present a certificate (only with `client_ca`).
    pub require_client_cert: bool,
}

/// Builds the server configuration for `material`.
pub fn server_config(material: &TlsMaterial<'_>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert_file, cert_pem) = material.cert;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|error| material_error(cert_file, format!("invalid PEM: {error}")))?;
    if chain.is_empty() {
        return Err(material_error(cert_file, "no CERTIFICATE found".into()));
    }
    let (key_file, key_pem) = material.key;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| {
        material_error(key_file, format!("no usable private key found: {error}"))
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Rustls(error.to_string()))?;
    let builder = match material.client_ca {
        None => builder.with_no_client_auth(),
        Some((ca_file, ca_pem)) => {
            let mut roots = RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(ca_pem) {
                let certificate = certificate
                    .map_err(|error| material_error(ca_file, format!("invalid PEM: {error}")))?;
                roots.add(certificate).map_err(|error| {
                    material_error(ca_file, format!("unusable CA certificate: {error}"))
                })?;
            }
            if roots.is_empty() {
                return Err(material_error(ca_file, "no CERTIFICATE found".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if material.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|error| material_error(ca_file, error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Rustls(format!("{cert_file} and {key_file}: {error}")))?;
    Ok(Arc::new(config))
}

fn material_error(file: &str, problem: String) -> TlsError {
    TlsError::Material {
        file: file.to_string(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn material<'a>(cert: &'a str, key: &'a str) -> TlsMaterial<'a> {
        TlsMaterial {
            cert: ("tls.crt", cert.as_bytes()),
            key: ("tls.key", key.as_bytes()),
            client_ca: None,
            require_client_cert: true,
        }
    }

    #[test]
    fn a_matching_certificate_and_key_build_a_server_config() {
        let (cert, key) = self_signed();
        assert!(server_config(&material(&cert, &key)).is_ok());
    }

    #[test]
    fn a_key_file_without_a_key_is_refused_naming_the_file() {
        let (cert, _) = self_signed();
        let error = server_config(&material(&cert, &cert))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("tls.key: no usable private key"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_certificate_file_is_refused_naming_the_file() {
        let (_, key) = self_signed();
        let error = server_config(&material("", &key)).unwrap_err().to_string();
        assert_eq!(error, "tls.crt: no CERTIFICATE found");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        assert!(server_config(&material(&cert, &other_key)).is_err());
    }

    #[test]
    fn a_client_ca_enables_client_verification() {
        let (cert, key) = self_signed();
        let mut with_ca = material(&cert, &key);
        with_ca.client_ca = Some(("ca.crt", cert.as_bytes()));
        assert!(server_config(&with_ca).is_ok());
    }
}
