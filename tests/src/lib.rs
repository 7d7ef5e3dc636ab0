//! Test harness for Tether's end-to-end tests and benchmarks: Xvfb displays, the project's
//! programs as child processes, relays and sessions, and pictures drawn on and read from an X
//! server.
//!
//! - [`process`]: child processes and what is read of them;
//! - [`console`]: the real console window's buttons, found and clicked;
//! - [`xvfb`]: X servers, pictures, input windows, the clipboard, window titles;
//! - [`relay`]: relay processes and raw protocol peers;
//! - [`session`]: customer hosts and an agent in a session;
//! - [`impair`]: a bad network (delay, loss, rate, cuts, rebinding) between clients and a relay.
//!
//! Everything started here is stopped on drop (children by PID, Xvfb displays) and listens only
//! on loopback.

use std::time::{Duration, Instant};

use anyhow::bail;

pub mod console;
pub mod http;
pub mod impair;
pub mod process;
pub mod relay;
pub mod session;
pub mod smtp;
pub mod webdriver;
pub mod xvfb;

pub use impair::*;
pub use process::*;
pub use relay::*;
pub use session::*;
pub use xvfb::*;

/// Polls `f` until it returns `Some`, or fails after `deadline`.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits, without blocking the async runtime, until `f` says yes, or fails after `deadline`.
pub async fn until(
    what: &str,
    deadline: Duration,
    mut f: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let end = Instant::now() + deadline;
    while !f() {
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
