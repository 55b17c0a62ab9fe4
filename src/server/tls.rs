//! The AMQPS listener's TLS side: the rustls server configuration built from `[tls]`, and the
//! user name SASL EXTERNAL takes from a client certificate.

use crate::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Builds the acceptor; an error names the key and the file.
pub fn acceptor(t: &TlsConfig) -> Result<TlsAcceptor, String> {
    let certs = read_certs("certfile", &t.certfile)?;
    let key = PrivateKeyDer::from_pem_file(&t.keyfile)
        .map_err(|e| format!("tls.keyfile {}: {e}", t.keyfile))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = t
        .versions
        .iter()
        .filter_map(|v| match v.as_str() {
            "tlsv1.3" => Some(&rustls::version::TLS13),
            "tlsv1.2" => Some(&rustls::version::TLS12),
            _ => None,
        })
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls.versions: {e}"))?;
    let builder = if t.verify_peer() {
        let mut roots = RootCertStore::empty();
        for ca in read_certs("cacertfile", &t.cacertfile)? {
            roots
                .add(ca)
                .map_err(|e| format!("tls.cacertfile {}: {e}", t.cacertfile))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        // fail_if_no_peer_cert = false (RabbitMQ's default): a client without a certificate
        // is let in (it logs in with a password); one with a bad certificate never is.
        let verifier = if t.fail_if_no_peer_cert {
            verifier.build()
        } else {
            verifier.allow_unauthenticated().build()
        }
        .map_err(|e| format!("tls.cacertfile {}: {e}", t.cacertfile))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "tls.certfile {} / tls.keyfile {}: {e}",
            t.certfile, t.keyfile
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certs(key: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("tls.{key} {path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.{key} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("tls.{key} {path}: no certificate in the file"));
    }
    Ok(certs)
}

/// Where SASL EXTERNAL finds the user name (RabbitMQ's `ssl_cert_login_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFrom {
    /// `distinguished_name`: the whole subject.
    Subject,
    /// `common_name`.
    Cn,
    /// `subject_alternative_name`: the first DNS name.
    San,
}

impl LoginFrom {
    pub fn from_config(t: &TlsConfig) -> LoginFrom {
        match t.ssl_cert_login_from.as_str() {
            "common_name" => LoginFrom::Cn,
            "subject_alternative_name" => LoginFrom::San,
            _ => LoginFrom::Subject,
        }
    }
}

/// The user name a (verified) client certificate logs in as, or None when the certificate has
/// no such name.
pub fn cert_login(der: &[u8], from: LoginFrom) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    match from {
        LoginFrom::Subject => Some(distinguished_name(&cert)),
        LoginFrom::Cn => {
            // RabbitMQ joins several CNs with commas.
            let names: Vec<String> = cert
                .subject()
                .iter_common_name()
                .map(|a| attribute_text(a.as_str().ok(), a.as_slice()))
                .collect();
            (!names.is_empty()).then(|| names.join(","))
        }
        LoginFrom::San => {
            let san = cert.subject_alternative_name().ok()??;
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
        }
    }
}

/// The subject as RabbitMQ writes it: RFC 4514, last RDN first, joined by "," without
/// spaces, attributes by their short names (`O=client,CN=host`), values escaped.
fn distinguished_name(cert: &X509Certificate<'_>) -> String {
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|a| {
                    let oid = a.attr_type().to_id_string();
                    let value = escape_rdn_value(&attribute_text(a.as_str().ok(), a.as_slice()));
                    match short_name(&oid) {
                        Some(name) => format!("{name}={value}"),
                        None => format!("{oid}={value}"),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn attribute_text(text: Option<&str>, raw: &[u8]) -> String {
    match text {
        Some(t) => t.to_string(),
        None => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// The attribute names RabbitMQ prints (the rest appear as dotted OIDs).
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "TITLE",
        "2.5.4.42" => "GIVENNAME",
        "2.5.4.43" => "INITIALS",
        "2.5.4.44" => "GENERATIONQUALIFIER",
        "2.5.4.65" => "PSEUDONYM",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "EMAILADDRESS",
        _ => return None,
    })
}

/// RFC 4514 section 2.4: `,+"\<>;` are escaped with a backslash, as are a leading `#` or
/// space and a trailing space.
fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(subject: &[(rcgen::DnType, &str)], dns: &[&str]) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        for (t, v) in subject {
            dn.push(t.clone(), *v);
        }
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_login_name_comes_from_where_the_config_says() {
        let der = cert_with(
            &[
                (rcgen::DnType::CommonName, "app-1"),
                (rcgen::DnType::OrganizationName, "client"),
            ],
            &["app-1.example", "other.example"],
        );
        // RabbitMQ's order: the subject's last RDN first.
        assert_eq!(
            cert_login(&der, LoginFrom::Subject).as_deref(),
            Some("O=client,CN=app-1")
        );
        assert_eq!(cert_login(&der, LoginFrom::Cn).as_deref(), Some("app-1"));
        assert_eq!(
            cert_login(&der, LoginFrom::San).as_deref(),
            Some("app-1.example")
        );
        let no_san = cert_with(&[(rcgen::DnType::OrganizationName, "x")], &[]);
        assert_eq!(cert_login(&no_san, LoginFrom::San), None);
        assert_eq!(cert_login(&no_san, LoginFrom::Cn), None);
        assert_eq!(cert_login(b"not a certificate", LoginFrom::Cn), None);
    }

    #[test]
    fn rdn_values_are_escaped_as_rfc_4514_says() {
        assert_eq!(escape_rdn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rdn_value("#x "), "\\#x\\ ");
        assert_eq!(escape_rdn_value(" y"), "\\ y");
        assert_eq!(escape_rdn_value("plain"), "plain");
    }
}
