//! Tether's wire protocol.
//!
//! Everything here is sans-IO: plain data types, encoders and decoders, and state machines that
//! take events (and the current time) in and hand results back. Nothing here touches a socket,
//! a clock, a thread or the OS, which is what lets the same code be driven by the relay, the
//! customer host, the agent console, property tests and the fuzzer.
//!
//! - [`frame`]: length-prefixed postcard frames with a hard size limit and typed errors.
//! - [`msg`]: the messages of the control plane and the routing preambles of media streams.
//! - [`desk`]: participants, members, queues and their entries, transfer targets.
//! - [`pairing`]: session PINs, key checks and the per-source attempt limiter.
//! - [`screen`]: the changed-tile screen codec (lossless palette or BGR + zstd, lossy JPEG for
//!   photo-like motion), the `ScreenEncoder` trait and the viewer's bounded framebuffer.
//! - [`flow`]: the latest-frame-wins in-flight window for screen updates.
//! - [`consent`]: what the customer allowed one participant ([`consent::ConsentGate`]).
//! - [`input`]: remote input, and the host's [`input::InputGate`] that lets only allowed input
//!   through.
//! - [`files`]: file-stream messages and the path and address rules.
//! - [`fuzzing`]: the bodies of the fuzz targets, also run on their regression inputs by tests.

pub mod chat;
pub mod consent;
pub mod desk;
pub mod embed;
pub mod files;
pub mod flow;
pub mod frame;
pub mod fuzzing;
pub mod input;
pub mod msg;
pub mod pairing;
pub mod screen;

/// The ALPN protocol name. It carries the protocol version, so a peer of another version fails
/// the TLS handshake with "no application protocol" instead of misreading our frames.
pub const ALPN: &[u8] = b"tether/18";

/// The protocol version carried in [`msg::Hello`].
pub const PROTOCOL_VERSION: u16 = 18;
