//! The configuration revision: one content hash over everything the brokers read.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use tern_broker::config::revision_of;

/// The revision of a rendered configuration: the broker's revision hash (12 hex digits of
/// SHA-256) over the ConfigMap and Secret files, each framed by its name and length so no two
/// different file sets hash the same bytes. It changes exactly when a file the brokers read
/// changes, whichever of the two objects holds it.
pub fn config_revision(
    config_map_data: &BTreeMap<String, String>,
    secret_data: &BTreeMap<String, ByteString>,
) -> String {
    let mut framed = Vec::new();
    let config_files = config_map_data
        .iter()
        .map(|(name, text)| (name, text.as_bytes()));
    let secret_files = secret_data
        .iter()
        .map(|(name, bytes)| (name, bytes.0.as_slice()));
    for (name, bytes) in config_files.chain(secret_files) {
        framed.extend_from_slice(&(name.len() as u64).to_be_bytes());
        framed.extend_from_slice(name.as_bytes());
        framed.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        framed.extend_from_slice(bytes);
    }
    revision_of(&framed)
}
