//! Opening a web address in the default browser, or a folder in the file manager, behind the
//! [`Opener`] trait.

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Why something could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {what}: {reason}")]
pub struct OpenError {
    /// What was to be opened.
    pub what: String,
    /// Why not.
    pub reason: String,
}

/// Opens web addresses (already checked to be http or https) and local folders.
pub trait Opener: Send + Sync {
    /// Opens `what` with the desktop's default program for it.
    fn open(&self, what: &OsStr) -> Result<(), OpenError>;
}

/// The desktop's defaults, through the `open` crate (xdg-open, open, the Windows shell); a
/// `$BROWSER` set in the environment opens web addresses, as xdg-open itself would.
#[derive(Debug, Default)]
pub struct SystemOpener;

impl Opener for SystemOpener {
    fn open(&self, what: &OsStr) -> Result<(), OpenError> {
        let fail = |reason: String| OpenError {
            what: what.to_string_lossy().into_owned(),
            reason,
        };
        let web = what
            .to_str()
            .is_some_and(|s| s.starts_with("http://") || s.starts_with("https://"));
        if let Some(browser) = std::env::var_os("BROWSER").filter(|b| web && !b.is_empty()) {
            let mut child = Command::new(browser)
                .arg(what)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| fail(format!("cannot start the browser: {e}")))?;
            // Reap it in the background so it never lingers as a zombie.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Ok(());
        }
        open::that_detached(what).map_err(|e| fail(e.to_string()))
    }
}

/// Records what would have been opened, for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingOpener(pub Arc<Mutex<Vec<String>>>);

impl Opener for RecordingOpener {
    fn open(&self, what: &OsStr) -> Result<(), OpenError> {
        self.0
            .lock()
            .map_err(|_| OpenError {
                what: what.to_string_lossy().into_owned(),
                reason: "poisoned".into(),
            })?
            .push(what.to_string_lossy().into_owned());
        Ok(())
    }
}
