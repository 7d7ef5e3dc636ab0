//! `tether-desktop`: what Tether touches of the computer it runs on, each behind a trait with a
//! fake for tests. It holds no policy: it does what it is told.
//!
//! - [`capture`] (feature `capture`): screen capture, `Capturer` (X11 with MIT-SHM in a private
//!   memfd; scrap on Windows and macOS; a synthetic capturer).
//! - [`input`] (feature `inject`): input injection, `Injector` (enigo; a recorder) and the
//!   `InjectQueue` that keeps events in order and drops them at once on request.
//! - [`clipboard`]: text clipboard, `Clipboard` (arboard; memory) and the `ClipboardWorker`.
//! - [`opener`]: opening web addresses and folders, `Opener` (the desktop's defaults; a recorder).
//! - [`notify`]: desktop notifications, `Notifier` (`notify-send` where installed; a recorder).
//! - [`info`]: OS, host and user names.

#[cfg(feature = "capture")]
pub mod capture;
pub mod clipboard;
pub mod info;
#[cfg(feature = "inject")]
pub mod input;
pub mod notify;
pub mod opener;
