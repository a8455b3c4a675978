//! Reading the Secrets a cluster references into the [`SecretMaterial`] it is rendered with.
//!
//! Password hashes are salted at random, so hashing every plaintext on every reconciliation
//! would rewrite the operator's Secret (and signal every pod) each time. Instead a user's hash
//! from the currently applied Secret is kept while the plaintext still verifies against it;
//! only a new user or a changed password gets a fresh hash. The rendered Secret therefore
//! changes exactly when a credential does.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::{Api, Client, ResourceExt};
use tern_broker::auth::{hash_password, PasswordCheck, PasswordFile};

use crate::crd::MqttCluster;
use crate::render::{files, SecretMaterial, TlsMaterial};

/// Why a cluster's Secret material could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// A referenced Secret does not exist.
    #[error("Secret `{secret}` (referenced by {field}) does not exist")]
    MissingSecret {
        /// Secret name.
        secret: String,
        /// The spec field that references it.
        field: String,
    },
    /// A referenced key is not in its Secret.
    #[error("Secret `{secret}` has no key `{key}` (referenced by {field})")]
    MissingKey {
        /// Secret name.
        secret: String,
        /// The missing key.
        key: String,
        /// The spec field that references it.
        field: String,
    },
    /// A password is not UTF-8 text.
    #[error("the password of user `{username}` in Secret `{secret}` is not UTF-8 text")]
    PasswordNotUtf8 {
        /// The user.
        username: String,
        /// Secret name.
        secret: String,
    },
    /// Two users share a username.
    #[error("user `{0}` is listed more than once in spec.auth.users")]
    DuplicateUser(String),
    /// Reading a Secret failed.
    #[error("cannot read Secret `{secret}`: {source}")]
    Api {
        /// Secret name.
        secret: String,
        /// The client's error.
        source: kube::Error,
    },
}

impl MaterialError {
    /// Whether this is the user's to fix (reported in status) rather than a transient API
    /// failure (retried).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, MaterialError::Api { .. })
    }
}

/// Reads every Secret `cluster` references. `applied` is the operator's currently applied
/// Secret, whose password hashes are reused while they still verify.
pub async fn gather_secret_material(
    client: &Client,
    cluster: &MqttCluster,
    applied: Option<&Secret>,
) -> Result<SecretMaterial, MaterialError> {
    let namespace = cluster.namespace().unwrap_or_default();
    let mut secrets = SecretReader {
        api: Api::namespaced(client.clone(), &namespace),
        cache: HashMap::new(),
    };
    let spec = &cluster.spec;
    let mut material = SecretMaterial::default();

    let previous = PreviousPasswords::from_secret(applied);
    for (index, user) in spec.auth.users.iter().enumerate() {
        let field = format!("spec.auth.users[{index}].passwordSecret");
        let reference = &user.password_secret;
        let bytes = secrets.key(&reference.name, &reference.key, &field).await?;
        let plaintext = String::from_utf8(bytes.0).map_err(|_| MaterialError::PasswordNotUtf8 {
            username: user.username.clone(),
            secret: reference.name.clone(),
        })?;
        let hash = previous
            .still_valid_hash(&user.username, &plaintext)
            .unwrap_or_else(|| hash_password(&plaintext));
        if material
            .password_hashes
            .insert(user.username.clone(), hash)
            .is_some()
        {
            return Err(MaterialError::DuplicateUser(user.username.clone()));
        }
    }

    if let Some(jwt) = &spec.auth.jwt {
        for (index, key) in jwt.keys.iter().enumerate() {
            let field = format!("spec.auth.jwt.keys[{index}]");
            let bytes = secrets.key(&jwt.secret_name, &key.key, &field).await?;
            material.jwt_keys.insert(key.key.clone(), bytes);
        }
    }

    for (index, listener) in spec.listeners.iter().enumerate() {
        let Some(tls) = &listener.tls else { continue };
        let field = format!("spec.listeners[{index}].tls");
        let cert = secrets.key(&tls.secret_name, "tls.crt", &field).await?;
        let key = secrets.key(&tls.secret_name, "tls.key", &field).await?;
        let client_ca = match &tls.client_ca_secret_name {
            Some(name) => Some(secrets.key(name, "ca.crt", &field).await?),
            None => None,
        };
        material.tls.insert(
            listener.name.clone(),
            TlsMaterial {
                cert,
                key,
                client_ca,
            },
        );
    }
    Ok(material)
}

