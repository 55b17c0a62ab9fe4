//! The I/O shell: the accept loop, connection limits and shutdown. The only layer with sockets.

mod channel;
pub(crate) mod connection;
mod handshake;
mod output;
mod peer;
pub mod tls;

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

/// The sockets Warren accepts clients on: plain AMQP, AMQPS, or both.
pub struct Listeners {
    amqp: Option<TcpListener>,
    amqps: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
}

impl Listeners {
    /// Takes already-bound sockets; the TLS one gets `config.tls`'s certificate and key (an
    /// error names the key and the file).
    pub fn new(
        amqp: Option<TcpListener>,
        amqps: Option<TcpListener>,
        config: &Config,
    ) -> std::io::Result<Listeners> {
        let amqps = match amqps {
            Some(l) => Some((
                l,
                tls::acceptor(&config.tls).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        Ok(Listeners { amqp, amqps })
    }

    /// The plain AMQP address, if that listener runs.
    pub fn amqp_addr(&self) -> Option<SocketAddr> {
        self.amqp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The AMQPS address, if that listener runs.
    pub fn amqps_addr(&self) -> Option<SocketAddr> {
        self.amqps.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }
}

/// Binds the configured listeners: AMQP on `port` unless it is 0, AMQPS on `tls.port` when
/// `tls.certfile` is set and that port is not 0.
pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
    let at = |port: u16| {
        let host = config.listen.clone();
        async move {
            TcpListener::bind((host.as_str(), port))
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("{host}:{port}: {e}")))
        }
    };
    let amqp = match config.port {
        0 => None,
        port => Some(at(port).await?),
    };
    let amqps = match config.tls.enabled() {
        true => Some(at(config.tls.port).await?),
        false => None,
    };
    if amqp.is_none() && amqps.is_none() {
        return Err(std::io::Error::other(
            "no listener: port is 0 and no [tls] listener is configured",
        ));
    }
    Listeners::new(amqp, amqps, config)
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
    listeners: Listeners,
    config: Arc<Config>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) {
    broker.start_statistics(std::time::Duration::from_millis(
        config.collect_statistics_interval,
    ));
    let slots = Slots {
        open: Arc::new(Semaphore::new(config.max_connections)),
        handshakes: Arc::new(Semaphore::new(config.max_handshakes)),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let _alarms_told = tell_connections_of_alarms(&broker);
    // Every connection task holds a sender; recv() says None once all of them have ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut loops = tokio::task::JoinSet::new();
    if let Some(listener) = listeners.amqp {
        let tls = None;
        let args = (config.clone(), broker.clone(), slots.clone());
        loops.spawn(accept_loop(
            listener,
            tls,
            args,
            stop_rx.clone(),
            alive_tx.clone(),
        ));
    }
    if let Some((listener, acceptor)) = listeners.amqps {
        let tls = Some((acceptor, tls::LoginFrom::from_config(&config.tls)));
        let args = (config.clone(), broker.clone(), slots.clone());
        loops.spawn(accept_loop(
            listener,
            tls,
            args,
            stop_rx.clone(),
            alive_tx.clone(),
        ));
    }
    drop(alive_tx);
    tokio::select! {
        _ = loops.join_next() => {}
        _ = shutdown => {}
    }
    // The accept loops stop taking sockets (and drop their `alive` senders).
    loops.shutdown().await;
    let _ = stop_tx.send(true);
    // Connections registered from now on see `stop` when they start.
    broker
        .registry()
        .raise(None, crate::broker::signal::SHUTDOWN);
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

/// Raises `signal::ALARM` on every connection when the resource alarms change (the
/// connections read the alarms then, not at every turn of their loop). Stops when dropped.
fn tell_connections_of_alarms(broker: &Arc<Broker>) -> Option<AbortOnDrop> {
    let mut alarms = broker.alarms()?;
    let registry = broker.registry().clone();
    let task = tokio::spawn(async move {
        while alarms.changed().await.is_ok() {
            registry.raise(None, crate::broker::signal::ALARM);
        }
    });
    Some(AbortOnDrop(task))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<(tokio_rustls::TlsAcceptor, tls::LoginFrom)>,
    (config, broker, slots): (Arc<Config>, Arc<Broker>, Slots),
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
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection::serve_tcp(stream, peer, config, broker, slots, stop).await,
                // Boxed: the TLS session makes its future larger, and the plain
                // connections' tasks need not make room for it.
                Some((acceptor, login_from)) => {
                    Box::pin(connection::serve_tls(
                        stream, peer, acceptor, login_from, config, broker, slots, stop,
                    ))
                    .await
                }
            }
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

/// Starts a broker on already-bound listeners (tests: plain and TLS side by side) and hands
/// back the broker.
pub fn start_listeners(listeners: Listeners, config: Config) -> std::io::Result<Arc<Broker>> {
    let broker = open_broker(&config)?.with_alarms(config.alarm_limits());
    tokio::spawn(run(
        listeners,
        Arc::new(config),
        broker.clone(),
        std::future::pending(),
    ));
    Ok(broker)
}

/// `start`, also handing back the broker (tests drive vhosts and users through it until the
/// management API exists).
pub fn start_serving(
    listener: TcpListener,
    config: Config,
) -> std::io::Result<(SocketAddr, Arc<Broker>)> {
    let addr = listener.local_addr()?;
    let listeners = Listeners {
        amqp: Some(listener),
        amqps: None,
    };
    Ok((addr, start_listeners(listeners, config)?))
}
