//! Starting and stopping a real broker process (Tern or Mosquitto) on 127.0.0.1.
//!
//! [`BrokerProcess::start`] picks a free port, writes the broker's configuration into a
//! temporary directory, spawns the binary with its output captured to a log file there, and
//! returns once the MQTT port accepts TCP connections. Dropping the handle kills the process;
//! [`BrokerProcess::stop`] stops it gracefully (SIGTERM, then SIGKILL after 5 s).
//!
//! The API is synchronous so that both plain `#[test]`s and `#[tokio::test]`s can use it.
//!
//! ```no_run
//! use tern_e2e::broker::{BrokerConfig, BrokerKind, BrokerProcess};
//!
//! let broker = BrokerProcess::start(BrokerKind::Mosquitto, &BrokerConfig::default())?;
//! println!("broker listening on {}", broker.addr());
//! broker.stop()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// How long [`BrokerProcess::start`] waits for the MQTT port to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval between readiness probes.
const READY_POLL: Duration = Duration::from_millis(20);
/// How long [`BrokerProcess::stop`] waits after SIGTERM before sending SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Environment variable naming a `tern-broker` binary to use instead of the workspace's.
pub const TERN_BROKER_BIN_ENV: &str = "TERN_BROKER_BIN";
/// Environment variable naming a `mosquitto` binary to use instead of the system one.
pub const MOSQUITTO_BIN_ENV: &str = "MOSQUITTO_BIN";
/// Mosquitto's own log file in the broker directory (stdout/stderr go to `broker.log`).
const MOSQUITTO_LOG: &str = "mosquitto.log";
/// Where Debian's `mosquitto` package installs the broker.
const MOSQUITTO_DEFAULT_BIN: &str = "/usr/sbin/mosquitto";

/// Which broker implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    /// Tern, this repository's broker (`tern-broker`).
    Tern,
    /// Eclipse Mosquitto 2, the reference broker.
    Mosquitto,
}

impl BrokerKind {
    /// Lower-case name, as used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Tern => "tern",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }
}

impl std::fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Limits and protocol maxima; `None` leaves the broker's own default.
///
/// Mapping to Mosquitto options: `max_packet_size`, `max_keepalive`,
/// `max_inflight_messages` (from `max_inflight`, or else `receive_maximum`, since Mosquitto uses
/// one value for both directions), `max_queued_messages`, `max_topic_alias` and the listener's
/// `max_connections`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Receive Maximum the broker advertises to clients.
    pub receive_maximum: Option<u16>,
    /// Largest packet accepted from clients, in bytes.
    pub max_packet_size: Option<u32>,
    /// Highest keep alive (seconds) a client may use.
    pub max_keep_alive: Option<u16>,
    /// Messages queued per session.
    pub max_queued_messages: Option<usize>,
    /// Unacknowledged QoS 1/2 messages sent to a client at once.
    pub max_inflight: Option<u16>,
    /// Topic aliases a client may use towards the broker.
    pub topic_alias_maximum: Option<u16>,
    /// Simultaneous client connections.
    pub max_connections: Option<usize>,
}

/// What to configure in the started broker. `BrokerConfig::default()` is an anonymous-access
/// broker with the broker's default limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Limits; only the `Some` ones are written to the configuration.
    pub limits: Limits,
    /// Whether clients without credentials may connect (default `true`).
    pub allow_anonymous: bool,
    /// Seconds between `$SYS` updates (`sys.intervalSeconds` / `sys_interval`).
    pub sys_interval_secs: Option<u32>,
    /// YAML appended verbatim to Tern's `broker.yaml` (ignored for Mosquitto); must consist of
    /// complete top-level keys.
    pub extra_yaml: Option<String>,
    /// Lines appended verbatim to Mosquitto's configuration file (ignored for Tern).
    pub extra_mosquitto_conf: Option<String>,
    /// Only log warnings and errors (benchmarks: per-connection logging would cost time).
    pub quiet: bool,
    /// Raise the process's open-file limit (RLIMIT_NOFILE) to this value, capped at the hard
    /// limit. Needed for thousands of connections.
    pub nofile_limit: Option<u64>,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            limits: Limits::default(),
            allow_anonymous: true,
            sys_interval_secs: None,
            extra_yaml: None,
            extra_mosquitto_conf: None,
            quiet: false,
            nofile_limit: None,
        }
    }
}

