//! A directory written exactly the way the kubelet writes a ConfigMap or Secret volume, so hot
//! reload is tested against the real thing.
//!
//! The kubelet's atomic writer keeps each version of the data in a hidden timestamped
//! directory, points the `..data` symlink at the current one, and exposes every top-level entry
//! as a symlink through `..data` (`broker.yaml -> ..data/broker.yaml`, `tls -> ..data/tls`). An
//! update writes the new version's directory completely, creates `..data_tmp` pointing at it,
//! renames `..data_tmp` over `..data` (the atomic step), adjusts the top-level symlinks and
//! removes the old version. Readers therefore see either the old or the new version of every
//! file, never a mix — as long as they read through the symlinks.

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context};

/// One file of a volume: its path relative to the volume (may contain `/`) and its content.
pub type VolumeFile = (String, Vec<u8>);

/// A kubelet-style projected volume in a temporary directory.
#[derive(Debug)]
pub struct ProjectedVolume {
    dir: tempfile::TempDir,
    /// Current version directory name (`..2026_11_22_10_00_00.000000001`).
    current: Option<String>,
}

/// Makes version directory names unique even within one clock tick.
static VERSION: AtomicU64 = AtomicU64::new(0);

impl ProjectedVolume {
    /// A volume holding `files`.
    pub fn new(files: &[VolumeFile]) -> anyhow::Result<ProjectedVolume> {
        let dir = tempfile::Builder::new()
            .prefix("volume-")
            .tempdir()
            .context("creating the volume directory")?;
        let mut volume = ProjectedVolume { dir, current: None };
        volume.update(files)?;
        Ok(volume)
    }

    /// The mount point (what `--config` is given).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the whole content with `files`, atomically, as the kubelet does.
    pub fn update(&mut self, files: &[VolumeFile]) -> anyhow::Result<()> {
        let root = self.dir.path().to_path_buf();
        let version = format!(
            "..{}.{:09}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            VERSION.fetch_add(1, Ordering::Relaxed)
        );
        let version_dir = root.join(&version);
        std::fs::create_dir(&version_dir).context("creating the version directory")?;
        let mut top_level = BTreeSet::new();
        for (relative, content) in files {
            let relative_path = Path::new(relative);
            if relative_path.is_absolute() || relative.split('/').any(|c| c == ".." || c.is_empty())
            {
                bail!("volume path `{relative}` must be relative and plain");
            }
            let target = version_dir.join(relative_path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, content).with_context(|| format!("writing {relative}"))?;
            if let Some(first) = relative.split('/').next() {
                top_level.insert(first.to_string());
            }
        }
        // The atomic step: `..data` flips from the old version to the new one.
        let staging = root.join("..data_tmp");
        symlink(&version, &staging).context("creating ..data_tmp")?;
        std::fs::rename(&staging, root.join("..data")).context("renaming ..data_tmp")?;
        // Top-level names: add the new ones, drop those the new version no longer has.
        for name in &top_level {
            let link = root.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(PathBuf::from("..data").join(name), &link)
                    .with_context(|| format!("linking {name}"))?;
            }
        }
        for entry in std::fs::read_dir(&root)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !top_level.contains(&name) {
                std::fs::remove_file(root.join(&name))?;
            }
        }
        if let Some(old) = self.current.replace(version) {
            std::fs::remove_dir_all(root.join(old)).context("removing the old version")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> VolumeFile {
        (path.to_string(), content.as_bytes().to_vec())
    }

    #[test]
    fn files_are_reachable_through_the_data_symlink() {
        let volume =
            ProjectedVolume::new(&[file("broker.yaml", "a"), file("tls/tls.crt", "c")]).unwrap();
        let link = std::fs::read_link(volume.path().join("broker.yaml")).unwrap();
        assert_eq!(link, Path::new("..data/broker.yaml"));
        assert_eq!(
            std::fs::read_to_string(volume.path().join("tls/tls.crt")).unwrap(),
            "c"
        );
    }

    #[test]
    fn an_update_replaces_content_and_removes_the_old_version() {
        let mut volume =
            ProjectedVolume::new(&[file("broker.yaml", "a"), file("old", "x")]).unwrap();
        volume.update(&[file("broker.yaml", "b")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(volume.path().join("broker.yaml")).unwrap(),
            "b"
        );
        assert!(std::fs::symlink_metadata(volume.path().join("old")).is_err());
        let versions = std::fs::read_dir(volume.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.starts_with("..") && name != "..data"
            })
            .count();
        assert_eq!(versions, 1);
    }
}
