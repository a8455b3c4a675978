//! A real Kubernetes control plane (etcd + kube-apiserver, optionally kube-controller-manager)
//! for tests that need an API server, started from the binaries `scripts/kube-test-env.sh`
//! provides.
//!
//! [`ControlPlane::start`] puts everything in one temporary directory: etcd's data, the
//! apiserver's self-signed serving certificate (its own `--cert-dir`), a static token file
//! with an admin token in `system:masters`, service-account keys generated on the spot, the
//! kubeconfig files and one log per process. Everything listens on 127.0.0.1 only, on free
//! ports, so tests can run side by side. It returns once `/readyz` passes; dropping the handle
//! kills every process group and removes the directory.
//!
//! There is no kubelet: pods are stored but never run.
//!
//! ```no_run
//! use tern_e2e::control_plane::{ControlPlane, ControlPlaneOptions};
//!
//! let cluster = ControlPlane::start(ControlPlaneOptions::default())?;
//! let output = cluster.kubectl(&["get", "namespaces"])?;
//! assert!(output.status.success());
//! # Ok::<(), anyhow::Error>(())
//! ```

mod assets;
mod process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

pub use assets::{kube_assets_dir, EXECUTABLES, TERN_KUBE_ASSETS_ENV};
use process::LoggedProcess;

use crate::broker::free_port;

/// How long etcd may take to accept client connections.
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the apiserver may take to pass `/readyz` (about 5 s on an idle machine).
const APISERVER_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long kube-controller-manager may take to start its garbage collector.
const CONTROLLER_MANAGER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Interval between readiness probes.
const READY_POLL: Duration = Duration::from_millis(250);
/// Longest a single [`ControlPlane::kubectl`] call may run before it is killed.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(120);
/// Service IPs the apiserver hands out (`--service-cluster-ip-range`).
const SERVICE_CLUSTER_IP_RANGE: &str = "10.96.0.0/24";
/// Issuer of service-account tokens; any URL works for a test cluster.
const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The log line with which kube-controller-manager reports its garbage collector running.
const GARBAGE_COLLECTOR_STARTED: &str = "Started \"garbagecollector\"";

/// What to run besides etcd and kube-apiserver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlPlaneOptions {
    /// Also run kube-controller-manager with the garbage collector (deletes objects whose
    /// owners are gone) and the namespace controller (empties deleted namespaces).
    pub controller_manager: bool,
}

/// A running control plane. Dropping it kills its processes and removes its directory.
#[derive(Debug)]
pub struct ControlPlane {
    // Fields drop in declaration order: clients of the apiserver first, etcd last, and the
    // directory only after every process writing into it is gone.
    controller_manager: Option<LoggedProcess>,
    apiserver: LoggedProcess,
    etcd: LoggedProcess,
    server_url: String,
    admin_token: String,
    kubeconfig_path: PathBuf,
    ca_cert_path: PathBuf,
    kubectl_path: PathBuf,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver (and kube-controller-manager if asked) on 127.0.0.1 and
    /// waits, bounded, until `/readyz` passes.
    ///
    /// Fails with instructions when the binaries are missing (see [`kube_assets_dir`]), and
    /// with the tail of every started process's log when something does not come up.
    pub fn start(options: ControlPlaneOptions) -> anyhow::Result<ControlPlane> {
        let assets = kube_assets_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("tern-kube-")
            .tempdir()
            .context("creating the control plane's temporary directory")?;
        let paths = Paths::new(dir.path());
        let admin_token = random_token()?;
        let controller_manager_token = random_token()?;
        write_token_file(&paths.tokens, &admin_token, &controller_manager_token)?;
        generate_service_account_key(&paths.service_account_key)?;

        let etcd_client_port = free_port()?;
        let mut etcd = start_etcd(&assets, &paths, etcd_client_port)?;
        wait_for_tcp(etcd_client_port, &mut etcd, ETCD_READY_TIMEOUT)?;

        let apiserver_port = free_port()?;
        let apiserver = start_apiserver(&assets, &paths, etcd_client_port, apiserver_port)?;
        let server_url = format!("https://127.0.0.1:{apiserver_port}");
        write_kubeconfig(
            &paths.admin_kubeconfig,
            &server_url,
            &paths.ca_cert,
            &admin_token,
        )?;
        // From here on, dropping `cluster` on an error stops everything started so far.
        let mut cluster = ControlPlane {
            controller_manager: None,
            apiserver,
            etcd,
            server_url,
            admin_token,
            kubeconfig_path: paths.admin_kubeconfig.clone(),
            ca_cert_path: paths.ca_cert.clone(),
            kubectl_path: assets.join("kubectl"),
            dir,
        };
        cluster.wait_for_readyz()?;

        if options.controller_manager {
            write_kubeconfig(
                &paths.controller_manager_kubeconfig,
                &cluster.server_url,
                &paths.ca_cert,
                &controller_manager_token,
            )?;
            cluster.start_controller_manager(&assets, &paths)?;
        }
        Ok(cluster)
    }

