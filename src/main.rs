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
    /// AMQP port (key: port).
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
    config.validate()?;
    Ok(config)
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
    let args = Args::parse();
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warren: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The log goes to stderr (the README says so); colours only when that is a terminal, so
    // a log file or a pipe gets plain lines.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
        let policy = match config.sync_policy() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("warren: configuration error: {e}");
                return ExitCode::from(2);
            }
        };
        let started = std::time::Instant::now();
        let broker = match warren::broker::Broker::open(config.data_dir.clone(), policy) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("warren: cannot open data_dir {}: {e}", config.data_dir.display());
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "storage recovered");
        let broker = broker.with_alarms(config.alarm_limits());
        let listener = match warren::server::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("warren: cannot listen on {}:{}: {e}", config.listen, config.port);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(listen = %config.listen, port = config.port, data_dir = %config.data_dir.display(), "Warren is ready");
        warren::server::run(listener, std::sync::Arc::new(config), broker.clone(), shutdown_signal()).await;
        broker.close(SHUTDOWN_FLUSH);
        tracing::info!("Warren stopped");
        ExitCode::SUCCESS
    })
}
