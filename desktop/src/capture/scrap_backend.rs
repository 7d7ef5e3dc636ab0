//! Windows and macOS capture through scrap.

use std::io::ErrorKind;

use tether_protocol::msg::MonitorInfo;
use tether_protocol::screen::{FrameRef, Rect};

use super::{CaptureError, Capturer};

/// Captures through scrap; one scrap capturer per monitor, opened on first use.
pub struct ScrapCapturer {
    monitors: Vec<MonitorInfo>,
    current: Option<(usize, scrap::Capturer)>,
    copy: Vec<u8>,
}

// SAFETY: scrap's capturers are used from one thread at a time through &mut self.
unsafe impl Send for ScrapCapturer {}

impl ScrapCapturer {
    /// Lists the displays.
    pub fn open() -> Result<Self, CaptureError> {
        let displays = scrap::Display::all().map_err(|e| CaptureError::NoDisplay(e.to_string()))?;
        let monitors = displays
            .iter()
            .enumerate()
            .map(|(i, d)| MonitorInfo {
                name: format!("display {}", i + 1),
                x: 0,
                y: 0,
                width: d.width() as u32,
                height: d.height() as u32,
                primary: i == 0,
            })
            .collect();
        Ok(Self {
            monitors,
            current: None,
            copy: Vec::new(),
        })
    }
}

impl Capturer for ScrapCapturer {
    fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        Ok(self.monitors.clone())
    }

    fn capture(
        &mut self,
        index: usize,
        _only: Option<&[Rect]>,
    ) -> Result<FrameRef<'_>, CaptureError> {
        let info = self
            .monitors
            .get(index)
            .ok_or(CaptureError::NoMonitor(index))?
            .clone();
        if self.current.as_ref().map(|(i, _)| *i) != Some(index) {
            let mut displays =
                scrap::Display::all().map_err(|e| CaptureError::NoDisplay(e.to_string()))?;
            if index >= displays.len() {
                return Err(CaptureError::NoMonitor(index));
            }
            let d = displays.swap_remove(index);
            let c = scrap::Capturer::new(d).map_err(|e| CaptureError::Failed(e.to_string()))?;
            self.current = Some((index, c));
        }
        let Some((_, cap)) = self.current.as_mut() else {
            return Err(CaptureError::NoMonitor(index));
        };
        loop {
            match cap.frame() {
                Ok(frame) => {
                    self.copy.clear();
                    self.copy.extend_from_slice(&frame);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => return Err(CaptureError::Failed(e.to_string())),
            }
        }
        let stride = self.copy.len() / info.height.max(1) as usize;
        Ok(FrameRef {
            width: info.width,
            height: info.height,
            stride,
            data: &self.copy,
        })
    }
}
