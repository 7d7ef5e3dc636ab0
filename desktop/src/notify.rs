//! Desktop notifications: `Notifier` (the desktop's notification service through `notify-send`
//! where it is installed; a recorder for tests). A desktop without one shows nothing and fails
//! nothing: the console's own popup is the alert that counts.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Shows a short notification outside the application's window.
pub trait Notifier: Send + Sync {
    /// Shows `title` and `body`; never fails, never blocks.
    fn notify(&self, title: &str, body: &str);
}

/// The freedesktop notification service, through `notify-send` (libnotify's command) if it is
/// on the `PATH`.
#[derive(Debug, Default)]
pub struct SystemNotifier;

impl Notifier for SystemNotifier {
    fn notify(&self, title: &str, body: &str) {
        let child = Command::new("notify-send")
            .args(["--app-name=Tether Console", "--", title, body])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            // Reap it in the background so it never lingers as a zombie.
            Ok(mut child) => {
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
            }
            Err(e) => tracing::debug!(error = %e, "no desktop notification"),
        }
    }
}

/// Records notifications, for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingNotifier(pub Arc<Mutex<Vec<(String, String)>>>);

impl Notifier for RecordingNotifier {
    fn notify(&self, title: &str, body: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push((title.to_string(), body.to_string()));
        }
    }
}
