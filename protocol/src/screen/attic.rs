//! The attic: rows of the screen that scrolled out of view, kept on both sides so that
//! scrolling back costs a reference to them instead of their pixels.
//!
//! A reader pages down a document and back up to what they read; a page with photographs
//! costs a quarter of a megabyte each way. When the encoder sends the copy of a region that
//! moved, it first tells the viewer to [keep](GlyphOp::Keep) the rows the move pushes out of
//! the region (those the viewer holds exactly), and keeps them too. Both sides keep them in the
//! same order and drop the oldest once they hold [`ATTIC_BYTES`], so that a row is named by how
//! far back it is from the newest. When rows come back into view (Page Up, Home), the encoder
//! finds them in its attic (a hash of a 64-pixel strip of a row finds a candidate, the pixels
//! are compared byte for byte, and the run is tried in the strips beside it) and sends a
//! [recall](GlyphOp::Recall) of them. Rows recalled across half their width are in view again:
//! both sides drop them once the list of operations is applied, and keep them again when they
//! leave, so that the attic holds what lies above and below the view rather than copies of the
//! same page taken each time it went by.
//!
//! Keeping costs the host a copy of the rows and a hash of a quarter of their strips, and the
//! viewer the copy: together about 4 ms a 1080p page on the project's machine.
//!
//! The viewer keeps what it is told to and checks every recall against what it holds before
//! any pixel is written; it clears its attic when the screen changes size, as the encoder
//! clears its own whenever it starts again. The encoder only names rows kept since its own
//! start, which the viewer kept too, so the viewer may hold older rows but never fewer.

use std::collections::{HashMap, VecDeque};

use super::glyphs::GlyphOp;
use super::scroll::hash_row;
use super::wire::{CodecError, FrameRef, Rect};

/// Most bytes of rows an attic holds (both sides; BGRX, 4 bytes a pixel): about four and a
/// half screens of 1920-pixel rows.
pub const ATTIC_BYTES: usize = 32 << 20;

/// One kept row: its left edge and its BGRX pixels.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) x: u32,
    pub(super) px: Vec<u8>,
}

impl Row {
    /// Its width in pixels.
    pub(super) fn w(&self) -> u32 {
        (self.px.len() / 4) as u32
    }

    /// Its pixels in the columns `x..x + w`, which it holds.
    pub(super) fn span(&self, x: u32, w: u32) -> &[u8] {
        let at = (x - self.x) as usize * 4;
        &self.px[at..at + w as usize * 4]
    }
}

/// Whether a row of `row_w` pixels from `row_x` holds the columns `x..x + w`.
pub(super) fn holds(row_x: u32, row_w: u32, x: u32, w: u32) -> bool {
    x >= row_x && u64::from(x) + u64::from(w) <= u64::from(row_x) + u64::from(row_w)
}

/// Kept rows, oldest first, at most [`ATTIC_BYTES`] of them.
#[derive(Debug, Clone, Default)]
pub(super) struct Attic {
    rows: VecDeque<Row>,
    bytes: usize,
}

impl Attic {
    /// Forgets every row.
    pub(super) fn clear(&mut self) {
        self.rows.clear();
        self.bytes = 0;
    }

    /// How many rows it holds.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds none.
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row `back` rows before the newest (0: the newest).
    pub(super) fn get(&self, back: usize) -> Option<&Row> {
        let i = self.rows.len().checked_sub(back + 1)?;
        self.rows.get(i)
    }

