//! A broker running inside the test's runtime, on 127.0.0.1:0 with its own data folder.

use super::RawClient;
use lapin::{Channel, Connection, ConnectionProperties};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::TcpListener;
use warren::config::Config;

/// A broker running inside the test's runtime.
pub struct TestBroker {
    pub addr: SocketAddr,
    /// The AMQPS listener, when the config names a certificate.
    pub tls_addr: Option<SocketAddr>,
    pub data_dir: std::path::PathBuf,
    /// The broker itself (vhosts and users are managed through it in tests).
    pub broker: std::sync::Arc<warren::broker::Broker>,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Numbers data folders apart within one test binary.
pub(crate) static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Starts a broker with default settings.
pub async fn start() -> TestBroker {
    start_with(|_| {}).await
}

/// Starts a broker after letting the test adjust its config.
pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestBroker {
    let data_dir = std::env::temp_dir().join(format!(
        "warren-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut config = Config {
        port: 0,
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    adjust(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tls = match config.tls.certfile.is_empty() {
        true => None,
        false => Some(TcpListener::bind("127.0.0.1:0").await.expect("bind")),
    };
    let listeners =
        warren::server::Listeners::new(Some(listener), tls, &config).expect("listeners");
    let (addr, tls_addr) = (
        listeners.amqp_addr().expect("address"),
        listeners.amqps_addr(),
    );
    let broker = warren::server::start_listeners(listeners, config).expect("start");
    TestBroker {
        addr,
        tls_addr,
        data_dir,
        broker,
    }
}

impl TestBroker {
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    pub async fn connect(&self) -> Connection {
        Connection::connect(&self.uri(), ConnectionProperties::default())
            .await
            .expect("connect")
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let c = self.connect().await;
        let ch = c.create_channel().await.expect("channel");
        (c, ch)
    }

    /// A raw socket past the handshake.
    pub async fn raw(&self) -> RawClient {
        RawClient::connect(self.addr).await
    }
}
