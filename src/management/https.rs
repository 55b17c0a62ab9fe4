//! HTTPS for the management and Prometheus listeners (`management_tls`, `prometheus_tls`),
//! with the `[tls]` certificate settings the AMQPS listener uses. Each accepted socket does
//! its TLS handshake in its own task (bounded in time), then HTTP/1.1 over it.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` over TLS on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTPS accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::warn!(peer = %peer, error = %e, "HTTPS: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(peer = %peer, "HTTPS: TLS handshake timeout");
                        return;
                    }
                };
            // What axum's connect-info service would add: handlers read the peer address.
            let app = app.layer(axum::Extension(ConnectInfo(peer)));
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(peer = %peer, error = %e, "HTTPS connection ended");
            }
        });
    }
}