    /// Keeps the rows of `rect` of `pixels` (BGRX, `width` pixels a row; `rect` lies inside),
    /// top first, then drops the oldest rows while it holds more than [`ATTIC_BYTES`]; returns
    /// how many it dropped. The rows it drops make room first, and their buffers are used again.
    pub(super) fn keep(&mut self, pixels: &[u8], width: u32, rect: &Rect) -> usize {
        let pitch = width as usize * 4;
        let line = rect.w as usize * 4;
        let adding = line * rect.h as usize;
        let mut spare = Vec::new();
        while self.bytes + adding > ATTIC_BYTES {
            let Some(row) = self.rows.pop_front() else {
                break;
            };
            self.bytes -= row.px.len();
            spare.push(row.px);
        }
        let mut dropped = spare.len();
        for y in rect.y..rect.y + rect.h {
            let at = y as usize * pitch + rect.x as usize * 4;
            let mut px = spare.pop().unwrap_or_default();
            px.clear();
            px.extend_from_slice(&pixels[at..at + line]);
            self.rows.push_back(Row { x: rect.x, px });
            self.bytes += line;
        }
        // More than the attic holds in one keep: its own first rows go too.
        while self.bytes > ATTIC_BYTES {
            let Some(row) = self.rows.pop_front() else {
                break;
            };
            self.bytes -= row.px.len();
            dropped += 1;
        }
        dropped
    }

    /// Paints `rect` of `pixels` (BGRX, `width` pixels a row) from the rows `back`, `back - 1`,
    /// ... before the newest, top first; checked by [`Pending::recall`] first.
    pub(super) fn recall(&self, back: u32, rect: &Rect, pixels: &mut [u8], width: u32) {
        let pitch = width as usize * 4;
        for k in 0..rect.h {
            let Some(row) = (back.checked_sub(k)).and_then(|b| self.get(b as usize)) else {
                continue;
            };
            let at = (rect.y + k) as usize * pitch + rect.x as usize * 4;
            pixels[at..at + rect.w as usize * 4].copy_from_slice(row.span(rect.x, rect.w));
        }
    }

    /// Drops the rows that the recalls among `ops` read across half their width or more (they
    /// are in view again, and are kept again if they leave it; a strip that matched alone does
    /// not take its row away), once the whole list is applied; returns their places (0: the
    /// oldest) before they were dropped.
    pub(super) fn forget(&mut self, ops: &[GlyphOp]) -> Vec<usize> {
        if !ops.iter().any(|op| matches!(op, GlyphOp::Recall { .. })) {
            return Vec::new();
        }
        let len = self.rows.len();
        let mut columns = vec![0u64; len];
        for op in ops {
            let GlyphOp::Recall { back, rect } = op else {
                continue;
            };
            for k in 0..rect.h {
                if let Some(i) = back
                    .checked_sub(k)
                    .and_then(|b| len.checked_sub(b as usize + 1))
                {
                    columns[i] += u64::from(rect.w);
                }
            }
        }
        let read: Vec<bool> = self
            .rows
            .iter()
            .zip(&columns)
            .map(|(row, c)| *c > 0 && 2 * c >= u64::from(row.w()))
            .collect();
        if !read.contains(&true) {
            return Vec::new();
        }
        let mut places = Vec::new();
        for (i, row) in std::mem::take(&mut self.rows).into_iter().enumerate() {
            if read[i] {
                self.bytes -= row.px.len();
                places.push(i);
            } else {
                self.rows.push_back(row);
            }
        }
        places
    }
}

/// An attic as it will be once a list of operations has kept its rows: what the viewer checks
/// a recall against before anything is written.
pub(super) struct Pending<'a> {
    attic: &'a Attic,
    /// The list's keeps, in order.
    kept: Vec<Rect>,
    /// Rows the keeps add.
    added: usize,
    /// Of the rows there will be (the attic's, then the added ones), how many at the front no
    /// longer fit.
    dropped: usize,
}

