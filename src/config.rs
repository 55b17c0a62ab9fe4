//! Settings: embedded defaults, then a TOML file, then `WARREN_*` environment variables, then
//! command-line flags. `validate` names the key and the problem. No globals: the resulting
//! `Config` is passed down by value.

use serde::Deserialize;
use std::path::PathBuf;

/// Every setting Warren reads. `config/warren.toml` documents each key with its default.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// AMQP port.
    pub port: u16,
    /// The user a fresh data directory starts with (tagged administrator, all permissions on
    /// `default_vhost`).
    pub default_user: String,
    /// Its password.
    pub default_pass: String,
    /// The vhost a fresh data directory starts with.
    pub default_vhost: String,
    /// Users that may only connect from the loopback interface (RabbitMQ's `loopback_users`;
    /// in `WARREN_LOOPBACK_USERS` a comma-separated list, `none` for nobody).
    pub loopback_users: Vec<String>,
    /// Largest message body accepted, in bytes (RabbitMQ's `max_message_size`: 128 MiB by
    /// default, at most 512 MiB); a larger one is refused with 406 PRECONDITION_FAILED.
    pub max_message_size: u64,
    /// A definitions file (RabbitMQ's JSON format) applied at every start, as RabbitMQ's
    /// `load_definitions` (empty: none).
    pub load_definitions: String,
    /// Largest frame we accept and offer in connection.tune (bytes, including the 8 overhead).
    pub frame_max: u32,
    /// Most channels per connection offered in connection.tune.
    pub channel_max: u16,
    /// Heartbeat interval offered in connection.tune, seconds (0 disables).
    pub heartbeat: u16,
    /// Tokio worker threads (0 = one per core).
    pub workers: usize,
    /// Where durable state lives.
    pub data_dir: PathBuf,
    /// tracing filter: error, warn, info, debug, trace (or a full EnvFilter directive).
    pub log_level: String,
    /// Most open client connections (counted from connection.open, as RabbitMQ counts its
    /// limits); a further connection.open is refused with 530 NOT_ALLOWED.
    pub max_connections: usize,
    /// Most connections in the handshake at once; further sockets wait for a slot (within
    /// `handshake_timeout`), so silent sockets cannot take the slots of real clients.
    pub max_handshakes: usize,
    /// Seconds a client may take to finish the handshake before it is dropped.
    pub handshake_timeout: u64,
    /// What a publisher confirm of a persistent message promises: "fsync" (on disk, survives
    /// power loss) or "write" (handed to the OS, survives a Warren crash).
    pub sync: String,
    /// Memory alarm threshold as a fraction of the machine's RAM (RabbitMQ's default: 0.4).
    pub memory_high_watermark: f64,
    /// Absolute memory alarm threshold in bytes; when non-zero it replaces the fraction.
    pub memory_high_watermark_bytes: u64,
    /// Free space on the data directory's disk below which publishers are blocked (bytes).
    pub disk_free_limit: u64,
    /// Milliseconds a delivery may stay unacked before its consumer is cancelled and its
    /// messages requeued (0: no limit). Queues override it with x-consumer-timeout.
    pub consumer_timeout: u64,
    /// SASL mechanisms offered (RabbitMQ's `auth_mechanisms`): "PLAIN", "AMQPLAIN", and
    /// "EXTERNAL" (login by TLS client certificate, offered only to a client that presented a
    /// verified one). In WARREN_AUTH_MECHANISMS a comma-separated list.
    pub auth_mechanisms: Vec<String>,
    /// The management HTTP API's port (RabbitMQ's 15672), on the `listen` address; 0 turns
    /// it off.
    pub management_port: u16,
    /// The Prometheus endpoint's port (RabbitMQ's 15692), on the `listen` address; 0 turns
    /// it off.
    pub prometheus_port: u16,
    /// Serve the management API over HTTPS, with the `[tls]` certificate and key.
    pub management_tls: bool,
    /// Serve the Prometheus endpoint over HTTPS, with the `[tls]` certificate and key.
    pub prometheus_tls: bool,
    /// Milliseconds between samples of the message counters (RabbitMQ's
    /// `collect_statistics_interval`): the window message rates are computed over.
    pub collect_statistics_interval: u64,
    /// Log lines as `text` or `json` (one JSON object per line).
    pub log_format: String,
    /// The AMQPS listener (`[tls]`), named after RabbitMQ's `ssl_options`.
    pub tls: TlsConfig,
}

