//! The I/O shell: the accept loop, connection limits and shutdown. The only layer with sockets.

mod channel;
pub(crate) mod connection;
mod handshake;
mod output;

use crate::broker::Broker;
use crate::config::Config;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

/// How long shutdown waits for clients to answer connection.close before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Binds the configured address.
pub async fn bind(config: &Config) -> std::io::Result<TcpListener> {
    TcpListener::bind((config.listen.as_str(), config.port)).await
}

/// The connection limits, shared by the accept loop and the connections.
#[derive(Debug, Clone)]
pub struct Slots {
    /// One per open connection (max_connections), taken at connection.open.
    pub open: Arc<Semaphore>,
    /// One per connection in the handshake (max_handshakes).
    pub handshakes: Arc<Semaphore>,
}

/// Accepts connections, each served by its own task, until `shutdown` completes; then closes
/// every connection with 320 CONNECTION_FORCED (as RabbitMQ does on shutdown) and waits up to
/// `SHUTDOWN_GRACE` for them to finish.
pub async fn run(
    listener: TcpListener,
    config: Arc<Config>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Slots {
        open: Arc::new(Semaphore::new(config.max_connections)),
        handshakes: Arc::new(Semaphore::new(config.max_handshakes)),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; recv() says None once all of them have ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::select! {
        _ = accept_loop(listener, config, broker, slots, stop_rx, alive_tx) => {}
        _ = shutdown => {}
    }
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            "some connections did not close within {}s",
            SHUTDOWN_GRACE.as_secs()
        );
    }
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<Config>,
    broker: Arc<Broker>,
    slots: Slots,
    stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (config, broker, slots, stop) =
            (config.clone(), broker.clone(), slots.clone(), stop.clone());
        let alive = alive.clone();
        tokio::spawn(async move {
            connection::serve(stream, peer, config, broker, slots, stop).await;
            drop(alive);
        });
    }
}

/// Opens the broker on `config.data_dir` (users, vhosts, durable state) and applies the
/// `load_definitions` file, if one is named.
pub fn open_broker(config: &Config) -> std::io::Result<Arc<Broker>> {
    let policy = config.sync_policy().map_err(std::io::Error::other)?;
    let broker = Broker::open(config.data_dir.clone(), policy, &config.access_defaults())?;
    if !config.load_definitions.is_empty() {
        let path = std::path::Path::new(&config.load_definitions);
        let text = std::fs::read(path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("load_definitions {}: {e}", path.display()),
            )
        })?;
        let file: crate::broker::definitions::DefinitionsFile = serde_json::from_slice(&text)
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("load_definitions {}: {e}", path.display()),
                )
            })?;
        let report = broker.import_definitions(&file)?;
        for skipped in &report.skipped {
            tracing::warn!(file = %path.display(), "definitions: skipped {skipped}");
        }
        tracing::info!(file = %path.display(), "definitions loaded");
    }
    Ok(broker)
}

/// Starts a broker on an already-bound listener in the current runtime, with its data in
/// `config.data_dir`; returns its address. Tests use this with port 0 to run many brokers side
/// by side.
pub fn start(listener: TcpListener, config: Config) -> std::io::Result<SocketAddr> {
    start_serving(listener, config).map(|(addr, _)| addr)
}

/// `start`, also handing back the broker (tests drive vhosts and users through it until the
/// management API exists).
pub fn start_serving(
    listener: TcpListener,
    config: Config,
) -> std::io::Result<(SocketAddr, Arc<Broker>)> {
    let addr = listener.local_addr()?;
    let broker = open_broker(&config)?.with_alarms(config.alarm_limits());
    tokio::spawn(run(
        listener,
        Arc::new(config),
        broker.clone(),
        std::future::pending(),
    ));
    Ok((addr, broker))
}