impl<'a> Pending<'a> {
    /// `attic` after the keeps among `ops`; refuses a keep that follows a recall (the encoder
    /// keeps first, before its copies, and recalls last).
    pub(super) fn new(attic: &'a Attic, ops: &[GlyphOp]) -> Result<Self, CodecError> {
        let mut kept = Vec::new();
        let mut recalled = false;
        for op in ops {
            match op {
                GlyphOp::Keep { rect } if recalled => {
                    return Err(CodecError::Corrupt(format!(
                        "a keep of {rect:?} after a recall"
                    )));
                }
                GlyphOp::Keep { rect } => kept.push(*rect),
                GlyphOp::Recall { .. } => recalled = true,
                _ => {}
            }
        }
        let mut sizes = attic.rows.iter().map(|r| r.px.len()).chain(
            kept.iter()
                .flat_map(|r| (0..r.h).map(move |_| r.w as usize * 4)),
        );
        let added: usize = kept.iter().map(|r| r.h as usize).sum();
        let mut bytes = attic.bytes + kept.iter().map(|r| r.area() as usize * 4).sum::<usize>();
        let mut dropped = 0;
        while bytes > ATTIC_BYTES {
            let Some(size) = sizes.next() else { break };
            bytes -= size;
            dropped += 1;
        }
        Ok(Pending {
            attic,
            kept,
            added,
            dropped,
        })
    }

    /// The left edge and width of the row `back` rows before the newest, if there will be one.
    fn row(&self, back: usize) -> Option<(u32, u32)> {
        let total = self.attic.len() + self.added;
        if back >= total - self.dropped.min(total) {
            return None;
        }
        if back < self.added {
            // Among the keeps, counted from the last row of the last keep.
            let mut left = back;
            for r in self.kept.iter().rev() {
                if left < r.h as usize {
                    return Some((r.x, r.w));
                }
                left -= r.h as usize;
            }
            return None;
        }
        self.attic
            .get(back - self.added)
            .map(|row| (row.x, row.w()))
    }

    /// Checks a recall of `rect` from the rows `back`, `back - 1`, ...: every one of them there
    /// and holding `rect`'s columns.
    pub(super) fn recall(&self, back: u32, rect: &Rect) -> Result<(), CodecError> {
        for k in 0..rect.h {
            let ok = back
                .checked_sub(k)
                .and_then(|b| self.row(b as usize))
                .is_some_and(|(x, w)| holds(x, w, rect.x, rect.w));
            if !ok {
                return Err(CodecError::Corrupt(format!(
                    "a recall of {rect:?} from {back} rows back: the attic does not hold row {k}"
                )));
            }
        }
        Ok(())
    }
}

/// Width of the column strips whose rows the encoder indexes: a recall is found strip by strip,
/// so that a column that changed beside the rows (a scroll bar) does not hide them.
const STRIP: u32 = 64;
/// Fewest rows worth a recall.
const MIN_RECALL_ROWS: u32 = 16;
/// Rows between those looked up in the index. Only every other row kept is indexed; three
/// being odd, a run of [`MIN_RECALL_ROWS`] holds two probes that find an indexed row, and it is
/// found whole from either (it reaches up as well as down).
const PROBE: u32 = 3;
/// Fewest rows of a recall that differ from the row above them: rows that repeat match
/// anywhere.
const MIN_TELLING: usize = 4;
/// Most recalls in one frame; the rest is sent as pixels.
const MAX_RECALLS: usize = 256;

/// Hashes the index's keys, which are hashes already (of the host's own screen), with a
/// multiply each.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Where each strip of the attic's rows is: the number of the newest row with it.
type Index = HashMap<(u32, u64), u64, std::hash::BuildHasherDefault<KeyHasher>>;

/// The encoder's attic: the viewer's rows, and where to find each strip of them.
#[derive(Debug, Default)]
pub(super) struct Shelf {
    attic: Attic,
    /// The number of each row the attic holds, in its order (increasing, with gaps where rows
    /// were recalled).
    ids: VecDeque<u64>,
    /// The number the next kept row gets.
    next: u64,
    /// The number of the newest row with this strip (its left edge and the hash of its
    /// pixels): every other strip of every other row, unless it is one colour or like the
    /// strip above it. Rows dropped or recalled leave stale entries, which a lookup skips and
    /// which are pruned once older than the oldest row.
    index: Index,
}

