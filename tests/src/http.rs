//! A minimal HTTP/1.1 GET for the broker's `/metrics`, `/healthz` and `/readyz`, and reading
//! values out of the Prometheus text format. Bounded by socket timeouts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

/// Socket read/write timeout of one request.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `GET path` on 127.0.0.1:`port`; returns the status code and the body.
pub fn get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).context("connecting")?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .context("reading the response")?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed response: {response}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("no status in: {head}"))?;
    Ok((status, body.to_string()))
}

/// The value of the sample `series` (name with labels exactly as exposed, e.g.
/// `tern_config_reloads_total{result="failure"}`) in a Prometheus text body.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

/// Scrapes `/metrics` and returns the value of `series` (0 when absent).
pub fn metric(port: u16, series: &str) -> anyhow::Result<f64> {
    let (status, body) = get(port, "/metrics")?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    Ok(sample(&body, series).unwrap_or(0.0))
}

/// The revision `/readyz` reports (`ready revision=X`), or `None` while not ready.
pub fn ready_revision(port: u16) -> anyhow::Result<Option<String>> {
    let (status, body) = get(port, "/readyz")?;
    Ok((status == 200)
        .then(|| {
            body.trim()
                .strip_prefix("ready revision=")
                .map(str::to_string)
        })
        .flatten())
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `within`.
pub fn poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_found_by_its_exact_series() {
        let body = "# HELP x\nx_total{result=\"failure\"} 2\nx_total{result=\"success\"} 5\n";
        assert_eq!(sample(body, "x_total{result=\"success\"}"), Some(5.0));
    }
}