    /// The apiserver's URL, `https://127.0.0.1:PORT`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// Bearer token of a user in `system:masters` (may do anything).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A kubeconfig file for the admin token, trusting the apiserver's generated CA.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// PEM bundle of the apiserver's self-signed serving certificate and its CA.
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_cert_path
    }

    /// The temporary directory holding the data, kubeconfigs and process logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `kubectl ARGS` against this cluster as the admin, killed after [`KUBECTL_TIMEOUT`].
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.kubectl_with_stdin(args, "")
    }

    /// Waits (at most a minute) until every CustomResourceDefinition in `crds` (names such as
    /// `mqttclusters.mqtt.tern.dev`) is Established, so objects of its kinds can be applied.
    ///
    /// Polls the condition instead of running `kubectl wait`: the kubectl of Debian's 1.20
    /// package fails outright ("<nil> is of the type <nil>") when asked right after the apply,
    /// before the API server has written any condition.
    pub fn wait_established(&self, crds: &[&str]) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for crd in crds {
            loop {
                let output = self.kubectl(&[
                    "get",
                    &format!("crd/{crd}"),
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#,
                ])?;
                if output.status.success() && String::from_utf8_lossy(&output.stdout) == "True" {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "CRD {crd} not Established within 60 s: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// Runs `kubectl ARGS` with `stdin` as its standard input (e.g. `apply -f -` and a
    /// manifest), killed after [`KUBECTL_TIMEOUT`].
    pub fn kubectl_with_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<Output> {
        let mut command = Command::new(&self.kubectl_path);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig_path)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args);
        run_bounded(command, stdin.as_bytes().to_vec(), KUBECTL_TIMEOUT)
            .with_context(|| format!("kubectl {}", args.join(" ")))
    }

    /// The logs of every process, last lines only, for error messages.
    pub fn log_tails(&self) -> String {
        self.processes()
            .map(LoggedProcess::log_tail)
            .collect::<Vec<_>>()
            .join("")
    }

    fn processes(&self) -> impl Iterator<Item = &LoggedProcess> {
        [
            Some(&self.etcd),
            Some(&self.apiserver),
            self.controller_manager.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Polls `kubectl get --raw /readyz` until it succeeds, a process exits, or the timeout.
    fn wait_for_readyz(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + APISERVER_READY_TIMEOUT;
        let mut last_answer = String::new();
        loop {
            self.fail_if_a_process_exited()?;
            // The kubeconfig names the CA file, which the apiserver writes when it starts.
            if self.ca_cert_path.exists() {
                let output = self.kubectl(&["get", "--raw", "/readyz"])?;
                if output.status.success() {
                    return Ok(());
                }
                last_answer = String::from_utf8_lossy(&output.stderr).into_owned();
            }
            if Instant::now() >= deadline {
                bail!(
                    "kube-apiserver not ready within {APISERVER_READY_TIMEOUT:?} (last answer: \
                     {}); logs:\n{}",
                    last_answer.trim(),
                    self.log_tails()
                );
            }
            std::thread::sleep(READY_POLL);
        }
    }

    fn start_controller_manager(&mut self, assets: &Path, paths: &Paths) -> anyhow::Result<()> {
        let mut command = Command::new(assets.join("kube-controller-manager"));
        command
            .arg("--kubeconfig")
            .arg(&paths.controller_manager_kubeconfig)
            .args([
                "--controllers=garbagecollector,namespace",
                "--leader-elect=false",
                // No serving at all: the insecure port (10252 by default in v1.20) would
                // collide between tests, and nothing here probes the controller manager.
                "--port=0",
                "--secure-port=0",
            ]);
        self.controller_manager = Some(LoggedProcess::spawn(
            "kube-controller-manager",
            command,
            &paths.root,
        )?);
        let deadline = Instant::now() + CONTROLLER_MANAGER_READY_TIMEOUT;
        loop {
            self.fail_if_a_process_exited()?;
            let started = self
                .controller_manager
                .as_ref()
                .is_some_and(|process| process.log().contains(GARBAGE_COLLECTOR_STARTED));
            if started {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "kube-controller-manager did not start its garbage collector within \
                     {CONTROLLER_MANAGER_READY_TIMEOUT:?}; logs:\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(READY_POLL);
        }
    }

    fn fail_if_a_process_exited(&mut self) -> anyhow::Result<()> {
        let processes = [
            Some(&mut self.etcd),
            Some(&mut self.apiserver),
            self.controller_manager.as_mut(),
        ];
        let exited = processes
            .into_iter()
            .flatten()
            .find_map(|process| Some((process.name(), process.exit_status()?)));
        match exited {
            Some((name, status)) => bail!("{name} exited ({status}); logs:\n{}", self.log_tails()),
            None => Ok(()),
        }
    }
}

/// Where each file of a control plane lives inside its temporary directory.
struct Paths {
    root: PathBuf,
    etcd_data: PathBuf,
    cert_dir: PathBuf,
    ca_cert: PathBuf,
    tokens: PathBuf,
    service_account_key: PathBuf,
    admin_kubeconfig: PathBuf,
    controller_manager_kubeconfig: PathBuf,
}

impl Paths {
    fn new(root: &Path) -> Paths {
        let cert_dir = root.join("apiserver-certs");
        Paths {
            root: root.to_path_buf(),
            etcd_data: root.join("etcd-data"),
            // Written by the apiserver itself (`--cert-dir`): serving certificate + its CA.
            ca_cert: cert_dir.join("apiserver.crt"),
            cert_dir,
            tokens: root.join("tokens.csv"),
            service_account_key: root.join("service-account.key"),
            admin_kubeconfig: root.join("admin.kubeconfig"),
            controller_manager_kubeconfig: root.join("controller-manager.kubeconfig"),
        }
    }
}

fn start_etcd(assets: &Path, paths: &Paths, client_port: u16) -> anyhow::Result<LoggedProcess> {
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{}", free_port()?);
    let mut command = Command::new(assets.join("etcd"));
    command
        .arg("--data-dir")
        .arg(&paths.etcd_data)
        .args(["--name", "tern-test"])
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("tern-test={peer_url}")]);
    LoggedProcess::spawn("etcd", command, &paths.root)
}

fn start_apiserver(
    assets: &Path,
    paths: &Paths,
    etcd_client_port: u16,
    secure_port: u16,
) -> anyhow::Result<LoggedProcess> {
    let mut command = Command::new(assets.join("kube-apiserver"));
    command
        .arg(format!(
            "--etcd-servers=http://127.0.0.1:{etcd_client_port}"
        ))
        .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
        .arg(format!("--secure-port={secure_port}"))
        // v1.20 still serves an unauthenticated port on 8080 unless told not to.
        .arg("--insecure-port=0")
        .arg("--cert-dir")
        .arg(&paths.cert_dir)
        .arg("--token-auth-file")
        .arg(&paths.tokens)
        .arg("--authorization-mode=RBAC")
        .arg(format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"))
        .arg("--service-account-key-file")
        .arg(&paths.service_account_key)
        .arg("--service-account-signing-key-file")
        .arg(&paths.service_account_key)
        .arg(format!(
            "--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"
        ))
        // The ServiceAccount admission plugin rejects pods until a token controller has made
        // the namespace's `default` account; tests create pods without one.
        .arg("--disable-admission-plugins=ServiceAccount");
    LoggedProcess::spawn("kube-apiserver", command, &paths.root)
}

/// Polls until `127.0.0.1:port` accepts TCP connections; fails with the process's log if it
/// exits or the timeout passes.
fn wait_for_tcp(port: u16, process: &mut LoggedProcess, timeout: Duration) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = process.exit_status() {
            bail!(
                "{} exited ({status}); log:\n{}",
                process.name(),
                process.log_tail()
            );
        }
        if TcpStream::connect_timeout(&addr, READY_POLL).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} did not accept connections on {addr} within {timeout:?}; log:\n{}",
                process.name(),
                process.log_tail()
            );
        }
        std::thread::sleep(READY_POLL);
    }
}

