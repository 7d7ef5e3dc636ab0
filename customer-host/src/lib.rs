//! `tether-host`: what the customer runs. It joins a session with a key, reports the computer's
//! details, and serves each agent's screen, input and file streams, asking the customer first.
//!
//! - [`cli`]: the command line and the controller that runs one attempt after another.
//! - [`session`]: the connection to the relay and the streams it brings.
//! - [`screen`]: one viewer's capture, diff, encode and send loop.
//! - [`control`]: one agent's input stream; [`filesvc`]: its file streams.
//! - [`consent`], [`window`], [`failure`], [`config`]: what the customer sees and decides.
//!
//! The desktop itself (capture, injection, clipboard, opening) is `tether-desktop`'s.

pub mod activity;
pub mod cli;
pub mod config;
pub mod consent;
pub mod control;
pub mod controller;
pub mod failure;
pub mod filesvc;
pub mod grants;
pub mod screen;
pub mod session;
pub mod window;

pub use session::{HostError, HostEvent, HostOptions, Outcome, Services, run, run_with};
