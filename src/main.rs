//! The `warren` binary: flags → config → logging → runtime → server.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use warren::config::Config;

/// A fast, RabbitMQ-compatible AMQP 0-9-1 message broker.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (see config/warren.toml for every key).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (key: listen).
    #[arg(long)]
    listen: Option<String>,
    /// AMQP port, 0 for no plain listener (key: port).
    #[arg(long)]
    port: Option<u16>,
    /// Folder for durable state (key: data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log level (key: log_level).
    #[arg(long)]
    log_level: Option<String>,
    /// Worker threads, 0 = one per core (key: workers).
    #[arg(long)]
    workers: Option<usize>,
    /// Management HTTP API port, 0 for none (key: management_port).
    #[arg(long)]
    management_port: Option<u16>,
    /// Prometheus metrics port, 0 for none (key: prometheus_port).
    #[arg(long)]
    prometheus_port: Option<u16>,
    /// Log lines as text or json (key: log_format).
    #[arg(long)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Instead of serving: work on the data directory (with the broker stopped), or talk to a
/// running broker.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// rabbitmqctl's everyday commands (list_queues, add_user, set_policy, ping, …) against a
    /// running broker, through its management API.
    Ctl(warren::ctl::CtlArgs),
    /// Definitions (users, vhosts, permissions, exchanges, queues, bindings) in RabbitMQ's
    /// JSON format, as `rabbitmqctl export_definitions` / `import_definitions` use it.
    Definitions {
        #[command(subcommand)]
        action: DefinitionsAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum DefinitionsAction {
    /// Writes every definition to FILE ("-" for standard output).
    Export { file: PathBuf },
    /// Applies FILE (a RabbitMQ or Warren export) to the data directory.
    Import { file: PathBuf },
}

/// One Warren per data directory: a second one (or an import while the broker runs) would
/// write the same files.
fn lock_data_dir(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::other(format!(
            "{} is in use by another Warren process",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// `warren definitions export|import FILE`.
fn run_definitions(broker: &warren::broker::Broker, action: &DefinitionsAction) -> ExitCode {
    match action {
        DefinitionsAction::Export { file } => {
            let exported = broker.export_definitions();
            let text = match serde_json::to_string_pretty(&exported) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("warren: cannot encode the definitions: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let written = if file.as_os_str() == "-" {
                println!("{text}");
                Ok(())
            } else {
                std::fs::write(file, text + "\n")
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("warren: cannot write {}: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
        DefinitionsAction::Import { file } => {
            let parsed = std::fs::read(file)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::from_slice::<warren::broker::definitions::DefinitionsFile>(&t)
                        .map_err(|e| e.to_string())
                });
            let defs = match parsed {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("warren: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            match broker.import_definitions(&defs) {
                Ok(report) => {
                    for skipped in &report.skipped {
                        eprintln!("warren: skipped {skipped}");
                    }
                    eprintln!(
                        "warren: imported {} users, {} vhosts, {} permissions, {} exchanges, {} queues, {} bindings",
                        defs.users.len(),
                        defs.vhosts.len(),
                        defs.permissions.len(),
                        defs.exchanges.len(),
                        defs.queues.len(),
                        defs.bindings.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("warren: import failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(args: &Args) -> Result<Config, warren::config::ConfigError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(std::env::vars())?;
    if let Some(v) = &args.listen {
        config.listen = v.clone();
    }
    if let Some(v) = args.port {
        config.port = v;
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &args.log_level {
        config.log_level = v.clone();
    }
    if let Some(v) = args.workers {
        config.workers = v;
    }
    if let Some(v) = args.management_port {
        config.management_port = v;
    }
    if let Some(v) = args.prometheus_port {
        config.prometheus_port = v;
    }
    if let Some(v) = &args.log_format {
        config.log_format = v.clone();
    }
    config.validate()?;
    Ok(config)
}

/// Binds an HTTP listener on the `listen` address (None when `port` is 0); prints why not.
async fn bind_http(
    config: &Config,
    port: u16,
    key: &str,
) -> Result<Option<tokio::net::TcpListener>, ()> {
    if port == 0 {
        return Ok(None);
    }
    match tokio::net::TcpListener::bind((config.listen.as_str(), port)).await {
        Ok(l) => Ok(Some(l)),
        Err(e) => {
            eprintln!(
                "warren: cannot listen on {}:{port} ({key}): {e}",
                config.listen
            );
            Err(())
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("interrupted, shutting down");
}

/// How long a clean shutdown waits for pending writes (acks, delivery records) to reach disk.
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// A panic anywhere ends the process, as a crash would. Tokio would catch a panic in a
/// connection task and keep serving, and parking_lot locks do not poison, so a queue left
/// half-updated by a bug would go on serving from inconsistent state. After an abort the
/// supervisor (systemd, a container runtime) restarts Warren and recovery rebuilds every
/// durable queue from the disk, which is consistent after a crash at any point.
fn abort_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(%info, "panic: Warren aborts (a bug); at the next start it recovers as after a crash");
        print(info);
        std::process::abort();
    }));
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warren: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(args.command, Some(Command::Ctl(_))) {
        if let Some(Command::Ctl(ctl)) = args.command.take() {
            return warren::ctl::run(ctl, &config);
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The log goes to stderr (the README says so); colours only when that is a terminal, so
    // a log file or a pipe gets plain lines.
    use std::io::IsTerminal;
    if config.log_format == "json" {
        // One JSON object per line, for log collectors (Loki, Elasticsearch, CloudWatch).
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
    abort_on_panic();

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.workers > 0 {
        builder.worker_threads(config.workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warren: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _lock = match lock_data_dir(&config.data_dir) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("warren: cannot use data_dir: {e}");
                return ExitCode::FAILURE;
            }
        };
        let started = std::time::Instant::now();
        let broker = match warren::server::open_broker(&config) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("warren: cannot open data_dir {}: {e}", config.data_dir.display());
                return ExitCode::FAILURE;
            }
        };
        if let Some(Command::Definitions { action }) = &args.command {
            let code = run_definitions(&broker, action);
            broker.close(SHUTDOWN_FLUSH);
            return code;
        }
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "storage recovered");
        let broker = broker.with_alarms(config.alarm_limits());
        let listeners = match warren::server::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("warren: cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        let Ok(management) = bind_http(&config, config.management_port, "management_port").await else {
            return ExitCode::FAILURE;
        };
        let Ok(prometheus) = bind_http(&config, config.prometheus_port, "prometheus_port").await else {
            return ExitCode::FAILURE;
        };
        // HTTPS listeners use the [tls] certificate (validate() made sure it is set).
        let acceptor = if config.management_tls || config.prometheus_tls {
            match warren::server::tls::acceptor(&config.tls) {
                Ok(a) => Some(a),
                Err(e) => {
                    eprintln!("warren: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let http_tls = |on: bool| if on { acceptor.clone() } else { None };
        let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
        let management_addr = management.as_ref().and_then(|l| l.local_addr().ok());
        let prometheus_addr = prometheus.as_ref().and_then(|l| l.local_addr().ok());
        tracing::info!(amqp = %show(listeners.amqp_addr()), amqps = %show(listeners.amqps_addr()), management = %show(management_addr), prometheus = %show(prometheus_addr), data_dir = %config.data_dir.display(), "Warren is ready");
        // The line testcontainers and scripts wait for (RabbitMQ's wording).
        tracing::info!("Server startup complete");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if let Some(listener) = management {
            let mut stop = stop_rx.clone();
            let mut shown = Vec::new();
            if let Some(a) = listeners.amqp_addr() {
                shown.push(("amqp", a));
            }
            if let Some(a) = listeners.amqps_addr() {
                shown.push(("amqp/ssl", a));
            }
            if let Some(a) = management_addr {
                shown.push((if config.management_tls { "https" } else { "http" }, a));
            }
            if let Some(a) = prometheus_addr {
                shown.push((if config.prometheus_tls { "https/prometheus" } else { "http/prometheus" }, a));
            }
            tokio::spawn(warren::management::serve(listener, http_tls(config.management_tls), broker.clone(), shown, async move {
                let _ = stop.changed().await;
            }));
        }
        if let Some(listener) = prometheus {
            let mut stop = stop_rx.clone();
            tokio::spawn(warren::management::prometheus::serve(listener, http_tls(config.prometheus_tls), broker.clone(), async move {
                let _ = stop.changed().await;
            }));
        }
        warren::server::run(listeners, std::sync::Arc::new(config), broker.clone(), shutdown_signal()).await;
        let _ = stop_tx.send(true);
        broker.close(SHUTDOWN_FLUSH);
        tracing::info!("Warren stopped");
        ExitCode::SUCCESS
    })
}
