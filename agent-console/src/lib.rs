//! `tether-console`: the support agent's desktop app.
//!
//! - [`net`]: the agent's client (login, keys, session events, screen views), UI-free.
//! - [`backend`]: runs [`net`] on a tokio runtime and talks to the UI over channels.
//! - [`state`]: the console's state, apart from drawing; [`queue`]: its queues, alerts and
//!   activity markers.
//! - [`ui`]: panels, each a function of the state.
//! - [`app`]: the eframe application gluing them.
//! - [`local`]: the in-process relay and demo host for a local try (cargo features).
//! - [`asked`]: what the console asked a host for; it acts on answers to those only.

pub mod app;
pub mod asked;
pub mod backend;
pub mod cli;
pub mod keys;
pub mod local;
pub mod net;
pub mod queue;
pub mod state;
pub mod ui;
pub mod words;