/// A running broker process, killed when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    kind: BrokerKind,
    child: Option<Child>,
    port: u16,
    metrics_port: Option<u16>,
    log_path: PathBuf,
    // Declared last so the directory outlives the process that writes into it.
    dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts a broker of `kind` on a free port of 127.0.0.1 and waits (up to 10 s) until the
    /// port accepts TCP connections.
    ///
    /// Fails with the broker's log in the message if the process exits or does not become
    /// ready. For Tern, the binary is found (and built if missing) as described in
    /// [`tern_broker_binary`].
    pub fn start(kind: BrokerKind, config: &BrokerConfig) -> anyhow::Result<BrokerProcess> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", kind.name()))
            .tempdir()
            .context("creating the broker's temporary directory")?;
        let port = free_port()?;

        let (command, metrics_port) = match kind {
            BrokerKind::Tern => {
                let metrics_port = free_port()?;
                let yaml = tern_yaml(config, port, metrics_port);
                std::fs::write(dir.path().join("broker.yaml"), yaml)
                    .context("writing broker.yaml")?;
                let mut command = Command::new(tern_broker_binary()?);
                command.arg("--config").arg(dir.path());
                let filter = if config.quiet {
                    "warn".to_string()
                } else {
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string())
                };
                command.env("RUST_LOG", filter);
                (command, Some(metrics_port))
            }
            BrokerKind::Mosquitto => {
                let conf_path = dir.path().join("mosquitto.conf");
                let log_file = dir.path().join(MOSQUITTO_LOG);
                std::fs::write(&conf_path, mosquitto_conf(config, port, &log_file))
                    .context("writing mosquitto.conf")?;
                let mut command = Command::new(mosquitto_binary());
                command.arg("-c").arg(&conf_path);
                (command, None)
            }
        };

        BrokerProcess::launch(kind, command, dir, port, metrics_port, config.nofile_limit)
    }

    /// Starts Tern from `dir`, writing its `broker.yaml` first: one MQTT listener and the
    /// metrics endpoint on free ports of 127.0.0.1, then `extra_yaml` (complete top-level keys,
    /// such as `auth:` and `acl:`; paths in it are relative to `dir`).
    pub fn start_tern_in(dir: &Path, extra_yaml: &str) -> anyhow::Result<BrokerProcess> {
        let (port, metrics) = (free_port()?, free_port()?);
        std::fs::write(
            dir.join("broker.yaml"),
            format!(
                "listeners: [ {{ name: mqtt, port: {port}, bind: 127.0.0.1 }} ]\n\
                 metrics: {{ bind: 127.0.0.1, port: {metrics} }}\n{extra_yaml}"
            ),
        )
        .context("writing broker.yaml")?;
        BrokerProcess::start_tern_with_config(dir, port, Some(metrics))
    }

    /// Starts `tern-broker --config CONFIG` for a configuration the test manages itself (for
    /// example a [`crate::projected::ProjectedVolume`] it rewrites to exercise reloads), and
    /// waits until `port` — which that configuration must listen on — accepts connections.
    pub fn start_tern_with_config(
        config: &Path,
        port: u16,
        metrics_port: Option<u16>,
    ) -> anyhow::Result<BrokerProcess> {
        let dir = tempfile::Builder::new()
            .prefix("tern-")
            .tempdir()
            .context("creating the broker's temporary directory")?;
        let mut command = Command::new(tern_broker_binary()?);
        command.arg("--config").arg(config);
        command.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
        );
        BrokerProcess::launch(BrokerKind::Tern, command, dir, port, metrics_port, None)
    }

    fn launch(
        kind: BrokerKind,
        mut command: Command,
        dir: tempfile::TempDir,
        port: u16,
        metrics_port: Option<u16>,
        nofile_limit: Option<u64>,
    ) -> anyhow::Result<BrokerProcess> {
        let log_path = dir.path().join("broker.log");
        let log = File::create(&log_path).context("creating the broker log file")?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if let Some(limit) = nofile_limit {
            // SAFETY: the closure runs between fork and exec and only calls getrlimit and
            // setrlimit, which are async-signal-safe; it allocates nothing.
            unsafe {
                command.pre_exec(move || raise_nofile(limit));
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("spawning {kind}: {:?}", command.get_program()))?;

        let mut broker = BrokerProcess {
            kind,
            child: Some(child),
            port,
            metrics_port,
            log_path,
            dir,
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    /// Polls the MQTT port until a TCP connect succeeds, the process exits, or the timeout.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait()? {
                bail!(
                    "{} exited before accepting connections ({status}); log:\n{}",
                    self.kind,
                    self.log()
                );
            }
            if TcpStream::connect_timeout(&addr, READY_POLL * 5).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept connections on {addr} within {READY_TIMEOUT:?}; log:\n{}",
                    self.kind,
                    self.log()
                );
            }
            std::thread::sleep(READY_POLL);
        }
    }

    fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => child.try_wait().context("checking the broker process"),
            None => Err(anyhow!("broker process already reaped")),
        }
    }

    /// Which broker this is.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// The MQTT port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:PORT"` of the MQTT listener.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The MQTT listener as a socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Process id of the broker.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Resident set size of the broker in KiB (`VmRSS` in `/proc/PID/status`).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib_of(self.pid())
    }

    /// Port of Tern's HTTP metrics endpoint on 127.0.0.1; `None` for Mosquitto.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Everything the broker logged so far: its stdout and stderr, followed for Mosquitto by
    /// its own log file (Mosquitto buffers stdout, so its log goes to a file it flushes).
    pub fn log(&self) -> String {
        let mut log = read_lossy(&self.log_path);
        let mosquitto_log = self.dir.path().join(MOSQUITTO_LOG);
        if self.kind == BrokerKind::Mosquitto && mosquitto_log.exists() {
            log.push_str(&read_lossy(&mosquitto_log));
        }
        log
    }

    /// The temporary directory holding the configuration (Tern: `broker.yaml`, Mosquitto:
    /// `mosquitto.conf`) and the log. Tests may rewrite files here to exercise reloads.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Sends a signal (e.g. `libc::SIGHUP`) to the broker.
    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        let pid = i32::try_from(self.pid()).context("pid out of range")?;
        if self.child.is_none() || pid == 0 {
            bail!("broker process already stopped");
        }
        // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child,
        // so it cannot have been recycled for another process.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("kill");
        }
        Ok(())
    }

    /// Stops the broker: SIGTERM, wait up to 5 s, then SIGKILL. Returns the exit status.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            self.child = None;
            return Ok(status);
        }
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            std::thread::sleep(READY_POLL);
        }
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("broker process already reaped"))?;
        child.kill().context("SIGKILL after SIGTERM timeout")?;
        child.wait().context("waiting for the killed broker")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A file's content as text, or a note saying why it could not be read.
fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => format!("<cannot read {}: {error}>\n", path.display()),
    }
}

/// Resident set size in KiB of any process, from `/proc/PID/status`.
pub fn rss_kib_of(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS line in {path}"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, release it).
///
/// The kernel may hand the same ephemeral port out again once it is released, so ports given
/// to earlier callers in this process are skipped: two ports asked for by one test (say a
/// listener's and the metrics port) are always distinct.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..64 {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
        let port = listener.local_addr()?.port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    anyhow::bail!("no fresh ephemeral port after 64 attempts")
}

/// Raises the soft RLIMIT_NOFILE to `wanted`, capped at the hard limit. Async-signal-safe.
fn raise_nofile(wanted: u64) -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let target = wanted.min(limit.rlim_max);
    if target > limit.rlim_cur {
        limit.rlim_cur = target;
        // SAFETY: `limit` is a valid rlimit struct with cur <= max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises this process's own soft RLIMIT_NOFILE towards `wanted` (capped at the hard limit)
/// and returns the resulting soft limit. Child processes inherit it.
pub fn raise_own_nofile_limit(wanted: u64) -> anyhow::Result<u64> {
    raise_nofile(wanted).context("setrlimit(RLIMIT_NOFILE)")?;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    Ok(limit.rlim_cur)
}

/// Renders Tern's `broker.yaml`.
fn tern_yaml(config: &BrokerConfig, port: u16, metrics_port: u16) -> String {
    let mut yaml = String::new();
    let _ = writeln!(yaml, "listeners:");
    let _ = writeln!(
        yaml,
        "  - {{ name: mqtt, port: {port}, bind: 127.0.0.1, protocol: mqtt }}"
    );
    let limits = &config.limits;
    let entries: Vec<String> = [
        ("maxKeepAlive", limits.max_keep_alive.map(u64::from)),
        ("receiveMaximum", limits.receive_maximum.map(u64::from)),
        ("maxPacketSize", limits.max_packet_size.map(u64::from)),
        (
            "topicAliasMaximum",
            limits.topic_alias_maximum.map(u64::from),
        ),
        (
            "maxQueuedMessages",
            limits.max_queued_messages.map(|v| v as u64),
        ),
        ("maxConnections", limits.max_connections.map(|v| v as u64)),
        ("maxInflight", limits.max_inflight.map(u64::from)),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| format!("{key}: {value}")))
    .collect();
    if !entries.is_empty() {
        let _ = writeln!(yaml, "limits: {{ {} }}", entries.join(", "));
    }
    let _ = writeln!(yaml, "metrics: {{ bind: 127.0.0.1, port: {metrics_port} }}");
    if let Some(interval) = config.sys_interval_secs {
        let _ = writeln!(yaml, "sys: {{ intervalSeconds: {interval} }}");
    }
    let _ = writeln!(
        yaml,
        "auth: {{ allowAnonymous: {} }}",
        config.allow_anonymous
    );
    if let Some(extra) = &config.extra_yaml {
        yaml.push_str(extra);
        if !extra.ends_with('\n') {
            yaml.push('\n');
        }
    }
    yaml
}

