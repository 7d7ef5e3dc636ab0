//! Screen capture behind the [`Capturer`] trait.
//!
//! - On Linux/X11, [`x11::X11Capturer`] reads the screen through MIT-SHM into a memfd that only
//!   this process and the X server can reach (no SysV segment, nothing left behind if killed).
//!   scrap's X11 backend is not used: it creates its segment world-readable (mode 0777), leaves it
//!   behind when killed, and its RandR monitor iterator reads freed memory.
//! - On Windows and macOS, scrap's capturers sit behind the same trait.
//! - [`SyntheticCapturer`] serves tests and benchmarks with a picture in memory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_protocol::msg::MonitorInfo;
use tether_protocol::screen::{FrameRef, Rect};

#[cfg(target_os = "linux")]
pub mod x11;

#[cfg(not(target_os = "linux"))]
pub mod scrap_backend;

/// Why capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No display could be opened.
    #[error("cannot open the display: {0}")]
    NoDisplay(String),
    /// The display uses a pixel format we cannot read.
    #[error("unsupported pixel format: {0}")]
    Format(String),
    /// Shared memory could not be set up.
    #[error("shared memory: {0}")]
    Shm(String),
    /// A capture request failed.
    #[error("capture failed: {0}")]
    Failed(String),
    /// The monitor index is not valid.
    #[error("no monitor {0}")]
    NoMonitor(usize),
}

/// What changed on the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Nothing changed.
    None,
    /// These rectangles changed (desktop coordinates, clipped to the screen).
    Rects(Vec<Rect>),
    /// Anything may have changed: this backend cannot tell.
    Unknown,
}

/// Wakes a capturer waiting for damage (see [`Capturer::waker`]).
#[derive(Clone)]
pub struct Wakeup(Arc<dyn Fn() + Send + Sync>);

impl Wakeup {
    /// A wake-up that runs `f`.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Wakeup(Arc::new(f))
    }

    /// Makes the wait return.
    pub fn wake(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wakeup")
    }
}

/// A source of screen pictures.
pub trait Capturer: Send {
    /// Every monitor, primary first, with its origin and size.
    fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError>;

    /// Waits for the screen to change, at most `timeout` (`None`: until it changes or the
    /// [`Capturer::waker`] is woken), and says what changed since the last call. Backends that
    /// cannot tell wait a frame interval and answer [`Damage::Unknown`].
    fn wait_damage(&mut self, timeout: Option<Duration>) -> Result<Damage, CaptureError> {
        let frame = Duration::from_millis(15);
        std::thread::sleep(timeout.map_or(frame, |t| t.min(frame)));
        Ok(Damage::Unknown)
    }

    /// A handle with which another thread makes a [`Capturer::wait_damage`] in progress (or the
    /// next one) return [`Damage::None`] at once. `None` for backends whose waits are short
    /// anyway.
    fn waker(&self) -> Option<Wakeup> {
        None
    }

    /// Captures monitor `index` (into [`Capturer::monitors`]) as BGRX pixels. With `only`, just
    /// those monitor-relative rectangles are read again; the rest of the frame keeps the pixels of
    /// this monitor's previous capture.
    fn capture(
        &mut self,
        index: usize,
        only: Option<&[Rect]>,
    ) -> Result<FrameRef<'_>, CaptureError>;
}

/// Makes a capturer; each screen viewer gets its own.
pub type CapturerFactory = Arc<dyn Fn() -> Result<Box<dyn Capturer>, CaptureError> + Send + Sync>;

/// The capturer for this platform's display.
pub fn system_factory() -> CapturerFactory {
    #[cfg(target_os = "linux")]
    {
        Arc::new(|| Ok(Box::new(x11::X11Capturer::open(None)?) as Box<dyn Capturer>))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Arc::new(|| Ok(Box::new(scrap_backend::ScrapCapturer::open()?) as Box<dyn Capturer>))
    }
}

/// One monitor's picture, shared with the test that changes it.
#[derive(Debug, Clone)]
pub struct SyntheticScreen {
    /// Monitor description.
    pub info: MonitorInfo,
    /// BGRX pixels, `width * 4` bytes per row.
    pub pixels: Vec<u8>,
}

/// A capturer that returns pictures held in memory, for tests and benchmarks.
#[derive(Debug, Clone)]
pub struct SyntheticCapturer {
    screens: Arc<Mutex<Vec<SyntheticScreen>>>,
    copy: Vec<u8>,
}

impl SyntheticCapturer {
    /// A capturer over shared screens; change them through the `Arc` to simulate activity.
    pub fn new(screens: Arc<Mutex<Vec<SyntheticScreen>>>) -> Self {
        Self {
            screens,
            copy: Vec::new(),
        }
    }
}

impl Capturer for SyntheticCapturer {
    fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        let s = self
            .screens
            .lock()
            .map_err(|_| CaptureError::Failed("poisoned".into()))?;
        Ok(s.iter().map(|s| s.info.clone()).collect())
    }

    fn capture(
        &mut self,
        index: usize,
        _only: Option<&[Rect]>,
    ) -> Result<FrameRef<'_>, CaptureError> {
        let (width, height) = {
            let s = self
                .screens
                .lock()
                .map_err(|_| CaptureError::Failed("poisoned".into()))?;
            let screen = s.get(index).ok_or(CaptureError::NoMonitor(index))?;
            self.copy.clear();
            self.copy.extend_from_slice(&screen.pixels);
            (screen.info.width, screen.info.height)
        };
        Ok(FrameRef {
            width,
            height,
            stride: width as usize * 4,
            data: &self.copy,
        })
    }
}
