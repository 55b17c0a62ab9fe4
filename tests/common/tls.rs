//! A test PKI made on the spot (a CA, the server's certificate, client certificates) and a
//! TLS client for the raw AMQP client.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A certificate authority with its files in a folder of its own.
pub struct Pki {
    pub dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A client's certificate chain and key.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl ClientCert {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    /// A fresh CA, and a server certificate for localhost / 127.0.0.1 written as
    /// `server.pem`, `server.key` beside `ca.pem`.
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "warren-pki-{}-{}",
            std::process::id(),
            super::broker::COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, ca_key) = authority("Warren test CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let pki = Pki { dir, ca, ca_key };
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &pki.ca, &pki.ca_key).unwrap();
        std::fs::write(pki.dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(pki.dir.join("server.key"), key.serialize_pem()).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Points `config.tls` at this PKI's files (port 0: tests bind their own listener).
    pub fn configure(&self, config: &mut warren::config::Config, verify_peer: bool) {
        config.tls.certfile = self.path("server.pem");
        config.tls.keyfile = self.path("server.key");
        config.tls.cacertfile = self.path("ca.pem");
        config.tls.verify = if verify_peer {
            "verify_peer"
        } else {
            "verify_none"
        }
        .into();
    }

    /// A client certificate with subject `CN=<cn>, O=client`, signed by this CA.
    pub fn client(&self, cn: &str) -> ClientCert {
        self.client_with(cn, |_| {})
    }

    /// The same, after `adjust` (validity dates, ...).
    pub fn client_with(&self, cn: &str, adjust: impl FnOnce(&mut CertificateParams)) -> ClientCert {
        signed_client(cn, &self.ca, &self.ca_key, adjust)
    }

    /// A client certificate from another CA, which this broker does not trust.
    pub fn stranger(cn: &str) -> ClientCert {
        let (ca, ca_key) = authority("Some other CA");
        signed_client(cn, &ca, &ca_key, |_| {})
    }

    /// Opens a TLS connection that trusts this CA, presenting `cert` if given.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        cert: Option<&ClientCert>,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match cert {
            Some(c) => builder
                .with_client_auth_cert(c.chain.clone(), c.key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let tcp = TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }
}

fn authority(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

fn signed_client(
    cn: &str,
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
    adjust: impl FnOnce(&mut CertificateParams),
) -> ClientCert {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    adjust(&mut params);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    ClientCert {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}
