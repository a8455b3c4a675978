//! Asking a broker pod which configuration it runs: `GET /revision` on its metrics port.
//!
//! The operator annotates pods to make the kubelet project a new configuration at once, but
//! only the broker knows when it has loaded it. Its `/revision` answers the revision the
//! operator rendered once both the ConfigMap's and the Secret's copy of it have arrived, so a
//! cluster's status can say which brokers run the current rules.

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tern_broker::config::is_revision;
use tokio::net::TcpStream;

/// How long one pod may take to answer; one that does not is reported without a revision.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest answer read: a revision is a dozen hex digits.
const MAX_ANSWER: usize = 256;

/// The revision the broker at `ip:port` reports running, or `None` when it cannot be asked
/// (not listening yet, unreachable, half-updated volume) or answers something else.
pub async fn running_revision(ip: IpAddr, port: u16) -> Option<String> {
    tokio::time::timeout(ASK_TIMEOUT, ask(ip, port))
        .await
        .ok()
        .flatten()
}

async fn ask(ip: IpAddr, port: u16) -> Option<String> {
    let stream = TcpStream::connect((ip, port)).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    // Drives the connection; it ends when `sender` is dropped, or with the timeout above.
    let driver = tokio::spawn(connection);
    let authority = match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    };
    let request = Request::get("/revision")
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let answer = if response.status().is_success() {
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .ok()?
            .to_bytes();
        parse_revision(&body)
    } else {
        None
    };
    drop(sender);
    driver.abort();
    answer
}

/// The revision in a `/revision` answer: one line of letters and digits.
fn parse_revision(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    is_revision(text).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_one_revision_or_nothing() {
        assert_eq!(
            parse_revision(b"3f2a9c01be77\n"),
            Some("3f2a9c01be77".into())
        );
        assert_eq!(parse_revision(b""), None);
        assert_eq!(parse_revision(b"ready revision=3f2a"), None);
        assert_eq!(parse_revision(&[0xff, 0xfe]), None);
    }

    #[tokio::test]
    async fn a_pod_that_does_not_listen_has_no_revision() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = unused.local_addr().unwrap().port();
        drop(unused);
        assert_eq!(
            running_revision(IpAddr::from([127, 0, 0, 1]), port).await,
            None
        );
    }
}
