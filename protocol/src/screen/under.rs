//! What lies under windows: pictures that a window, a menu or a dialog covered, kept on both
//! sides at their place on the screen, so that uncovering them costs a reference instead of
//! their pixels.
//!
//! A window dragged across the desktop uncovers, at every step, a strip of the wallpaper or of
//! the windows beneath; a menu or a dialog that closes uncovers what it hid. The viewer saw
//! those pixels before they were covered. When the encoder sends a frame in which something
//! covers a still part of the screen, it first tells the viewer to [save](GlyphOp::Save) what
//! is there, and saves it too:
//! - what a window dragged sideways or across covers (the part of its destination outside its
//!   source), at every step of the drag;
//! - what a large change covers (a window, a menu or a dialog that appears, at least
//!   [`SAVE_MIN_AREA`] pixels of a frame) where it had not changed for [`SAVE_AGE_MS`],
//!   all of it at once, copies and all, when its copies explain less than half of it (a menu
//!   whose window first shows what it held before the X server moved it into place).
//!
//! Only what the viewer holds exactly is saved. When a changed part of a later frame equals,
//! byte for byte, what the encoder saved at the same place, the encoder sends a
//! [restore](GlyphOp::Restore) of it.
//!
//! Both sides hold one screen-sized picture (allocated at the first save), so a save or a
//! restore can only name a rectangle inside the screen, which the viewer checks before
//! anything is written. The encoder also remembers which pixels it saved since its own start:
//! it restores only those, which the viewer saved too. The viewer forgets it all when the
//! screen changes size.

use super::wire::{FrameRef, Rect};

/// Fewest pixels of a frame's change over still content that are saved: a window, a menu or a
/// dialog, not a keystroke.
pub(super) const SAVE_MIN_AREA: u64 = 128 * 128;
/// How long content must have been still to be saved when something covers it.
pub(super) const SAVE_AGE_MS: u64 = 500;

/// A screen-sized picture (BGRX) of what was saved at each place; empty until the first save.
#[derive(Debug, Clone, Default)]
pub(super) struct Under {
    px: Vec<u8>,
}

impl Under {
    /// Forgets everything.
    pub(super) fn clear(&mut self) {
        self.px = Vec::new();
    }

    /// Saves `rect` of `pixels` (BGRX, `width` pixels a row; `rect` lies inside).
    pub(super) fn save(&mut self, pixels: &[u8], width: u32, rect: &Rect) {
        if self.px.len() != pixels.len() {
            self.px = vec![0; pixels.len()];
        }
        for (o, line) in spans(width, rect) {
            self.px[o..o + line].copy_from_slice(&pixels[o..o + line]);
        }
    }

    /// Paints `rect` of `pixels` (BGRX, `width` pixels a row; `rect` lies inside) with what was
    /// saved there (black where nothing was).
    pub(super) fn restore(&self, pixels: &mut [u8], width: u32, rect: &Rect) {
        for (o, line) in spans(width, rect) {
            match self.px.get(o..o + line) {
                Some(saved) => pixels[o..o + line].copy_from_slice(saved),
                None => pixels[o..o + line].fill(0),
            }
        }
    }
}

/// The offset and length in bytes of each row of `rect` in a picture `width` pixels wide.
fn spans(width: u32, rect: &Rect) -> impl Iterator<Item = (usize, usize)> {
    let pitch = width as usize * 4;
    let (x, line) = (rect.x as usize * 4, rect.w as usize * 4);
    (rect.y..rect.y + rect.h).map(move |y| (y as usize * pitch + x, line))
}

/// The encoder's side: the viewer's saved picture and which of its pixels were saved since the
/// encoder started.
#[derive(Debug, Default)]
pub(super) struct Beneath {
    under: Under,
    /// One byte a pixel, non-zero where saved; empty until the first save.
    saved: Vec<u8>,
    width: u32,
}

impl Beneath {
    /// Forgets everything (the encoder starts again).
    pub(super) fn clear(&mut self) {
        self.under.clear();
        self.saved = Vec::new();
    }

    /// Saves `rect` of `mirror` (the viewer's picture, exact there) as the viewer will on the
    /// [`GlyphOp::Save`](super::glyphs::GlyphOp::Save) sent for it.
    pub(super) fn save(&mut self, mirror: &FrameRef<'_>, rect: &Rect) {
        let pixels = mirror.width as usize * mirror.height as usize;
        if self.saved.len() != pixels {
            self.saved = vec![0; pixels];
            self.width = mirror.width;
        }
        self.under.save(mirror.data, mirror.width, rect);
        for y in rect.y..rect.y + rect.h {
            let o = (y * self.width + rect.x) as usize;
            self.saved[o..o + rect.w as usize].fill(1);
        }
    }

