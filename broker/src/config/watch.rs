//! Noticing that the configuration on disk changed.
//!
//! Kubernetes updates a mounted ConfigMap or Secret by writing a new timestamped directory and
//! atomically renaming the `..data` symlink to point at it; the visible files are symlinks
//! through `..data`. Such a swap is a handful of create/rename/delete events in the mounted
//! directory, and an editor's save is a similar burst. The watcher therefore watches the whole
//! configuration directory (recursively, so Secrets mounted in subdirectories count too) and
//! reports only *that* something changed; the reloader waits for the burst to settle, re-reads
//! everything and compares revisions, so spurious events cost one re-read and nothing else.

use std::path::Path;

use notify::{recommended_watcher, Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::warn;

/// A running watch; dropping it stops the notifications.
pub struct ConfigWatch {
    _watcher: RecommendedWatcher,
}

/// Starts watching the configuration at `path` (a directory, or a single file whose directory
/// is then watched). Every relevant change sends `()` on the returned channel.
pub fn watch(path: &Path) -> notify::Result<(ConfigWatch, mpsc::UnboundedReceiver<()>)> {
    let (changes, receiver) = mpsc::unbounded_channel();
    let mut watcher = recommended_watcher(move |result: notify::Result<Event>| match result {
        Ok(event) if is_change(&event.kind) => {
            let _ = changes.send(());
        }
        Ok(_) => {}
        Err(error) => {
            warn!(%error, "configuration watch error; forcing a re-read");
            let _ = changes.send(());
        }
    })?;
    let (target, mode) = if path.is_dir() {
        (path.to_path_buf(), RecursiveMode::Recursive)
    } else {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        (parent, RecursiveMode::NonRecursive)
    };
    watcher.watch(&target, mode)?;
    Ok((ConfigWatch { _watcher: watcher }, receiver))
}

/// Whether an event may mean different content: creations, writes, renames, removals. Plain
/// reads (including the broker's own re-reads) are not changes.
fn is_change(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_symlink_swap_in_the_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..v1")).unwrap();
        std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
        let (_watch, mut changes) = watch(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("..v2")).unwrap();
        std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        let reported = tokio::time::timeout(Duration::from_secs(5), changes.recv()).await;
        assert_eq!(reported, Ok(Some(())));
    }

    #[tokio::test]
    async fn reading_a_file_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broker.yaml"), "x").unwrap();
        let (_watch, mut changes) = watch(dir.path()).unwrap();
        let _ = std::fs::read(dir.path().join("broker.yaml")).unwrap();
        let reported = tokio::time::timeout(Duration::from_millis(300), changes.recv()).await;
        assert!(reported.is_err(), "a read was reported as a change");
    }
}
