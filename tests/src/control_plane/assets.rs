//! Where the Kubernetes executables come from: `$TERN_KUBE_ASSETS`, or the cache that
//! `scripts/kube-test-env.sh` fills.
//!
//! Tests never build the binaries themselves (the build installs Debian packages as root and
//! takes minutes); they ask the script for its cached directory only and fail with instructions
//! when there is none.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Environment variable naming a directory of ready executables (like envtest's
/// `KUBEBUILDER_ASSETS`); `scripts/test.sh` exports it.
pub const TERN_KUBE_ASSETS_ENV: &str = "TERN_KUBE_ASSETS";

/// The executables a control plane needs, all in one directory.
pub const EXECUTABLES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
];

/// What to tell a developer whose machine lacks the binaries.
const HOW_TO_GET_THEM: &str = "run scripts/kube-test-env.sh once (it builds Kubernetes v1.20.2 \
     from Debian's source package, several minutes) or set TERN_KUBE_ASSETS to a directory \
     holding etcd, kube-apiserver, kube-controller-manager and kubectl";

/// The directory holding every executable in [`EXECUTABLES`].
///
/// Uses `$TERN_KUBE_ASSETS` when set, else the script's cache (`kube-test-env.sh --cached-only`,
/// which never builds). Fails with instructions when neither has them.
pub fn kube_assets_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os(TERN_KUBE_ASSETS_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => cached_assets_dir()?,
    };
    verify_assets_dir(dir)
}

/// `dir` itself when it holds every executable in [`EXECUTABLES`], else an error naming the
/// missing ones and how to get them.
fn verify_assets_dir(dir: PathBuf) -> anyhow::Result<PathBuf> {
    let missing: Vec<&str> = EXECUTABLES
        .into_iter()
        .filter(|name| !is_executable(&dir.join(name)))
        .collect();
    if !missing.is_empty() {
        bail!(
            "Kubernetes test binaries missing in {}: {}; {HOW_TO_GET_THEM}",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(dir)
}

/// Asks `scripts/kube-test-env.sh --cached-only` for its cache directory.
fn cached_assets_dir() -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kube-test-env.sh");
    let output = Command::new(&script)
        .arg("--cached-only")
        .env_remove(TERN_KUBE_ASSETS_ENV)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "Kubernetes test binaries not found ({}); {HOW_TO_GET_THEM}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last() {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => bail!(
            "{} printed no directory; {HOW_TO_GET_THEM}",
            script.display()
        ),
    }
}

/// Whether `path` is a regular file with an execute bit.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_the_binaries_is_refused_with_instructions() {
        let empty = tempfile::tempdir().expect("temporary directory");

        let error = verify_assets_dir(empty.path().to_path_buf()).expect_err("must be refused");

        let message = error.to_string();
        assert!(
            message.contains("etcd, kube-apiserver, kube-controller-manager, kubectl")
                && message.contains("scripts/kube-test-env.sh"),
            "{message}"
        );
    }
}