/// The TLS listener's settings. It runs when `certfile` is set and `port` is not 0.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// AMQPS port (RabbitMQ's default: 5671); 0 turns the TLS listener off.
    pub port: u16,
    /// The server's certificate chain (PEM), leaf first.
    pub certfile: String,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub keyfile: String,
    /// CA certificates (PEM) that client certificates must chain to.
    pub cacertfile: String,
    /// "verify_peer": ask clients for a certificate and check it against `cacertfile`;
    /// "verify_none": do not ask.
    pub verify: String,
    /// With verify_peer: refuse clients that send no certificate.
    pub fail_if_no_peer_cert: bool,
    /// TLS versions offered: "tlsv1.2", "tlsv1.3".
    pub versions: Vec<String>,
    /// Where SASL EXTERNAL takes the user name from in the client certificate:
    /// "distinguished_name" (RFC 4514, as RabbitMQ formats it), "common_name" or
    /// "subject_alternative_name" (the first DNS name, RabbitMQ's default SAN type and index).
    pub ssl_cert_login_from: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            port: 5671,
            certfile: String::new(),
            keyfile: String::new(),
            cacertfile: String::new(),
            verify: "verify_none".into(),
            fail_if_no_peer_cert: false,
            versions: vec!["tlsv1.3".into(), "tlsv1.2".into()],
            ssl_cert_login_from: "distinguished_name".into(),
        }
    }
}

impl TlsConfig {
    /// Whether the TLS listener runs.
    pub fn enabled(&self) -> bool {
        !self.certfile.is_empty() && self.port != 0
    }

