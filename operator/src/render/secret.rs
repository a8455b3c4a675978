//! The operator's Secret: the password file (hashes only), JWT keys and listener TLS material,
//! copied from the Secrets the spec references.
//!
//! TLS material is copied rather than mounted from the user's Secret so that adding or removing
//! a TLS listener changes this Secret only, never the pod template; a rotated certificate
//! arrives through the operator's watch on Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;

use super::broker_config::files;
use super::names::{ClusterNames, CONFIG_REVISION_ANNOTATION};

/// Secret material for one cluster, gathered by the controller from the referenced Secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretMaterial {
    /// Username → password hash (`$7$...`), never a plaintext.
    pub password_hashes: BTreeMap<String, String>,
    /// JWT Secret key → key bytes.
    pub jwt_keys: BTreeMap<String, ByteString>,
    /// Listener name → its TLS material.
    pub tls: BTreeMap<String, TlsMaterial>,
}

/// The TLS files of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// PEM certificate chain (`tls.crt`).
    pub cert: ByteString,
    /// PEM private key (`tls.key`).
    pub key: ByteString,
    /// PEM client CA bundle (`ca.crt`), for mutual TLS.
    pub client_ca: Option<ByteString>,
}

impl SecretMaterial {
    /// The Secret's files, named as `broker.yaml` refers to them.
    pub fn files(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::new();
        if !self.password_hashes.is_empty() {
            data.insert(
                files::PASSWORDS.to_string(),
                ByteString(self.password_file().into_bytes()),
            );
        }
        for (key, bytes) in &self.jwt_keys {
            data.insert(files::jwt_key(key), bytes.clone());
        }
        for (listener, tls) in &self.tls {
            data.insert(files::tls_cert(listener), tls.cert.clone());
            data.insert(files::tls_key(listener), tls.key.clone());
            if let Some(ca) = &tls.client_ca {
                data.insert(files::tls_client_ca(listener), ca.clone());
            }
        }
        data
    }

    /// The `mosquitto_passwd`-format password file, one `user:hash` line per user, sorted.
    fn password_file(&self) -> String {
        self.password_hashes
            .iter()
            .map(|(user, hash)| format!("{user}:{hash}\n"))
            .collect()
    }
}

/// The Secret, annotated with the revision of the whole configuration it is part of.
pub fn secret(
    names: &ClusterNames,
    data: BTreeMap<String, ByteString>,
    config_revision: &str,
) -> Secret {
    let mut metadata = names.metadata(names.secret());
    metadata.annotations = Some(BTreeMap::from([(
        CONFIG_REVISION_ANNOTATION.to_string(),
        config_revision.to_string(),
    )]));
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}