/// Renders Mosquitto's configuration file.
fn mosquitto_conf(config: &BrokerConfig, port: u16, log_file: &Path) -> String {
    let mut conf = String::new();
    let limits = &config.limits;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Mosquitto started as root switches to the `mosquitto` user, which could then not open
        // the log file in our private temporary directory.
        let _ = writeln!(conf, "user root");
    }
    let _ = writeln!(conf, "persistence false");
    let _ = writeln!(conf, "log_dest file {}", log_file.display());
    if config.quiet {
        let _ = writeln!(conf, "log_type error");
        let _ = writeln!(conf, "log_type warning");
        let _ = writeln!(conf, "connection_messages false");
    } else {
        let _ = writeln!(conf, "log_type all");
    }
    // Tern sets TCP_NODELAY on every connection; do the same so latency is comparable.
    let _ = writeln!(conf, "set_tcp_nodelay true");
    if let Some(value) = limits.max_packet_size {
        let _ = writeln!(conf, "max_packet_size {value}");
    }
    if let Some(value) = limits.max_keep_alive {
        let _ = writeln!(conf, "max_keepalive {value}");
    }
    if let Some(value) = limits.max_inflight.or(limits.receive_maximum) {
        let _ = writeln!(conf, "max_inflight_messages {value}");
    }
    if let Some(value) = limits.max_queued_messages {
        let _ = writeln!(conf, "max_queued_messages {value}");
    }
    if let Some(value) = config.sys_interval_secs {
        let _ = writeln!(conf, "sys_interval {value}");
    }
    // Listener-scoped options follow the listener line.
    let _ = writeln!(conf, "listener {port} 127.0.0.1");
    let _ = writeln!(conf, "allow_anonymous {}", config.allow_anonymous);
    if let Some(value) = limits.max_connections {
        let _ = writeln!(conf, "max_connections {value}");
    }
    if let Some(value) = limits.topic_alias_maximum {
        let _ = writeln!(conf, "max_topic_alias {value}");
    }
    if let Some(extra) = &config.extra_mosquitto_conf {
        conf.push_str(extra);
        if !extra.ends_with('\n') {
            conf.push('\n');
        }
    }
    conf
}