    /// Whether clients are asked for a certificate (and SASL EXTERNAL is offered).
    pub fn verify_peer(&self) -> bool {
        self.verify == "verify_peer"
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1".into(),
            port: 5672,
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_vhost: "/".into(),
            loopback_users: vec!["guest".into()],
            load_definitions: String::new(),
            max_message_size: 134_217_728,
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat: 60,
            workers: 0,
            data_dir: PathBuf::from("warren-data"),
            log_level: "info".into(),
            max_connections: 65_536,
            max_handshakes: 1024,
            handshake_timeout: 10,
            sync: "fsync".into(),
            memory_high_watermark: 0.4,
            memory_high_watermark_bytes: 0,
            consumer_timeout: 1_800_000,
            disk_free_limit: 50_000_000,
            auth_mechanisms: vec!["PLAIN".into(), "AMQPLAIN".into()],
            management_port: 15672,
            prometheus_port: 15692,
            management_tls: false,
            prometheus_tls: false,
            collect_statistics_interval: 5000,
            log_format: "text".into(),
            tls: TlsConfig::default(),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses a TOML document over the defaults.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {}", e.to_string().trim())))
    }

    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Applies `WARREN_<KEY>` overrides from `vars` (the process environment in `main`).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("WARREN_") else {
                continue;
            };
            self.set(&key.to_ascii_lowercase(), &value)
                .map_err(|e| ConfigError(format!("environment variable {name}: {}", e.0)))?;
        }
        Ok(())
    }

    /// Sets one key from its text form (environment variables and flags use this).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| ConfigError(format!("key '{key}': '{v}' is not a valid number")))
        }
        fn boolean(key: &str, v: &str) -> Result<bool, ConfigError> {
            match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                v => Err(ConfigError(format!(
                    "key '{key}': '{v}' is not true or false"
                ))),
            }
        }
        match key {
            "listen" => self.listen = value.to_string(),
            "port" => self.port = num(key, value)?,
            "default_user" => self.default_user = value.to_string(),
            "default_pass" => self.default_pass = value.to_string(),
            "default_vhost" => self.default_vhost = value.to_string(),
            "loopback_users" => {
                self.loopback_users = value
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty() && *u != "none")
                    .map(String::from)
                    .collect()
            }
            "load_definitions" => self.load_definitions = value.to_string(),
            "max_message_size" => self.max_message_size = num(key, value)?,
            "frame_max" => self.frame_max = num(key, value)?,
            "channel_max" => self.channel_max = num(key, value)?,
            "heartbeat" => self.heartbeat = num(key, value)?,
            "workers" => self.workers = num(key, value)?,
            "data_dir" => self.data_dir = PathBuf::from(value),
            "log_level" => self.log_level = value.to_string(),
            "max_connections" => self.max_connections = num(key, value)?,
            "max_handshakes" => self.max_handshakes = num(key, value)?,
            "handshake_timeout" => self.handshake_timeout = num(key, value)?,
            "sync" => self.sync = value.to_string(),
            "memory_high_watermark" => self.memory_high_watermark = num(key, value)?,
            "memory_high_watermark_bytes" => self.memory_high_watermark_bytes = num(key, value)?,
            "consumer_timeout" => self.consumer_timeout = num(key, value)?,
            "disk_free_limit" => self.disk_free_limit = num(key, value)?,
            "management_port" => self.management_port = num(key, value)?,
            "prometheus_port" => self.prometheus_port = num(key, value)?,
            "management_tls" => self.management_tls = boolean(key, value)?,
            "prometheus_tls" => self.prometheus_tls = boolean(key, value)?,
            "collect_statistics_interval" => self.collect_statistics_interval = num(key, value)?,
            "log_format" => self.log_format = value.to_string(),
            "auth_mechanisms" => {
                self.auth_mechanisms = value
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect()
            }
            "tls_port" => self.tls.port = num(key, value)?,
            "tls_certfile" => self.tls.certfile = value.to_string(),
            "tls_keyfile" => self.tls.keyfile = value.to_string(),
            "tls_cacertfile" => self.tls.cacertfile = value.to_string(),
            "tls_verify" => self.tls.verify = value.to_string(),
            "tls_fail_if_no_peer_cert" => self.tls.fail_if_no_peer_cert = boolean(key, value)?,
            "tls_versions" => {
                self.tls.versions = value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(String::from)
                    .collect()
            }
            "tls_ssl_cert_login_from" => self.tls.ssl_cert_login_from = value.to_string(),
            "config" => {}
            other => return Err(ConfigError(format!("unknown key '{other}'"))),
        }
        Ok(())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("key '{key}': {why}")));
        if self.frame_max < 8192 {
            return bad(
                "frame_max",
                "must be at least 8192 (the AMQP minimum frame size)",
            );
        }
        if self.channel_max == 0 {
            return bad("channel_max", "must be at least 1");
        }
        if self.listen.trim().is_empty() {
            return bad("listen", "must not be empty");
        }
        if self.default_user.is_empty() {
            return bad("default_user", "must not be empty");
        }
        if self.max_message_size == 0 || self.max_message_size > 536_870_912 {
            return bad(
                "max_message_size",
                "must be between 1 and 536870912 (512 MiB, RabbitMQ's maximum)",
            );
        }
        for (key, on) in [
            ("management_tls", self.management_tls),
            ("prometheus_tls", self.prometheus_tls),
        ] {
            if on && self.tls.certfile.is_empty() {
                return bad(key, "needs tls.certfile and tls.keyfile (the [tls] table)");
            }
        }
        if self.collect_statistics_interval < 10 {
            return bad("collect_statistics_interval", "must be at least 10 (ms)");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return bad("log_format", "must be \"text\" or \"json\"");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_handshakes == 0 {
            return bad("max_handshakes", "must be at least 1");
        }
        if self.handshake_timeout == 0 {
            return bad("handshake_timeout", "must be at least 1 second");
        }
        if !(0.0..=1.0).contains(&self.memory_high_watermark) {
            return bad(
                "memory_high_watermark",
                "must be a fraction between 0 and 1",
            );
        }
        if let Some(m) = self
            .auth_mechanisms
            .iter()
            .find(|m| !matches!(m.as_str(), "PLAIN" | "AMQPLAIN" | "EXTERNAL"))
        {
            return bad(
                "auth_mechanisms",
                &format!("'{m}' is not one of PLAIN, AMQPLAIN, EXTERNAL"),
            );
        }
        if self.auth_mechanisms.is_empty() {
            return bad("auth_mechanisms", "must name at least one mechanism");
        }
        self.validate_tls()?;
        self.sync_policy().map(|_| ())
    }

    /// The `[tls]` keys that parse but cannot work (the files are read when the listener
    /// starts, and their errors name them too).
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError(format!("key 'tls.{key}': {why}")));
        let t = &self.tls;
        if !matches!(t.verify.as_str(), "verify_peer" | "verify_none") {
            return bad(
                "verify",
                format!(
                    "'{}' is not one of \"verify_peer\", \"verify_none\"",
                    t.verify
                ),
            );
        }
        if !matches!(
            t.ssl_cert_login_from.as_str(),
            "distinguished_name" | "common_name" | "subject_alternative_name"
        ) {
            return bad("ssl_cert_login_from", format!("'{}' is not one of \"distinguished_name\", \"common_name\", \"subject_alternative_name\"", t.ssl_cert_login_from));
        }
        if let Some(v) = t
            .versions
            .iter()
            .find(|v| !matches!(v.as_str(), "tlsv1.2" | "tlsv1.3"))
        {
            return bad(
                "versions",
                format!("'{v}' is not supported (\"tlsv1.2\", \"tlsv1.3\")"),
            );
        }
        if t.versions.is_empty() {
            return bad("versions", "must name at least one version".into());
        }
        if t.enabled() {
            if t.keyfile.is_empty() {
                return bad("keyfile", "must be set when certfile is".into());
            }
            if t.verify_peer() && t.cacertfile.is_empty() {
                return bad(
                    "cacertfile",
                    "must be set with verify = \"verify_peer\"".into(),
                );
            }
        }
        Ok(())
    }

    /// The user and vhost of a fresh data directory, and who is loopback-only.
    pub fn access_defaults(&self) -> crate::broker::access::Defaults {
        crate::broker::access::Defaults {
            user: self.default_user.clone(),
            password: self.default_pass.clone(),
            vhost: self.default_vhost.clone(),
            loopback_users: self.loopback_users.clone(),
        }
    }

    /// What the resource alarms watch.
    pub fn alarm_limits(&self) -> crate::broker::alarm::Limits {
        crate::broker::alarm::Limits {
            memory_bytes: self.memory_watermark_bytes(),
            data_dir: self.data_dir.clone(),
            disk_free_bytes: self.disk_free_limit,
        }
    }

    /// The memory alarm threshold in bytes (0: off).
    pub fn memory_watermark_bytes(&self) -> u64 {
        if self.memory_high_watermark_bytes > 0 {
            return self.memory_high_watermark_bytes;
        }
        (crate::broker::alarm::total_memory_bytes() as f64 * self.memory_high_watermark) as u64
    }

    /// The `sync` key as a policy.
    pub fn sync_policy(&self) -> Result<crate::store::SyncPolicy, ConfigError> {
        match self.sync.as_str() {
            "fsync" => Ok(crate::store::SyncPolicy::Fsync),
            "write" => Ok(crate::store::SyncPolicy::Write),
            other => Err(ConfigError(format!(
                "key 'sync': '{other}' is not one of \"fsync\", \"write\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_localhost_with_guest() {
        let c = Config::default();
        assert_eq!((c.listen.as_str(), c.port), ("127.0.0.1", 5672));
        assert_eq!(
            (c.default_user.as_str(), c.default_pass.as_str()),
            ("guest", "guest")
        );
        c.validate().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("port = \"x\"", "f.toml").unwrap_err();
        assert!(e.0.contains("port"), "{e}");
        let e = Config::from_toml("bogus = 1", "f.toml").unwrap_err();
        assert!(e.0.contains("bogus"), "{e}");
        let c = Config::from_toml("frame_max = 100", "f.toml").unwrap();
        assert!(c.validate().unwrap_err().0.contains("frame_max"));
    }

    #[test]
    fn env_overrides() {
        let mut c = Config::default();
        c.apply_env([("WARREN_PORT".to_string(), "5999".to_string())])
            .unwrap();
        assert_eq!(c.port, 5999);
        let e = c
            .apply_env([("WARREN_HEARTBEAT".to_string(), "soon".to_string())])
            .unwrap_err();
        assert!(e.0.contains("WARREN_HEARTBEAT"));
    }

    #[test]
    fn tls_keys_from_toml_and_env() {
        let c = Config::from_toml(
            "[tls]\ncertfile = \"c.pem\"\nkeyfile = \"k.pem\"\ncacertfile = \"ca.pem\"\nverify = \"verify_peer\"\nfail_if_no_peer_cert = true\n",
            "f.toml",
        )
        .unwrap();
        c.validate().unwrap();
        assert!(c.tls.enabled() && c.tls.verify_peer() && c.tls.fail_if_no_peer_cert);
        assert_eq!(c.tls.port, 5671);
        let mut c = Config::default();
        assert!(!c.tls.enabled());
        c.apply_env([
            ("WARREN_TLS_PORT".to_string(), "6671".to_string()),
            ("WARREN_TLS_CERTFILE".to_string(), "c.pem".to_string()),
            ("WARREN_TLS_VERSIONS".to_string(), "tlsv1.3".to_string()),
        ])
        .unwrap();
        assert_eq!((c.tls.port, c.tls.versions.len()), (6671, 1));
        // certfile without keyfile
        assert!(c.validate().unwrap_err().0.contains("tls.keyfile"));
        c.tls.keyfile = "k.pem".into();
        c.tls.verify = "verify_peer".into();
        assert!(c.validate().unwrap_err().0.contains("tls.cacertfile"));
        c.tls.verify = "maybe".into();
        assert!(c.validate().unwrap_err().0.contains("tls.verify"));
        c.tls.verify = "verify_none".into();
        c.tls.versions = vec!["sslv3".into()];
        assert!(c.validate().unwrap_err().0.contains("tls.versions"));
    }

    #[test]
    fn shipped_config_files_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = Config::from_file(&path).unwrap();
                c.validate().unwrap();
                seen += 1;
            }
        }
        assert!(seen > 0);
    }
}