/// 32 hex digits from the kernel's random source.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The apiserver's `--token-auth-file`: `token,user,uid,"groups"` per line.
fn write_token_file(
    path: &Path,
    admin_token: &str,
    controller_manager_token: &str,
) -> anyhow::Result<()> {
    let lines = format!(
        "{admin_token},admin,admin,\"system:masters\"\n\
         {controller_manager_token},system:kube-controller-manager,kube-controller-manager,\"system:masters\"\n"
    );
    std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))
}

/// An RSA key that signs (private half) and verifies (the apiserver derives the public half)
/// service-account tokens.
fn generate_service_account_key(path: &Path) -> anyhow::Result<()> {
    let mut command = Command::new("openssl");
    command.args(["genrsa", "-out"]).arg(path).arg("2048");
    let output = run_bounded(command, Vec::new(), Duration::from_secs(30))
        .context("generating the service-account key with openssl (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "openssl genrsa failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Writes a kubeconfig (JSON, which kubeconfig readers accept as YAML) for one bearer token.
fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    ca_cert: &Path,
    token: &str,
) -> anyhow::Result<()> {
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "tern-test",
            "cluster": { "server": server_url, "certificate-authority": ca_cert },
        }],
        "users": [{ "name": "tern-test", "user": { "token": token } }],
        "contexts": [{
            "name": "tern-test",
            "context": { "cluster": "tern-test", "user": "tern-test", "namespace": "default" },
        }],
        "current-context": "tern-test",
    });
    let text = serde_json::to_string_pretty(&kubeconfig).context("serializing a kubeconfig")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs `command` with `stdin` as input and collects its output; kills it after `timeout`.
fn run_bounded(mut command: Command, stdin: Vec<u8>, timeout: Duration) -> anyhow::Result<Output> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {:?}", command.get_program()))?;
    let pid = child.id();
    let mut child_stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("child has no stdin pipe"))?;
    let (done, result) = mpsc::channel();
    // Writing stdin and reading both pipes happen on a thread so a full pipe cannot block the
    // deadline below.
    std::thread::spawn(move || {
        let written = child_stdin.write_all(&stdin);
        drop(child_stdin);
        let output = child.wait_with_output();
        let _ = done.send(written.and(output));
    });
    match result.recv_timeout(timeout) {
        Ok(output) => output.context("running the command"),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill has no memory-safety preconditions. The child is still running
                // (its wait has not returned), so the pid still names it.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            bail!("timed out after {timeout:?}")
        }
    }
}