/// The Mosquitto binary: `$MOSQUITTO_BIN`, else `/usr/sbin/mosquitto`, else `mosquitto` on the
/// `PATH`.
pub fn mosquitto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(MOSQUITTO_BIN_ENV) {
        return PathBuf::from(path);
    }
    if Path::new(MOSQUITTO_DEFAULT_BIN).exists() {
        return PathBuf::from(MOSQUITTO_DEFAULT_BIN);
    }
    PathBuf::from("mosquitto")
}

/// The cargo profile whose `tern-broker` binary is used: `debug` when this crate is compiled
/// with debug assertions (tests), `release` otherwise (the benchmark).
fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The cargo target directory this crate was built into: `CARGO_TARGET_DIR` at compile time
/// (relative paths taken against the workspace root), else `<workspace>/target`.
fn target_dir() -> PathBuf {
    match option_env!("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Path of the `tern-broker` binary, building it if it is missing or out of date.
///
/// `$TERN_BROKER_BIN` wins if set. Otherwise the binary is
/// `<target>/<profile>/tern-broker` (profile `debug` for tests, `release` for the benchmark);
/// if it is missing or older than a file under `broker/`, `cargo build -p tern-broker
/// [--release]` runs, at most once per process (parallel callers wait for it).
pub fn tern_broker_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(TERN_BROKER_BIN_ENV) {
        let path = PathBuf::from(path);
        if !path.exists() {
            bail!("{TERN_BROKER_BIN_ENV}={} does not exist", path.display());
        }
        return Ok(path);
    }
    // The outcome (path or error) is remembered so a failing build is not retried by every test.
    static BUILT: OnceLock<Mutex<Option<Result<PathBuf, String>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let outcome = built.get_or_insert_with(|| {
        let path = target_dir().join(profile()).join("tern-broker");
        if !path.exists() || is_stale(&path) {
            build_tern_broker(&path).map_err(|error| format!("{error:#}"))?;
        }
        Ok(path)
    });
    outcome.clone().map_err(|error| anyhow!(error))
}

/// Whether any file of the broker crate (sources, manifest, lock file) is newer than `binary`,
/// so that tests never run yesterday's broker after an edit.
fn is_stale(binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    let root = workspace_root();
    let mut pending = vec![
        root.join("broker").join("src"),
        root.join("broker").join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    // Bounded walk: the broker crate has at most a few hundred files.
    let mut visited = 0usize;
    while let Some(path) = pending.pop() {
        visited += 1;
        if visited > 10_000 {
            return true;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if meta.modified().is_ok_and(|modified| modified > built) {
            return true;
        }
    }
    false
}

/// Runs `cargo build -p tern-broker` for the current profile into the current target dir.
fn build_tern_broker(expected: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "-p", "tern-broker", "--bin", "tern-broker"])
        .env("CARGO_TARGET_DIR", target_dir());
    if profile() == "release" {
        command.arg("--release");
    }
    eprintln!(
        "tern-broker binary at {} is missing or out of date; building it: {command:?}",
        expected.display()
    );
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("building tern-broker failed ({status}): {command:?}");
    }
    if !expected.exists() {
        bail!(
            "{command:?} succeeded but {} does not exist",
            expected.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A minimal MQTT 3.1.1 CONNECT (client id "h", clean session, keep alive 60).
    const CONNECT_311: [u8; 15] = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'h',
    ];

    fn connack(addr: &str) -> [u8; 4] {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream.write_all(&CONNECT_311).expect("write CONNECT");
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).expect("read CONNACK");
        buf
    }

    #[test]
    fn mosquitto_starts_accepts_mqtt_and_stops() {
        let broker = BrokerProcess::start(BrokerKind::Mosquitto, &BrokerConfig::default())
            .expect("start mosquitto");
        assert!(broker.port() > 0);
        assert_eq!(broker.addr(), format!("127.0.0.1:{}", broker.port()));
        assert!(broker.rss_kib().expect("rss") > 0);
        assert_eq!(broker.metrics_port(), None);
        assert!(broker.config_dir().join("mosquitto.conf").exists());
        assert_eq!(connack(&broker.addr()), [0x20, 2, 0, 0], "{}", broker.log());
        // The log is readable while the broker runs (not stuck in a stdout buffer).
        let log = broker.log();
        assert!(log.contains("New client connected"), "{log}");
        let status = broker.stop().expect("stop");
        assert!(status.code().is_some() || status.signal_is_term());
    }

    #[test]
    fn mosquitto_accepts_all_limits() {
        let config = BrokerConfig {
            limits: Limits {
                receive_maximum: Some(20),
                max_packet_size: Some(4096),
                max_keep_alive: Some(30),
                max_queued_messages: Some(50),
                max_inflight: Some(10),
                topic_alias_maximum: Some(5),
                max_connections: Some(10),
            },
            sys_interval_secs: Some(1),
            quiet: true,
            nofile_limit: Some(4096),
            ..BrokerConfig::default()
        };
        let broker = BrokerProcess::start(BrokerKind::Mosquitto, &config).expect("start mosquitto");
        assert_eq!(connack(&broker.addr()), [0x20, 2, 0, 0], "{}", broker.log());
        let limits =
            std::fs::read_to_string(format!("/proc/{}/limits", broker.pid())).expect("limits");
        let soft: u64 = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|soft| soft.parse().ok())
            .expect("Max open files line");
        assert!(soft >= 4096, "{limits}");
        drop(broker);
    }

    #[test]
    fn bad_mosquitto_config_reports_log() {
        let config = BrokerConfig {
            extra_mosquitto_conf: Some("no_such_option 1".into()),
            ..BrokerConfig::default()
        };
        let error = BrokerProcess::start(BrokerKind::Mosquitto, &config).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("exited"), "{message}");
        assert!(message.contains("no_such_option"), "{message}");
    }

    #[test]
    fn tern_yaml_only_emits_set_limits() {
        let mut config = BrokerConfig::default();
        let yaml = tern_yaml(&config, 1883, 9090);
        assert!(!yaml.contains("limits"), "{yaml}");
        assert!(yaml.contains("port: 1883"));
        assert!(yaml.contains("metrics: { bind: 127.0.0.1, port: 9090 }"));
        assert!(yaml.contains("allowAnonymous: true"));
        config.limits.receive_maximum = Some(7);
        config.limits.max_connections = Some(3);
        config.sys_interval_secs = Some(2);
        config.extra_yaml = Some("future: {}".into());
        let yaml = tern_yaml(&config, 1883, 9090);
        assert!(
            yaml.contains("limits: { receiveMaximum: 7, maxConnections: 3 }"),
            "{yaml}"
        );
        assert!(yaml.contains("sys: { intervalSeconds: 2 }"));
        assert!(yaml.ends_with("future: {}\n"));
    }

    trait SignalIsTerm {
        fn signal_is_term(&self) -> bool;
    }

    impl SignalIsTerm for ExitStatus {
        fn signal_is_term(&self) -> bool {
            use std::os::unix::process::ExitStatusExt;
            self.signal() == Some(libc::SIGTERM)
        }
    }
}