/// Reads Secrets once per reconciliation, however many fields reference them.
struct SecretReader {
    api: Api<Secret>,
    cache: HashMap<String, Option<BTreeMap<String, ByteString>>>,
}

impl SecretReader {
    async fn key(
        &mut self,
        secret: &str,
        key: &str,
        field: &str,
    ) -> Result<ByteString, MaterialError> {
        if !self.cache.contains_key(secret) {
            let fetched = self
                .api
                .get_opt(secret)
                .await
                .map_err(|source| MaterialError::Api {
                    secret: secret.to_string(),
                    source,
                })?;
            self.cache.insert(
                secret.to_string(),
                fetched.map(|secret| secret.data.unwrap_or_default()),
            );
        }
        let data = self
            .cache
            .get(secret)
            .and_then(Option::as_ref)
            .ok_or_else(|| MaterialError::MissingSecret {
                secret: secret.to_string(),
                field: field.to_string(),
            })?;
        data.get(key)
            .cloned()
            .ok_or_else(|| MaterialError::MissingKey {
                secret: secret.to_string(),
                key: key.to_string(),
                field: field.to_string(),
            })
    }
}

/// The password file of the applied Secret: hashes to keep while they still verify.
struct PreviousPasswords {
    file: Option<PasswordFile>,
    hashes: HashMap<String, String>,
}

impl PreviousPasswords {
    fn from_secret(applied: Option<&Secret>) -> PreviousPasswords {
        let contents = applied
            .and_then(|secret| secret.data.as_ref())
            .and_then(|data| data.get(files::PASSWORDS))
            .map(|bytes| bytes.0.clone())
            .unwrap_or_default();
        // An unreadable previous file only means every user is hashed afresh.
        let file = PasswordFile::parse(&contents, Path::new(files::PASSWORDS)).ok();
        let hashes = String::from_utf8_lossy(&contents)
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(user, hash)| (user.trim().to_string(), hash.trim().to_string()))
            .collect();
        PreviousPasswords { file, hashes }
    }

    /// The applied hash of `username`, if `plaintext` still verifies against it.
    fn still_valid_hash(&self, username: &str, plaintext: &str) -> Option<String> {
        let file = self.file.as_ref()?;
        match file.check(username, plaintext.as_bytes()) {
            PasswordCheck::Match { .. } => self.hashes.get(username).cloned(),
            PasswordCheck::Mismatch | PasswordCheck::UnknownUser => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied_secret(passwd: &str) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                files::PASSWORDS.to_string(),
                ByteString(passwd.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    #[test]
    fn a_hash_that_still_verifies_is_kept() {
        let hash = hash_password("s3cret");
        let secret = applied_secret(&format!("alice:{hash}\n"));
        let previous = PreviousPasswords::from_secret(Some(&secret));
        assert_eq!(previous.still_valid_hash("alice", "s3cret"), Some(hash));
    }

    #[test]
    fn a_changed_password_is_hashed_afresh() {
        let secret = applied_secret(&format!("alice:{}\n", hash_password("old")));
        let previous = PreviousPasswords::from_secret(Some(&secret));
        assert_eq!(previous.still_valid_hash("alice", "new"), None);
    }

    #[test]
    fn a_new_user_is_hashed_afresh() {
        let previous = PreviousPasswords::from_secret(None);
        assert_eq!(previous.still_valid_hash("bob", "pw"), None);
    }
}
