//! `tether-host`: what the customer runs. It joins a session with a key, reports the computer's
//! details, and serves each agent's screen stream.
//!
//! - [`capture`]: screen capture backends behind the `Capturer` trait.
//! - [`session`]: the connection to the relay.
//! - [`screen`]: one viewer's capture, diff, encode and send loop.
//! - [`info`]: OS, host name, user name.

pub mod capture;
pub mod cli;
pub mod clipboard;
pub mod config;
pub mod consent;
pub mod control;
pub mod failure;
pub mod files;
pub mod filesvc;
pub mod info;
pub mod input;
pub mod screen;
pub mod session;
pub mod url;
pub mod window;

pub use session::{HostError, HostEvent, HostOptions, Outcome, Services, run, run_with};
