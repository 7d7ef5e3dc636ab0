//! Opening a pushed web address in the customer's default browser, behind the [`UrlOpener`] trait.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Opens web addresses (already checked to be http or https).
pub trait UrlOpener: Send + Sync {
    /// Opens `url` in the default browser.
    fn open(&self, url: &str) -> Result<(), String>;
}

/// The desktop's default browser: `$BROWSER` or `xdg-open` on Linux, `open` on macOS, the URL
/// protocol handler on Windows.
#[derive(Debug, Default)]
pub struct SystemOpener;

impl UrlOpener for SystemOpener {
    fn open(&self, url: &str) -> Result<(), String> {
        let mut cmd = if cfg!(target_os = "macos") {
            let mut c = Command::new("open");
            c.arg(url);
            c
        } else if cfg!(windows) {
            let mut c = Command::new("rundll32");
            c.args(["url.dll,FileProtocolHandler", url]);
            c
        } else {
            let program = std::env::var("BROWSER")
                .ok()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "xdg-open".into());
            let mut c = Command::new(program);
            c.arg(url);
            c
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the browser: {e}"))?;
        // Reap it in the background so it never lingers as a zombie.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }
}

/// Records addresses instead of opening them, for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingOpener(pub Arc<Mutex<Vec<String>>>);

impl UrlOpener for RecordingOpener {
    fn open(&self, url: &str) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .push(url.to_string());
        Ok(())
    }
}
