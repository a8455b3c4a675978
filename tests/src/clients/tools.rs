//! Third-party clients run as processes: `mosquitto_sub`, `mosquitto_pub` and the paho-mqtt
//! scenario scripts in `tests/paho/`. Every process gets a hard timeout and is killed when its
//! handle is dropped.

use std::process::Stdio;
use std::time::Duration;

use tern_broker::protocol::ProtocolVersion;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::STEP_TIMEOUT;

/// Directory of the paho-mqtt scenario scripts.
const PAHO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/paho");

/// Hard limit for one paho scenario (the scripts' own deadline is a little shorter).
const PAHO_TIMEOUT: Duration = Duration::from_secs(25);

fn mosquitto_version_arg(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V311 => "mqttv311",
        ProtocolVersion::V5 => "mqttv5",
    }
}

/// Command-line options for [`MosquittoSub`]; build with [`SubOptions::new`] and the setters.
#[derive(Debug, Clone)]
pub struct SubOptions {
    version: ProtocolVersion,
    topics: Vec<String>,
    qos: u8,
    client_id: Option<String>,
    persistent: bool,
    count: usize,
    timeout_secs: u32,
    format: Option<String>,
    extra: Vec<String>,
}

impl SubOptions {
    /// Subscribe to `topic` at QoS 0 and stop after 1 message or 5 s; output is `-v`
    /// (`topic payload`).
    pub fn new(version: ProtocolVersion, topic: &str) -> SubOptions {
        SubOptions {
            version,
            topics: vec![topic.to_owned()],
            qos: 0,
            client_id: None,
            persistent: false,
            count: 1,
            timeout_secs: 5,
            format: None,
            extra: Vec::new(),
        }
    }

    /// Also subscribe to `topic` (`-t` again).
    pub fn topic(mut self, topic: &str) -> SubOptions {
        self.topics.push(topic.to_owned());
        self
    }

    /// Subscription QoS (`-q`).
    pub fn qos(mut self, qos: u8) -> SubOptions {
        self.qos = qos;
        self
    }

    /// Client identifier (`-i`).
    pub fn client_id(mut self, id: &str) -> SubOptions {
        self.client_id = Some(id.to_owned());
        self
    }

    /// Persistent session (`-c`: clean session 0; in 5.0 also session expiry "never").
    pub fn persistent(mut self) -> SubOptions {
        self.persistent = true;
        self
    }

    /// Exit after this many messages (`-C`).
    pub fn count(mut self, count: usize) -> SubOptions {
        self.count = count;
        self
    }

    /// Give up after this many seconds (`-W`).
    pub fn timeout_secs(mut self, secs: u32) -> SubOptions {
        self.timeout_secs = secs;
        self
    }

    /// Output format (`-F`), e.g. `"%t %q %r %E %p"`; replaces the default `-v` output.
    pub fn format(mut self, format: &str) -> SubOptions {
        self.format = Some(format.to_owned());
        self
    }

    /// Any further argument.
    pub fn arg(mut self, arg: &str) -> SubOptions {
        self.extra.push(arg.to_owned());
        self
    }

