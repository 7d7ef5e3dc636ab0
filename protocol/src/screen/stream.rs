//! What a screen stream leaves out because the viewer knows it already: the screen size while it
//! does not change, and the full sequence number and capture time of every part after the first.
//!
//! The host passes each part through its [`StreamWriter`] just before writing it; the viewer passes
//! each part it reads through its [`StreamReader`] before anything else. Both live as long as the
//! stream, which is as long as the viewer's framebuffer.

use super::wire::{CodecError, FrameUpdate, ScreenSize};

/// The host's side of one screen stream.
#[derive(Debug, Default)]
pub struct StreamWriter {
    size: Option<ScreenSize>,
    seq: u64,
    captured_us: u64,
}

impl StreamWriter {
    /// A writer for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves out of `upd` what the viewer knows from the parts before it.
    pub fn compact(&mut self, upd: &mut FrameUpdate) {
        if upd.size.is_some() && upd.size == self.size {
            upd.size = None;
        } else if upd.size.is_some() {
            self.size = upd.size;
        }
        // Parts of one frame share a number and frames count up: a difference of 0 or 1.
        let seq = upd.seq;
        upd.seq = seq.wrapping_sub(self.seq);
        self.seq = seq;
        let captured = upd.timing.captured_us;
        let gap = captured.saturating_sub(self.captured_us);
        upd.timing.captured_us = gap;
        // The reader adds the gap to what it has; a clock going backwards shows as no gap.
        self.captured_us += gap;
    }
}

/// The viewer's side of one screen stream.
#[derive(Debug, Default)]
pub struct StreamReader {
    size: Option<ScreenSize>,
    seq: u64,
    captured_us: u64,
}

impl StreamReader {
    /// A reader for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores what the host left out of `upd`. A first part without a screen size is refused.
    pub fn expand(&mut self, upd: &mut FrameUpdate) -> Result<(), CodecError> {
        match upd.size {
            Some(s) => self.size = Some(s),
            None => upd.size = Some(self.size.ok_or(CodecError::NoSize)?),
        }
        self.seq = self.seq.wrapping_add(upd.seq);
        upd.seq = self.seq;
        self.captured_us = self.captured_us.saturating_add(upd.timing.captured_us);
        upd.timing.captured_us = self.captured_us;
        Ok(())
    }
}