    /// Splits the changed box `r` of `frame` into what can be restored (what was saved at the
    /// same place, every pixel of it saved: whole rows, or runs of rows at its left or right
    /// edge, at least [`MIN_RESTORE_AREA`] pixels each) and what is left to send.
    pub(super) fn split(&self, frame: &FrameRef<'_>, r: &Rect) -> (Vec<Rect>, Vec<Rect>) {
        if self.saved.is_empty() || frame.width != self.width {
            return (Vec::new(), vec![*r]);
        }
        let rows = r.y..r.y + r.h;
        // Pixels restored at the left of each row, then at the right of what is left.
        let mut left: Vec<u32> = rows
            .clone()
            .map(|y| self.matching(frame, y, r.x, r.w, false))
            .collect();
        keep_telling(&mut left, |k, n, v| telling(frame, r, k, n, r.x, v));
        let mut right: Vec<u32> = rows
            .clone()
            .zip(&left)
            .map(|(y, &l)| self.matching(frame, y, r.x + l, r.w - l, true))
            .collect();
        keep_telling(&mut right, |k, n, v| {
            telling(frame, r, k, n, r.x + r.w - v, v)
        });
        let (mut restored, mut rest) = (Vec::new(), Vec::new());
        let mut k = 0;
        while k < left.len() {
            let (l, rt) = (left[k], right[k]);
            let n = left[k..]
                .iter()
                .zip(&right[k..])
                .take_while(|p| *p == (&l, &rt))
                .count() as u32;
            let (y, h) = (r.y + k as u32, n);
            let parts = [
                (r.x, l, true),
                (r.x + r.w - rt, rt, true),
                (r.x + l, r.w - l - rt, false),
            ];
            for (x, w, saved) in parts.into_iter().filter(|p| p.1 > 0) {
                let list = if saved { &mut restored } else { &mut rest };
                list.push(Rect { x, y, w, h });
            }
            k += n as usize;
        }
        (restored, rest)
    }

    /// How many pixels of row `y` of `frame`, from `x` on (`w` of them), were saved and are
    /// what was saved: from the left, or with `from_right` from the right.
    fn matching(&self, frame: &FrameRef<'_>, y: u32, x: u32, w: u32, from_right: bool) -> u32 {
        let now = frame.row(y, x, x + w).chunks_exact(4);
        let p = (y * self.width + x) as usize;
        let saved = self.saved[p..p + w as usize].iter();
        let o = p * 4;
        let then = self.under.px[o..o + w as usize * 4].chunks_exact(4);
        let same = |((a, b), s): ((&[u8], &[u8]), &u8)| *s != 0 && a == b;
        let pixels = now.zip(then).zip(saved);
        if from_right {
            pixels.rev().take_while(|p| same(*p)).count() as u32
        } else {
            pixels.take_while(|p| same(*p)).count() as u32
        }
    }
}

/// Fewest pixels of one restore: smaller matches are sent with what surrounds them.
const MIN_RESTORE_AREA: u32 = 16;
/// Fewest rows of a restore that does not span its changed box's width.
const MIN_RESTORE_ROWS: u32 = 4;

/// Whether the run of rows `k..k + n` of the changed box `r` of `frame`, in the columns `x..x +
/// w`, is worth a restore: at least [`MIN_RESTORE_AREA`] pixels, across the box or at least
/// [`MIN_RESTORE_ROWS`] rows, and not all one colour. Text over text that was saved matches it
/// here and there (a margin, a blank line, a letter in the same place); such matches would only
/// cut up what is sent.
fn telling(frame: &FrameRef<'_>, r: &Rect, k: usize, n: usize, x: u32, w: u32) -> bool {
    let n = n as u32;
    if w * n < MIN_RESTORE_AREA || (n < MIN_RESTORE_ROWS && w < r.w) {
        return false;
    }
    let y = r.y + k as u32;
    let first = frame.row(y, x, x + 1);
    (y..y + n).any(|y| frame.row(y, x, x + w).chunks_exact(4).any(|p| p != first))
}

/// Zeroes the runs of equal values in `cols` (pixels of consecutive rows) that `keep` (given
/// the run's first row, its rows and its value) refuses.
fn keep_telling(cols: &mut [u32], keep: impl Fn(usize, usize, u32) -> bool) {
    let mut k = 0;
    while k < cols.len() {
        let v = cols[k];
        let n = cols[k..].iter().take_while(|c| **c == v).count();
        if v > 0 && !keep(k, n, v) {
            cols[k..k + n].fill(0);
        }
        k += n;
    }
}
