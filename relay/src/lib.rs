//! `tether-relay`: the QUIC server that pairs agents with customers.
//!
//! - [`core`]: the session logic as a sans-IO state machine.
//! - [`server`]: the async shell around it (QUIC, handshake, stream splicing).
//! - [`store`]: agents, keys, the session history and the audit trail in SQLite.
//! - [`tls`]: the self-signed certificate clients pin.
//!
//! The relay is also embedded in `tether-console` for a local try.

pub mod cli;
pub mod core;
mod fsutil;
pub mod mail;
pub mod portal;
pub mod server;
pub mod store;
pub mod tls;

pub use server::{Limits, Relay, RelayConfig};
