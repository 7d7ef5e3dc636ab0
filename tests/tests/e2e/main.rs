//! Tether end to end, in one test binary: the relay, the customer host and the console as real
//! processes (or the real console app in a test harness), real QUIC on loopback, real X servers
//! (Xvfb), real capture and injection.

// Helpers here are test code too: a failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod chat;
mod console;
mod control;
mod desk;
mod files;
mod hardening;
mod host_cli;
mod portal;
mod refusals;
mod relay_cli;
mod resume;
mod screen;
mod session;
