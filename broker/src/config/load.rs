//! Reading `broker.yaml` and every file it references from disk, and checking them as a whole
//! before anything uses them.
//!
//! Everything that can be wrong with a configuration is found here, before it goes live: YAML
//! syntax, unknown keys, inconsistent values, missing or unusable TLS material. Every file read
//! feeds the revision hash, so a rotated certificate is a new revision even when `broker.yaml`
//! did not change.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{BrokerConfig, ListenerProtocol};
use crate::acl::{parse_policies, AclError, AclSnapshot};
use crate::auth::{AuthError, Authenticator};
use crate::tls::{self, TlsMaterial};

/// A configuration that parsed and validated, with everything compiled from it and the
/// identity of what was read. The broker holds one of these in an `ArcSwap`: readers never
/// lock and never see a half-applied mix.
#[derive(Clone)]
pub struct LoadedConfig {
    /// The validated configuration.
    pub config: BrokerConfig,
    /// Content hash (first 12 hex digits of SHA-256 over every file read) naming this revision
    /// in logs, metrics and the operator's status.
    pub revision: String,
    /// Directory that relative paths in the configuration are resolved against.
    pub base_dir: PathBuf,
    /// TLS server configurations of the TLS listeners, by listener name.
    pub tls: HashMap<String, Arc<rustls::ServerConfig>>,
    /// The compiled ACL. Connections compare it by pointer to notice a reload.
    pub acl: Arc<AclSnapshot>,
    /// The authentication decisions of this revision (password file, JWT keys read).
    pub auth: Arc<Authenticator>,
    /// What the `renderedRevisionFiles` say, when there are any.
    pub rendered_revision: RenderedRevision,
}

/// The revision a configuration was rendered as, from its `renderedRevisionFiles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderedRevision {
    /// The configuration names no such files (it was not rendered by the operator).
    Unknown,
    /// Every file holds this revision.
    Is(String),
    /// The files disagree: the volume holds parts of different renderings.
    Mixed(Vec<String>),
}

impl std::fmt::Debug for LoadedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedConfig")
            .field("revision", &self.revision)
            .field("base_dir", &self.base_dir)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LoadedConfig {
    /// Compiles an in-memory configuration that references no files (the embedded default).
    pub fn from_config(
        config: BrokerConfig,
        base_dir: PathBuf,
    ) -> Result<LoadedConfig, ConfigError> {
        let text = yaml_serde::to_string(&config).map_err(|error| ConfigError::Invalid {
            path: PathBuf::from("<embedded>"),
            message: error.to_string(),
        })?;
        let mut files = FileReader::new(base_dir);
        files.hasher.update(text.as_bytes());
        compile(config, Path::new("<embedded>"), files)
    }
}

