//! The customer's clipboard behind the [`Clipboard`] trait: arboard on the desktop, memory in tests.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the local clipboard is looked at while sync is on (X11 has no change events).
pub const CLIPBOARD_POLL: Duration = Duration::from_millis(250);

/// Why the clipboard could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClipboardError {
    /// There is no clipboard to open (no display, no clipboard service).
    #[error("clipboard unavailable: {0}")]
    Unavailable(String),
    /// The text could not be set.
    #[error("cannot set the clipboard: {0}")]
    Set(String),
}

/// Text clipboard access.
pub trait Clipboard: Send {
    /// The current text, if any.
    fn get(&mut self) -> Option<String>;
    /// Replaces the text.
    fn set(&mut self, text: &str) -> Result<(), ClipboardError>;
}

/// Makes a clipboard.
pub type ClipboardFactory =
    Arc<dyn Fn() -> Result<Box<dyn Clipboard>, ClipboardError> + Send + Sync>;

/// The desktop clipboard through arboard.
pub struct SystemClipboard(arboard::Clipboard);

impl std::fmt::Debug for SystemClipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemClipboard")
    }
}

impl Clipboard for SystemClipboard {
    fn get(&mut self) -> Option<String> {
        self.0.get_text().ok()
    }

    fn set(&mut self, text: &str) -> Result<(), ClipboardError> {
        self.0
            .set_text(text.to_string())
            .map_err(|e| ClipboardError::Set(e.to_string()))
    }
}

/// The clipboard of this desktop.
pub fn system_clipboard() -> ClipboardFactory {
    Arc::new(|| {
        arboard::Clipboard::new()
            .map(|c| Box::new(SystemClipboard(c)) as Box<dyn Clipboard>)
            .map_err(|e| ClipboardError::Unavailable(e.to_string()))
    })
}

/// A clipboard in memory, for tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryClipboard(pub Arc<Mutex<Option<String>>>);

impl MemoryClipboard {
    /// A factory whose clipboards all share this one's text.
    pub fn factory(&self) -> ClipboardFactory {
        let shared = self.clone();
        Arc::new(move || Ok(Box::new(shared.clone()) as Box<dyn Clipboard>))
    }
}

impl Clipboard for MemoryClipboard {
    fn get(&mut self) -> Option<String> {
        self.0.lock().ok().and_then(|t| t.clone())
    }

    fn set(&mut self, text: &str) -> Result<(), ClipboardError> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(text.to_string());
        Ok(())
    }
}

/// Remembers what was last exchanged, so that text set from the other side is not sent back.
#[derive(Debug, Default)]
pub struct EchoGuard {
    last: Option<String>,
}

impl EchoGuard {
    /// Text seen locally: returns it if it is new and should be sent.
    pub fn local(&mut self, text: Option<String>) -> Option<String> {
        let text = text?;
        if self.last.as_deref() == Some(&text) {
            return None;
        }
        self.last = Some(text.clone());
        Some(text)
    }

    /// Text arriving from the other side, about to be set locally.
    pub fn remote(&mut self, text: &str) {
        self.last = Some(text.to_string());
    }
}

enum ClipCmd {
    Set(String),
    Watch(bool),
}

/// Owns the clipboard on a thread of its own: sets text from the other side, and while watching,
/// reports local changes (never echoing what the other side sent). Stops when dropped.
#[derive(Debug)]
pub struct ClipboardWorker {
    tx: std_mpsc::Sender<ClipCmd>,
}

impl ClipboardWorker {
    /// Starts the worker. `local` gets new local text (returns false to stop); `error` gets
    /// problems to show.
    pub fn start(
        factory: ClipboardFactory,
        local: impl Fn(String) -> bool + Send + 'static,
        error: impl Fn(String) + Send + 'static,
    ) -> Self {
        let (tx, rx) = std_mpsc::channel::<ClipCmd>();
        std::thread::spawn(move || {
            let mut clip: Option<Box<dyn Clipboard>> = None;
            let mut guard = EchoGuard::default();
            let mut watching = false;
            loop {
                let cmd = if watching {
                    match rx.recv_timeout(CLIPBOARD_POLL) {
                        Ok(c) => Some(c),
                        Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                } else {
                    match rx.recv() {
                        Ok(c) => Some(c),
                        Err(_) => return,
                    }
                };
                if clip.is_none() {
                    match factory() {
                        Ok(c) => clip = Some(c),
                        Err(e) => {
                            error(e.to_string());
                            return;
                        }
                    }
                }
                let Some(c) = clip.as_mut() else { return };
                match cmd {
                    Some(ClipCmd::Set(text)) => {
                        guard.remote(&text);
                        if let Err(e) = c.set(&text) {
                            error(e.to_string());
                        }
                    }
                    Some(ClipCmd::Watch(on)) => {
                        watching = on;
                        if on {
                            // What is on the clipboard now is not news; only later changes are sent.
                            let now = c.get();
                            let _ = guard.local(now);
                        }
                    }
                    None => {
                        if let Some(text) = guard.local(c.get())
                            && !local(text)
                        {
                            return;
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Puts text from the other side on the clipboard.
    pub fn set(&self, text: String) {
        let _ = self.tx.send(ClipCmd::Set(text));
    }

    /// Starts or stops reporting local changes.
    pub fn watch(&self, on: bool) {
        let _ = self.tx.send(ClipCmd::Watch(on));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_other_side_is_not_echoed() {
        let mut g = EchoGuard::default();
        assert_eq!(g.local(Some("a".into())), Some("a".into()));
        assert_eq!(g.local(Some("a".into())), None, "unchanged");
        g.remote("b");
        assert_eq!(
            g.local(Some("b".into())),
            None,
            "what the other side sent is not sent back"
        );
        assert_eq!(g.local(Some("c".into())), Some("c".into()));
        assert_eq!(g.local(None), None);
    }
}
