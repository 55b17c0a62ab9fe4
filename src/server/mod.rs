//! The I/O shell: the accept loop, connection limits and shutdown. The only layer with sockets.

mod channel;
pub mod connection;
mod handshake;

use crate::broker::Broker;
use crate::config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Binds the configured address.
pub async fn bind(config: &Config) -> std::io::Result<TcpListener> {
    TcpListener::bind((config.listen.as_str(), config.port)).await
}

/// Accepts connections forever, each served by its own task.
pub async fn run(listener: TcpListener, config: Arc<Config>, broker: Arc<Broker>) {
    let limit = Arc::new(Semaphore::new(config.max_connections));
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
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = config.max_connections, "connection refused: max_connections reached");
            continue;
        };
        let (config, broker) = (config.clone(), broker.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, config, broker).await;
            drop(permit);
        });
    }
}

/// Starts a broker on an already-bound listener in the current runtime; returns its address.
/// Tests use this with port 0 to run many brokers side by side.
pub fn start(listener: TcpListener, config: Config) -> std::io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    let broker = Broker::new();
    tokio::spawn(run(listener, Arc::new(config), broker));
    Ok(addr)
}
