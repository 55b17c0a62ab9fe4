//! What the AMQP handshake knows about a client's socket: its address and, on the AMQPS
//! listener, what its TLS handshake established.

use std::net::SocketAddr;

/// What the handshake knows about the client's socket.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The listener's address this client reached.
    pub local: SocketAddr,
    /// Set on the AMQPS listener.
    pub tls: Option<TlsPeer>,
}

/// A TLS client, as its handshake left it.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    /// It presented a certificate that chains to `cacertfile` (only asked with verify_peer):
    /// SASL EXTERNAL is offered.
    pub client_cert: bool,
    /// The user SASL EXTERNAL logs in as (`ssl_cert_login_from`), when the certificate names one.
    pub cert_login: Option<String>,
}