/// Whether a row of BGRX pixels is one colour.
fn one_colour(px: &[u8]) -> bool {
    px.chunks_exact(4).all(|p| p == &px[..4])
}

/// The strips (left edges) that lie wholly within `x..x + w`.
fn strips(x: u32, w: u32) -> impl Iterator<Item = u32> {
    (x.div_ceil(STRIP)..(x + w) / STRIP).map(|s| s * STRIP)
}

/// Whether the strip at `sx` is indexed: every other one. A run found in one is tried in the
/// strips beside it.
fn indexed(sx: u32) -> bool {
    (sx / STRIP).is_multiple_of(2)
}

impl Shelf {
    /// Forgets every row (the encoder starts again).
    pub(super) fn clear(&mut self) {
        self.attic.clear();
        self.ids.clear();
        self.index.clear();
    }

    /// Keeps `rect` of `mirror` (the viewer's picture, exact there) as the viewer will on the
    /// [`GlyphOp::Keep`] this returns.
    pub(super) fn keep(&mut self, mirror: &FrameRef<'_>, rect: &Rect) -> GlyphOp {
        // As many strips as the attic can hold, and as many stale ones: it never grows by
        // rehashing.
        let most = ATTIC_BYTES / (STRIP as usize * 4);
        if self.index.capacity() == 0 {
            self.index.reserve(2 * most);
        }
        let dropped = self.attic.keep(mirror.data, mirror.width, rect);
        for k in 0..rect.h {
            self.ids.push_back(self.next + u64::from(k));
        }
        self.ids.drain(..dropped.min(self.ids.len()));
        // Rows dropped stay in the index until it holds twice what the attic can: a lookup
        // finds their numbers gone and skips them.
        if self.index.len() > most {
            let oldest = self.ids.front().copied().unwrap_or(self.next);
            self.index.retain(|_, id| *id >= oldest);
        }
        // A strip like the one above it is not looked for (see `telling` in
        // [`Self::recall`]): not indexed either.
        let len = self.attic.len();
        let first = len.saturating_sub(rect.h as usize);
        for (i, id) in self.ids.iter().enumerate().skip(first) {
            // Every other row (see [`PROBE`]).
            if id % 2 == 1 {
                continue;
            }
            let Some(row) = self.attic.get(len - 1 - i) else {
                continue;
            };
            let y = rect.y + rect.h - (len - i) as u32;
            for sx in strips(row.x, row.w()).filter(|sx| indexed(*sx)) {
                let px = row.span(sx, STRIP);
                let above = y > rect.y && px == mirror.row(y - 1, sx, sx + STRIP);
                if !above && !one_colour(px) {
                    self.index.insert((sx, hash_row(px)), *id);
                }
            }
        }
        self.next += u64::from(rect.h);
        GlyphOp::Keep { rect: *rect }
    }

    /// The row at place `i` (0: the oldest).
    fn at(&self, i: usize) -> Option<&Row> {
        self.attic.get(self.attic.len().checked_sub(i + 1)?)
    }

