//! A Tern broker whose configuration directory is a kubelet-style [`ProjectedVolume`] the test
//! rewrites, with helpers that wait until a change is live (or refused).

use std::time::Duration;

use crate::broker::BrokerProcess;
use crate::http::{self, metric};
use crate::projected::{ProjectedVolume, VolumeFile};

/// How long a configuration change may take to be applied or refused.
pub const APPLY_WITHIN: Duration = Duration::from_secs(5);

/// A volume file from a path and content.
pub fn file(path: &str, content: impl Into<Vec<u8>>) -> VolumeFile {
    (path.to_string(), content.into())
}

/// A running `tern-broker --config VOLUME`.
pub struct LiveBroker {
    /// The configuration volume.
    pub volume: ProjectedVolume,
    /// The broker process.
    pub process: BrokerProcess,
    /// Port of `/metrics` and `/readyz` (the configuration must put `metrics` there).
    pub metrics_port: u16,
}

impl LiveBroker {
    /// Writes `files` into a new volume and starts the broker on it; `first_port` is a listener
    /// port of that configuration. Returns once `/readyz` reports ready.
    pub fn start(first_port: u16, files: &[VolumeFile], metrics_port: u16) -> LiveBroker {
        let volume = ProjectedVolume::new(files).expect("writing the volume");
        let process =
            BrokerProcess::start_tern_with_config(volume.path(), first_port, Some(metrics_port))
                .expect("starting tern-broker");
        // The first listener accepting does not mean the others and /readyz are up yet.
        http::poll(APPLY_WITHIN, || {
            http::ready_revision(metrics_port).ok().flatten()
        })
        .unwrap_or_else(|| panic!("broker never became ready; log:\n{}", process.log()));
        LiveBroker {
            volume,
            process,
            metrics_port,
        }
    }

    /// The revision `/readyz` reports, `None` while not ready.
    pub fn revision(&self) -> Option<String> {
        http::ready_revision(self.metrics_port).ok().flatten()
    }

    /// `tern_config_reloads_total{result=...}`.
    pub fn reloads(&self, result: &str) -> f64 {
        self.metric(&format!("tern_config_reloads_total{{result=\"{result}\"}}"))
    }

    /// The current value of a metric series (0 when absent).
    pub fn metric(&self, series: &str) -> f64 {
        metric(self.metrics_port, series).expect("scraping /metrics")
    }

    /// Swaps the volume to `files` and waits until the broker runs a new revision.
    pub fn apply(&mut self, files: &[VolumeFile]) -> String {
        let before = self.revision();
        self.volume.update(files).expect("updating the volume");
        http::poll(APPLY_WITHIN, || {
            self.revision().filter(|r| Some(r) != before.as_ref())
        })
        .unwrap_or_else(|| panic!("new revision not applied; log:\n{}", self.process.log()))
    }

    /// Swaps the volume to `files` and waits until the broker refuses them; asserts the
    /// running revision did not change and returns the broker's log.
    pub fn apply_rejected(&mut self, files: &[VolumeFile]) -> String {
        let revision = self.revision();
        let failures = self.reloads("failure");
        self.volume.update(files).expect("updating the volume");
        http::poll(APPLY_WITHIN, || {
            (self.reloads("failure") > failures).then_some(())
        })
        .unwrap_or_else(|| panic!("reload not refused; log:\n{}", self.process.log()));
        assert_eq!(self.revision(), revision, "the running revision changed");
        self.process.log()
    }
}
