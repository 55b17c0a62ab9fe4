//! Test helpers, one module a job:
//! - `broker`: a Warren inside the test's runtime (`start`, `start_with`);
//! - `process`: a Warren process, for restarts, kill -9 and settings from the environment;
//! - `fault`: faults to inject (a full disk);
//! - `amqp`: lapin helpers (declare, publish, consume, get, count, reply codes);
//! - `raw`: a raw-socket client and hand-built frames for protocol-level tests;
//! - `tls`: a CA and certificates made on the spot, and a TLS client;
//! - `http`: an HTTP client and a management API beside a test broker.
#![allow(dead_code)] // each test binary uses its own share of the helpers

mod amqp;
mod broker;
mod fault;
mod http;
mod process;
mod raw;
mod tls;

// Each test binary uses its own share of these.
#[allow(unused_imports)]
pub use amqp::*;
#[allow(unused_imports)]
pub use broker::*;
#[allow(unused_imports)]
pub use fault::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use raw::*;
use std::time::Duration;
#[allow(unused_imports)]
pub use tls::*;

/// How long any single expected event may take before the test fails (not a sleep).
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `check` until it holds or `WAIT` passes (for effects driven by the broker's clock).
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