    /// Recalls of rows of `new` inside `within` that differ from `mirror` and that the attic
    /// holds (at least [`MIN_RECALL_ROWS`] in a row, strips side by side with the same rows
    /// merged); the rows they read are then dropped, as the viewer drops them.
    pub(super) fn recall(
        &mut self,
        mirror: &FrameRef<'_>,
        new: &FrameRef<'_>,
        within: &Rect,
    ) -> Vec<GlyphOp> {
        if self.attic.is_empty() || within.h < MIN_RECALL_ROWS {
            return Vec::new();
        }
        let bottom = within.y + within.h;
        let first = within.x / STRIP * STRIP;
        // (strip, top, rows, place of the top row)
        let mut runs: Vec<(u32, u32, u32, usize)> = Vec::new();
        let all: Vec<u32> = (first..within.x + within.w)
            .step_by(STRIP as usize)
            .filter(|sx| sx + STRIP <= new.width)
            .collect();
        let same_at = |sx: u32, i: usize, y: u32| {
            self.at(i).is_some_and(|row| {
                holds(row.x, row.w(), sx, STRIP)
                    && row.span(sx, STRIP) == new.row(y, sx, sx + STRIP)
            })
        };
        for &sx in all.iter().filter(|sx| indexed(**sx)) {
            let same = |i: usize, y: u32| same_at(sx, i, y);
            // A row like the one above it (a margin, a border, a blank line) matches rows
            // anywhere: it neither starts a run nor counts towards one.
            let telling =
                |y: u32| y == 0 || new.row(y, sx, sx + STRIP) != new.row(y - 1, sx, sx + STRIP);
            // Where this strip's last run ended: a run reaches up to it at most.
            let mut top = within.y;
            let mut y = within.y;
            while y < bottom {
                let cur = new.row(y, sx, sx + STRIP);
                let found =
                    if cur == mirror.row(y, sx, sx + STRIP) || one_colour(cur) || !telling(y) {
                        None
                    } else {
                        self.index
                            .get(&(sx, hash_row(cur)))
                            .and_then(|id| self.ids.binary_search(id).ok())
                    };
                let Some(i) = found else {
                    y += PROBE;
                    continue;
                };
                let mut k = 0;
                while y + k < bottom && same(i + k as usize, y + k) {
                    k += 1;
                }
                if k == 0 {
                    y += 1;
                    continue;
                }
                // Rows above it that only looked alike (blank, or as before) belong to the run
                // too, so that runs side by side start on the same row and merge.
                let (mut y0, mut i0) = (y, i);
                while y0 > top && i0 > 0 && same(i0 - 1, y0 - 1) {
                    (y0, i0) = (y0 - 1, i0 - 1);
                }
                let h = y + k - y0;
                if h >= MIN_RECALL_ROWS
                    && (y0..y0 + h).filter(|&r| telling(r)).count() >= MIN_TELLING
                {
                    runs.push((sx, y0, h, i0));
                    top = y0 + h;
                }
                y += k;
            }
        }
        // The runs found, tried in every strip they were not found in.
        let mut found: Vec<(u32, u32, usize)> =
            runs.iter().map(|&(_, y, h, i)| (y, h, i)).collect();
        found.sort_unstable();
        found.dedup();
        for (y, h, i) in found {
            for &sx in all.iter().filter(|sx| !indexed(**sx)) {
                // The stretches of the run's rows this strip holds too.
                let mut k = 0;
                while k < h {
                    let start = k;
                    while k < h && same_at(sx, i + k as usize, y + k) {
                        k += 1;
                    }
                    let n = k - start;
                    if n >= MIN_RECALL_ROWS
                        && !runs.contains(&(sx, y + start, n, i + start as usize))
                    {
                        runs.push((sx, y + start, n, i + start as usize));
                    }
                    k += 1;
                }
            }
        }
        runs.sort_by_key(|&(sx, y, h, i)| (y, h, i, sx));
        let mut out: Vec<(Rect, usize)> = Vec::new();
        for (sx, y, h, i) in runs {
            match out.last_mut() {
                Some((r, j)) if (r.y, r.h, *j) == (y, h, i) && r.x + r.w == sx => r.w += STRIP,
                _ => out.push((
                    Rect {
                        x: sx,
                        y,
                        w: STRIP,
                        h,
                    },
                    i,
                )),
            }
        }
        out.truncate(MAX_RECALLS);
        let len = self.attic.len();
        let ops: Vec<GlyphOp> = out
            .into_iter()
            .map(|(rect, i)| GlyphOp::Recall {
                back: (len - 1 - i) as u32,
                rect,
            })
            .collect();
        // Their index entries go stale, as those of rows dropped for room do.
        let mut places = self.attic.forget(&ops).into_iter().peekable();
        self.ids = std::mem::take(&mut self.ids)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| places.next_if_eq(i).is_none())
            .map(|(_, id)| id)
            .collect();
        ops
    }
}
