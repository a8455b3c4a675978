//! One control-plane process (etcd, kube-apiserver, kube-controller-manager) running in a
//! process group of its own, with its output in a log file, killed with its whole group when
//! dropped.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// How many lines of a log [`LoggedProcess::log_tail`] shows.
const LOG_TAIL_LINES: usize = 40;

/// A child process whose stdout and stderr go to `<name>.log`; dropping it kills the process
/// group (so helpers the process spawned die too) and reaps the child.
#[derive(Debug)]
pub(crate) struct LoggedProcess {
    name: &'static str,
    child: Child,
    log_path: PathBuf,
}

impl LoggedProcess {
    /// Spawns `command` in a new process group, logging to `<log_dir>/<name>.log`.
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        log_dir: &Path,
    ) -> anyhow::Result<LoggedProcess> {
        let log_path = log_dir.join(format!("{name}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating a log file handle")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {name} ({:?})", command.get_program()))?;
        Ok(LoggedProcess {
            name,
            child,
            log_path,
        })
    }

    /// Which process this is (`etcd`, `kube-apiserver`, ...).
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// `Some(description)` once the process has exited, `None` while it runs.
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.to_string()),
            Err(error) => Some(format!("cannot be waited for: {error}")),
        }
    }

    /// Everything the process has logged so far.
    pub(crate) fn log(&self) -> String {
        match std::fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) => format!("<cannot read {}: {error}>", self.log_path.display()),
        }
    }

    /// The last lines of the log under a heading naming the process, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- last {} lines of {} ---\n{}\n",
            tail.len(),
            self.log_path.display(),
            tail.join("\n")
        )
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.child.id()) {
            // SAFETY: kill has no memory-safety preconditions. The group id is our unreaped
            // child's pid, so it cannot have been recycled for an unrelated group.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
