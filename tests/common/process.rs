//! The `warren` binary as a child process, for restart, crash and fault tests.

use super::{COUNTER, WAIT};
use lapin::{Channel, Connection, ConnectionProperties};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// A port no one listens on right now.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address")
}

/// What a `warren` process has logged so far, line by line.
pub type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Spawns the `warren` binary and waits (at most `WAIT`) for the "Warren is ready" line of its
/// log, which it writes once it listens. None when it exits first (its port was taken).
/// Waiting for the line instead of probing the port cannot mistake another process for warren.
pub fn spawn_ready(addr: SocketAddr, data_dir: &std::path::Path) -> Option<std::process::Child> {
    spawn_logged(addr, data_dir, &[]).map(|(child, _)| child)
}

/// Like `spawn_ready`, with extra environment (`WARREN_*` settings), keeping the log.
pub fn spawn_logged(
    addr: SocketAddr,
    data_dir: &std::path::Path,
    env: &[(String, String)],
) -> Option<(std::process::Child, Log)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "--port",
            &addr.port().to_string(),
            "--log-level",
            "info",
            "--data-dir",
        ])
        .arg(data_dir)
        // Many of these run at once: no management listener unless a test asks for one.
        .env("WARREN_MANAGEMENT_PORT", "0")
        .env("WARREN_PROMETHEUS_PORT", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start warren");
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let log: Log = Default::default();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // Threads keep reading the log to its end, so warren never blocks on a full pipe; the log
    // may be on either stream.
    for stream in [
        Box::new(out) as Box<dyn std::io::Read + Send>,
        Box::new(err),
    ] {
        let (log, ready_tx) = (log.clone(), ready_tx.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("Warren is ready") {
                    let _ = ready_tx.send(true);
                }
                if let Ok(mut l) = log.lock() {
                    l.push(line);
                }
            }
            let _ = ready_tx.send(false);
        });
    }
    drop(ready_tx);
    // Both streams must end (false twice) before we know warren exited without being ready.
    let deadline = std::time::Instant::now() + WAIT;
    let mut ended = 0;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(true) => return Some((child, log)),
            Ok(false) => {
                ended += 1;
                if ended == 2 {
                    let _ = child.wait();
                    return None;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("warren did not become ready within {WAIT:?}");
            }
        }
    }
}

/// A `warren` process (for restart and crash tests), on a fixed port and data folder.
pub struct WarrenProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub data_dir: std::path::PathBuf,
    /// `WARREN_*` settings it runs with (kept across restarts).
    pub env: Vec<(String, String)>,
    /// Its log so far.
    pub log: Log,
}

impl WarrenProcess {
    /// Starts the binary on a free port with a new data folder. A port chosen here can be
    /// taken by a test running in parallel before warren binds it; then another is tried.
    pub async fn start_fresh() -> WarrenProcess {
        Self::start_in(fresh_dir(), &[]).await
    }

    /// Starts the binary on a free port with the given data folder and settings.
    pub async fn start_in(data_dir: std::path::PathBuf, env: &[(&str, &str)]) -> WarrenProcess {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for _ in 0..5 {
            let addr = free_addr();
            if let Some((child, log)) = spawn_logged(addr, &data_dir, &env) {
                return WarrenProcess {
                    child,
                    addr,
                    data_dir,
                    env,
                    log,
                };
            }
        }
        panic!("warren did not start on any of 5 free ports");
    }

    /// Starts the binary on `addr` and waits until it is ready.
    pub async fn start(addr: SocketAddr, data_dir: std::path::PathBuf) -> WarrenProcess {
        Self::start_with_env(addr, data_dir, Vec::new())
    }

    fn start_with_env(
        addr: SocketAddr,
        data_dir: std::path::PathBuf,
        env: Vec<(String, String)>,
    ) -> WarrenProcess {
        let (child, log) = spawn_logged(addr, &data_dir, &env).expect("warren exited at startup");
        WarrenProcess {
            child,
            addr,
            data_dir,
            env,
            log,
        }
    }

    /// Whether a log line so far contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log
            .lock()
            .map(|l| l.iter().any(|line| line.contains(text)))
            .unwrap_or(false)
    }

    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let c = Connection::connect(&self.uri(), ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = c.create_channel().await.expect("channel");
        (c, ch)
    }

    /// kill -9: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Starts again on the same port, data folder and settings.
    pub async fn restart(mut self) -> WarrenProcess {
        self.terminate();
        self.start_again()
    }

    /// Kills (-9) and starts again.
    pub async fn crash_and_restart(mut self) -> WarrenProcess {
        self.kill9();
        self.start_again()
    }

    fn start_again(mut self) -> WarrenProcess {
        let (addr, dir, env) = (
            self.addr,
            std::mem::take(&mut self.data_dir),
            std::mem::take(&mut self.env),
        );
        std::mem::forget(self);
        Self::start_with_env(addr, dir, env)
    }
}

/// A new, unused data folder path under the temporary directory.
pub fn fresh_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "warren-proc-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Drop for WarrenProcess {
    fn drop(&mut self) {
        self.kill9();
        if !self.data_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}