    fn command(&self, port: u16, exit_after_subscribe: bool) -> Command {
        // stdout is a pipe, so mosquitto_sub would block-buffer it and the SUBACK line would only
        // appear at exit: `stdbuf -oL` makes it line-buffered.
        let mut command = Command::new("stdbuf");
        command
            .args(["-oL", "mosquitto_sub"])
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-V", mosquitto_version_arg(self.version)])
            .args(["-q", &self.qos.to_string()])
            // Debug output tells when the SUBACK arrived; its lines are filtered out below.
            .arg("-d");
        for topic in &self.topics {
            command.args(["-t", topic]);
        }
        if let Some(id) = &self.client_id {
            command.args(["-i", id]);
        }
        if self.persistent {
            command.arg("-c");
        }
        if exit_after_subscribe {
            command.arg("-E");
        } else {
            command
                .args(["-C", &self.count.to_string()])
                .args(["-W", &self.timeout_secs.to_string()]);
        }
        match &self.format {
            Some(format) => command.args(["-F", format]),
            None => command.arg("-v"),
        };
        command.args(&self.extra);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// Whether a `mosquitto_sub -d` output line is debug chatter rather than a message.
fn is_debug_line(line: &str) -> bool {
    line.starts_with("Client ") || line.starts_with("Subscribed (mid")
}

/// A running `mosquitto_sub`, subscribed (its SUBACK has arrived) when [`MosquittoSub::spawn`]
/// returns.
#[derive(Debug)]
pub struct MosquittoSub {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    messages: Vec<String>,
    limit: Duration,
}

impl MosquittoSub {
    /// Starts `mosquitto_sub` against 127.0.0.1:`port` and waits until it is subscribed.
    ///
    /// # Panics
    /// If it exits or does not get its SUBACK within [`STEP_TIMEOUT`].
    pub async fn spawn(port: u16, options: &SubOptions) -> MosquittoSub {
        let mut command = options.command(port, false);
        let limit = Duration::from_secs(u64::from(options.timeout_secs)) + STEP_TIMEOUT;
        let mut sub = MosquittoSub::start(&mut command, limit);
        sub.wait_subscribed().await;
        sub
    }

    /// Runs `mosquitto_sub -E` (exit once subscribed): creates a subscription, e.g. in a
    /// persistent session (`options.persistent()`), and disconnects normally.
    pub async fn subscribe_and_exit(port: u16, options: &SubOptions) {
        let mut command = options.command(port, true);
        let mut sub = MosquittoSub::start(&mut command, STEP_TIMEOUT);
        sub.wait_subscribed().await;
        let status = timeout(STEP_TIMEOUT, sub.child.wait())
            .await
            .expect("mosquitto_sub -E did not exit")
            .expect("waiting for mosquitto_sub");
        assert!(status.success(), "mosquitto_sub -E failed: {status}");
    }

    fn start(command: &mut Command, limit: Duration) -> MosquittoSub {
        let mut child = command
            .spawn()
            .expect("spawning mosquitto_sub (is it installed?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        MosquittoSub {
            child,
            lines,
            messages: Vec::new(),
            limit,
        }
    }

    /// Waits for the SUBACK line. A resumed session may deliver all `-C` messages before the
    /// SUBACK, and mosquitto_sub then exits without printing it: its output ending also counts.
    async fn wait_subscribed(&mut self) {
        let waited = timeout(STEP_TIMEOUT, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains("received SUBACK") {
                    return;
                }
                if !is_debug_line(&line) {
                    self.messages.push(line);
                }
            }
        })
        .await;
        if waited.is_err() {
            let stderr = self.stderr().await;
            panic!("mosquitto_sub did not subscribe within {STEP_TIMEOUT:?}; stderr: {stderr}");
        }
    }

    async fn stderr(&mut self) -> String {
        let _ = self.child.start_kill();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = timeout(Duration::from_secs(1), stderr.read_to_string(&mut text)).await;
        }
        text
    }

    /// Kills the process (SIGKILL): its connection ends without DISCONNECT, as a crash would.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = timeout(STEP_TIMEOUT, self.child.wait()).await;
    }

    /// Waits for `mosquitto_sub` to exit (after `-C` messages or its `-W` timeout) and returns
    /// the message lines it printed, in order.
    pub async fn messages(mut self) -> Vec<String> {
        let collected = timeout(self.limit, async {
            while let Some(line) = self.lines.recv().await {
                if !is_debug_line(&line) {
                    self.messages.push(line);
                }
            }
        })
        .await;
        if collected.is_err() {
            let _ = self.child.start_kill();
        }
        let _ = timeout(STEP_TIMEOUT, self.child.wait()).await;
        self.messages
    }
}

/// Runs `mosquitto_pub -h 127.0.0.1 -p PORT -V VERSION ARGS...` and asserts it succeeded.
///
/// Example: `mosquitto_pub(port, V5, &["-t", "a/b", "-m", "hi", "-q", "1", "-r"])`.
pub async fn mosquitto_pub(port: u16, version: ProtocolVersion, args: &[&str]) {
    let output = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-V", mosquitto_version_arg(version)])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = timeout(STEP_TIMEOUT * 2, output)
        .await
        .unwrap_or_else(|_| panic!("mosquitto_pub {args:?} timed out"))
        .expect("running mosquitto_pub (is it installed?)");
    assert!(
        output.status.success(),
        "mosquitto_pub {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `python3 tests/paho/SCRIPT --port PORT --version 311|5 ARGS...` and returns the JSON
/// document it printed.
///
/// # Panics
/// If the script fails, times out (25 s) or prints no JSON; the message carries its output.
pub async fn paho(
    script: &str,
    port: u16,
    version: ProtocolVersion,
    args: &[&str],
) -> serde_json::Value {
    let version_arg = match version {
        ProtocolVersion::V311 => "311",
        ProtocolVersion::V5 => "5",
    };
    let output = Command::new("python3")
        .arg(format!("{PAHO_DIR}/{script}"))
        .args(["--port", &port.to_string(), "--version", version_arg])
        .args(["--deadline", &(PAHO_TIMEOUT.as_secs() - 5).to_string()])
        .args(args)
        .current_dir(PAHO_DIR)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = timeout(PAHO_TIMEOUT, output)
        .await
        .unwrap_or_else(|_| panic!("paho {script} timed out"))
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "paho {script} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|error| panic!("paho {script}: bad JSON ({error}): {stdout}\n{stderr}"))
}
