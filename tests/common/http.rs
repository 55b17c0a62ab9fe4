//! A small HTTP/1.1 client for the management API tests (one request per connection).

use base64::Engine;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer: status, headers (lower-cased names), body.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request with Basic credentials `user:password` (None: no Authorization header).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    credentials: Option<(&str, &str)>,
    body: Option<&str>,
) -> HttpReply {
    http_with(addr, method, path, credentials, &[], body).await
}

/// `http` with extra request headers.
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    credentials: Option<(&str, &str)>,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> HttpReply {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((u, p)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "PUT" || method == "POST" {
        // JSON unless the test names its own type (curl -d sends a form's).
        if !extra
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(super::WAIT, s.read_to_end(&mut raw))
        .await
        .expect("the answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// Serves the management API for a test broker on a free port; returns its address.
pub async fn management(b: &super::TestBroker) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warren::management::serve(
        listener,
        None,
        b.broker.clone(),
        vec![("amqp", b.addr), ("http", addr)],
        std::future::pending(),
    ));
    addr
}

/// Serves the Prometheus endpoint for a test broker on a free port; returns its address.
pub async fn prometheus(b: &super::TestBroker) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(warren::management::prometheus::serve(
        listener,
        None,
        b.broker.clone(),
        std::future::pending(),
    ));
    addr
}