/// Why a configuration was refused. Each message names the file and, where known, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// YAML syntax or schema error (unknown key, wrong type), with position.
    #[error("{path}: {message}")]
    Parse {
        /// File that failed.
        path: PathBuf,
        /// Parser message including line and column.
        message: String,
    },
    /// The file parsed but its content is inconsistent.
    #[error("{path}: {message}")]
    Invalid {
        /// File that failed.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An ACL policy file is unreadable or a policy invalid.
    #[error(transparent)]
    Acl(#[from] AclError),
    /// The password file or a JWT key is unreadable or invalid.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Where the configuration lives: the `broker.yaml` to read and the directory its relative
/// paths are resolved against.
pub fn config_location(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_dir() {
        (path.join("broker.yaml"), path.to_path_buf())
    } else {
        let base = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (path.to_path_buf(), base)
    }
}

/// Loads a configuration from `path`: a directory holding `broker.yaml`, or a YAML file, plus
/// every file it references.
pub fn load_config(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let (file, base_dir) = config_location(path);
    let mut files = FileReader::new(base_dir);
    let bytes = files.read_path(&file)?;
    let config = parse_config(&bytes, &file)?;
    compile(config, &file, files)
}

/// Reads the files `config` references and builds what the broker runs with.
fn compile(
    config: BrokerConfig,
    config_file: &Path,
    mut files: FileReader,
) -> Result<LoadedConfig, ConfigError> {
    let mut tls_configs = HashMap::new();
    for listener in &config.listeners {
        let Some(tls) = &listener.tls else { continue };
        let cert = files.read(&tls.cert_file)?;
        let key = files.read(&tls.key_file)?;
        let client_ca = match &tls.client_ca_file {
            Some(ca) => Some(files.read(ca)?),
            None => None,
        };
        let names = (
            tls.cert_file.display().to_string(),
            tls.key_file.display().to_string(),
            tls.client_ca_file
                .as_ref()
                .map(|ca| ca.display().to_string()),
        );
        let material = TlsMaterial {
            cert: (&names.0, &cert),
            key: (&names.1, &key),
            client_ca: names.2.as_deref().zip(client_ca.as_deref()),
            require_client_cert: tls.require_client_cert,
        };
        let server_config =
            tls::server_config(&material).map_err(|error| ConfigError::Invalid {
                path: config_file.to_path_buf(),
                message: format!("listener `{}`: {error}", listener.name),
            })?;
        tls_configs.insert(listener.name.clone(), server_config);
    }
    let mut policies = Vec::new();
    for acl_file in &config.acl.files {
        let bytes = files.read(acl_file)?;
        policies.extend(parse_policies(&bytes, acl_file)?);
    }
    let acl = AclSnapshot::compile(policies, config.acl.effective_default_action())?;
    // The authenticator reads its files itself; reading them here too puts their content
    // into the revision, so a changed password or key is a new revision.
    if let Some(password_file) = &config.auth.password_file {
        files.read(password_file)?;
    }
    for key in config.auth.jwt.iter().flat_map(|jwt| &jwt.keys) {
        files.read(&key.file)?;
    }
    let auth = Authenticator::load(&config.auth, &files.base_dir)?;
    let rendered_revision = rendered_revision(&config.rendered_revision_files, &mut files)?;
    let base_dir = files.base_dir.clone();
    Ok(LoadedConfig {
        config,
        revision: files.revision(),
        base_dir,
        tls: tls_configs,
        acl: Arc::new(acl),
        auth: Arc::new(auth),
        rendered_revision,
    })
}

/// Reads the `renderedRevisionFiles`: each must hold one revision (letters and digits, at
/// most 64); they agree or the configuration is reported as [`RenderedRevision::Mixed`].
fn rendered_revision(
    paths: &[PathBuf],
    files: &mut FileReader,
) -> Result<RenderedRevision, ConfigError> {
    let mut revisions: Vec<String> = Vec::new();
    for path in paths {
        let bytes = files.read(path)?;
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if !is_revision(&text) {
            return Err(ConfigError::Invalid {
                path: path.clone(),
                message: "a rendered revision file must hold one revision (up to 64 letters \
                          and digits)"
                    .into(),
            });
        }
        if !revisions.contains(&text) {
            revisions.push(text);
        }
    }
    Ok(match revisions.len() {
        0 => RenderedRevision::Unknown,
        1 => RenderedRevision::Is(revisions.remove(0)),
        _ => RenderedRevision::Mixed(revisions),
    })
}

/// Reads configuration files relative to the base directory, hashing everything it reads
/// (names and contents) into the revision.
pub(crate) struct FileReader {
    base_dir: PathBuf,
    hasher: Sha256,
}

impl FileReader {
    fn new(base_dir: PathBuf) -> FileReader {
        FileReader {
            base_dir,
            hasher: Sha256::new(),
        }
    }

    /// Reads `relative` (or an absolute path) from the configuration directory.
    pub(crate) fn read(&mut self, relative: &Path) -> Result<Vec<u8>, ConfigError> {
        let path = self.base_dir.join(relative);
        self.read_path(&path)
    }

    fn read_path(&mut self, path: &Path) -> Result<Vec<u8>, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.to_string_lossy();
        self.hasher.update((name.len() as u64).to_le_bytes());
        self.hasher.update(name.as_bytes());
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(&bytes);
        Ok(bytes)
    }

    fn revision(self) -> String {
        hex::encode(&self.hasher.finalize()[..6])
    }
}

/// Parses and validates YAML text; `file` only labels error messages.
pub fn parse_config(bytes: &[u8], file: &Path) -> Result<BrokerConfig, ConfigError> {
    let config: BrokerConfig =
        yaml_serde::from_slice(bytes).map_err(|error| ConfigError::Parse {
            path: file.to_path_buf(),
            message: error.to_string(),
        })?;
    validate(&config).map_err(|message| ConfigError::Invalid {
        path: file.to_path_buf(),
        message,
    })?;
    Ok(config)
}

/// Whether `text` has the form of a configuration revision: 1 to 64 ASCII letters and digits.
/// Checked where a revision crosses a process boundary (a rendered revision file, an answer
/// of `/revision`), so neither side takes arbitrary text for one.
pub fn is_revision(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The revision id of some bytes (used for configurations that are not read from files).
pub fn revision_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(&digest[..6])
}

/// Checks what the schema alone cannot: uniqueness and ranges.
fn validate(config: &BrokerConfig) -> Result<(), String> {
    if config.listeners.is_empty() {
        return Err("`listeners` must name at least one listener".into());
    }
    let mut names = HashSet::new();
    let mut sockets = HashSet::new();
    for listener in &config.listeners {
        if listener.name.is_empty() {
            return Err("listener name must not be empty".into());
        }
        if let Some(path) = &listener.path {
            if listener.protocol != ListenerProtocol::Websocket {
                return Err(format!(
                    "listener `{}`: `path` only applies to websocket listeners",
                    listener.name
                ));
            }
            if !path.starts_with('/') {
                return Err(format!(
                    "listener `{}`: path `{path}` must start with `/`",
                    listener.name
                ));
            }
        }
        if !names.insert(listener.name.as_str()) {
            return Err(format!("duplicate listener name `{}`", listener.name));
        }
        if !sockets.insert(listener.port) && listener.port != 0 {
            return Err(format!(
                "listener `{}`: port {} is used by another listener",
                listener.name, listener.port
            ));
        }
    }
    if config.metrics.enabled
        && config.metrics.port != 0
        && config
            .listeners
            .iter()
            .any(|l| l.port == config.metrics.port)
    {
        return Err(format!(
            "metrics port {} is also used by a listener",
            config.metrics.port
        ));
    }
    let limits = &config.limits;
    if limits.receive_maximum == 0 {
        return Err("limits.receiveMaximum must be at least 1".into());
    }
    if limits.max_inflight == 0 {
        return Err("limits.maxInflight must be at least 1".into());
    }
    if !(64..=crate::protocol::MAX_REMAINING_LENGTH as u32 + 5).contains(&limits.max_packet_size) {
        return Err("limits.maxPacketSize must be between 64 and 268435460 bytes".into());
    }
    if limits.max_topic_levels == 0 {
        return Err("limits.maxTopicLevels must be at least 1".into());
    }
    if limits.max_connections == 0 {
        return Err("limits.maxConnections must be at least 1".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BrokerConfig, ConfigError> {
        parse_config(text.as_bytes(), Path::new("broker.yaml"))
    }

    #[test]
    fn minimal_config_fills_defaults() {
        let config = parse("listeners: [{ name: mqtt, port: 1883 }]").unwrap();
        assert_eq!(config.listeners[0].bind.to_string(), "0.0.0.0");
        assert_eq!(config.limits.max_queued_messages, 1000);
        assert!(!config.auth.allow_anonymous);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name_and_line() {
        let error = parse("listeners: [{ name: mqtt, port: 1883 }]\nlimitz: {}\n").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("limitz"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn duplicate_ports_are_rejected() {
        let error = parse("listeners: [{ name: a, port: 1883 }, { name: b, port: 1883 }]")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("port 1883 is used by another listener"),
            "{error}"
        );
    }

    #[test]
    fn embedded_default_round_trips_through_yaml() {
        let text = yaml_serde::to_string(&BrokerConfig::embedded_default()).unwrap();
        assert_eq!(parse(&text).unwrap(), BrokerConfig::embedded_default());
    }

    #[test]
    fn rendered_revision_files_agree_disagree_or_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let load_with = |a: &str, b: &str| {
            std::fs::write(dir.path().join("a"), a).unwrap();
            std::fs::write(dir.path().join("b"), b).unwrap();
            std::fs::write(
                dir.path().join("broker.yaml"),
                "listeners: [ { name: mqtt, port: 1883 } ]\nrenderedRevisionFiles: [a, b]\n",
            )
            .unwrap();
            load_config(dir.path()).map(|loaded| loaded.rendered_revision)
        };
        assert_eq!(
            load_with("abc123\n", "abc123").unwrap(),
            RenderedRevision::Is("abc123".into())
        );
        assert_eq!(
            load_with("abc123", "def456").unwrap(),
            RenderedRevision::Mixed(vec!["abc123".into(), "def456".into()])
        );
        let refused = load_with("abc123", "not a revision")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("rendered revision"), "{refused}");
        let plain = LoadedConfig::from_config(BrokerConfig::embedded_default(), dir.path().into());
        assert_eq!(plain.unwrap().rendered_revision, RenderedRevision::Unknown);
    }

    #[test]
    fn revision_changes_with_content() {
        assert_ne!(revision_of(b"a"), revision_of(b"b"));
        assert_eq!(revision_of(b"a").len(), 12);
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
listeners:
  - { name: mqtt, port: 1883, bind: 0.0.0.0, protocol: mqtt }
  - { name: mqtts, port: 8883, protocol: mqtt, tls: { certFile: tls/tls.crt, keyFile: tls/tls.key, clientCaFile: tls/ca.crt } }
  - { name: ws, port: 8083, protocol: websocket, path: /mqtt }
limits: { maxKeepAlive: 60, receiveMaximum: 100, maxPacketSize: 1048576, topicAliasMaximum: 10, maxQueuedMessages: 1000, maxConnections: 100000 }
metrics: { bind: 0.0.0.0, port: 9090 }
auth:
  allowAnonymous: false
  passwordFile: users/passwd
  jwt: { usernameClaim: sub, keys: [ { file: jwt/key.pem, algorithm: RS256 } ] }
  tlsIdentity: commonName
acl:
  defaultAction: deny
  files: [acl/policies.yaml]
"#;
        let config = parse(text).unwrap();
        assert_eq!(
            config.listeners[2].protocol,
            super::super::ListenerProtocol::Websocket
        );
        assert_eq!(
            config.acl.effective_default_action(),
            super::super::DefaultAction::Deny
        );
    }
}
