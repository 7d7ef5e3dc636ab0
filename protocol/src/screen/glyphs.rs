//! The glyph cache: small pieces of the screen already sent to a viewer are sent again as a
//! reference to the viewer's copy instead of as pixels.
//!
//! Text is made of a few hundred distinct glyphs (a character in a colour on a background)
//! repeated everywhere. Inside the lossless rectangles of a frame, gathered into clusters (and a
//! margin) so that neither the tile grid nor the edge of a change cuts text, and cut into runs
//! of rows that share a background (a web page's code block has its own), the encoder finds
//! glyph-like blobs: against the run's background colour, bands of rows with something drawn in
//! them, cut into runs of columns with something drawn in them, each trimmed to its own rows.
//! Underlines are blobs of their own, and in proportional text, letters that touch are cut where
//! a thin stroke meets a stem. A blob the viewer holds already becomes
//! a [`GlyphOp::Draw`] of its slot (and is painted as background in the pixel data, where it
//! then costs nothing); a new one is sent as pixels and followed by a [`GlyphOp::Store`] into a
//! slot. A keystroke is then a draw of the typed glyph and of the cursor.
//!
//! A region that holds nothing but glyphs on its background, nearly all of them known to the
//! viewer, is painted whole: one fill of the background, then a draw of every glyph in it
//! (changed or not), and only the few new glyphs as pixels. A page of text the viewer has seen
//! the characters of is then a list of draws, which reads like the text itself and compresses
//! as well.
//!
//! Columns drawn down a whole tall region (a window border, a scroll bar) are rules, not text,
//! and do not join every row into one band. In monospaced text, where anti-aliased glyphs of
//! neighbouring cells touch, the grid of character cells and of text lines (found from the
//! columns and rows that are blank far more often than the others at one pitch, over the whole
//! region, and assumed for regions too small to show whether they have one or whose lines fit
//! it) cuts runs and bands further, so that a blob is one character, which repeats, rather than
//! a word, which rarely does. A speck of anti-aliasing that bleeds over a cell boundary stays
//! with the glyph it bleeds from.
//!
//! The viewer is a slave of the encoder: it does what it is told, in order, and checks every
//! slot and rectangle first. Copies of regions that moved (see `scroll.rs`) and fills go in a
//! frame's first part and are applied before its pixels; stores and draws go in its last part
//! and are applied after them. The encoder verifies a hit byte for byte (the hash only finds the
//! candidate), so a hash collision cannot paint a wrong glyph.

use std::collections::HashMap;

use super::attic::{Attic, Pending};
use super::pack::pack_bgr;
use super::under::Under;
use super::wire::*;

/// Slots in a viewer's glyph cache.
pub const GLYPH_SLOTS: usize = 4096;
/// Widest cached blob; wider runs are cut into pieces this wide.
pub const MAX_GLYPH_W: u32 = 64;
/// Tallest cached blob; taller bands (pictures, not text) are not cached.
pub const MAX_GLYPH_H: u32 = 40;
/// Most a list of operations may paint, in screens: a screen each of copies, keeps and saves,
/// of recalls and restores, of fills and of the draws on them, with room to spare.
pub(super) const MAX_PAINTED_SCREENS: u64 = 8;
/// Most bytes of glyph operations in one frame, once decompressed.
pub const MAX_GLYPH_OPS_BYTES: usize = 1 << 20;
/// Smallest blob worth a slot of its own (a draw costs a few bytes); smaller ones (a full stop,
/// a speck of anti-aliasing) are cached only in regions painted whole, and only where they are
/// few: a dithered picture is not text.
const MIN_GLYPH_AREA: u64 = 6;
/// A region is painted whole only if at most one in this many of its blobs are specks.
const WHOLE_SPECKS: usize = 4;
/// A region of glyphs is painted whole (a fill and draws) when at most one in this many of its
/// glyphs is new to the viewer.
const WHOLE_MISSES: usize = 4;

/// What a viewer does with its glyph cache after a frame's pixels are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlyphOp {
    /// Copies `rect` of the framebuffer into `slot`, after the part's pixels.
    Store {
        /// The slot, below [`GLYPH_SLOTS`].
        slot: u16,
        /// At most [`MAX_GLYPH_W`] x [`MAX_GLYPH_H`].
        rect: Rect,
    },
    /// Paints `slot` with its top-left corner at (`x`, `y`), after the part's pixels.
    Draw {
        /// A slot stored before.
        slot: u16,
        /// Left.
        x: u32,
        /// Top.
        y: u32,
    },
    /// Paints `rect` in one colour (BGR), before the part's pixels: a changed rectangle or a
    /// region that holds nothing but cached glyphs on a background costs this and its draws.
    Fill {
        /// Where.
        rect: Rect,
        /// The colour.
        colour: [u8; 3],
    },
    /// Moves `src` of the framebuffer so that its top-left corner lands at (`x`, `y`): a
    /// scrolled region costs this and its newly exposed lines. Copies are applied before the
    /// part's pixels, in their order with the fills, each as if its source were read whole
    /// first.
    Copy {
        /// Where from.
        src: Rect,
        /// Left of the destination.
        x: u32,
        /// Top of the destination.
        y: u32,
    },
    /// Keeps the rows of `rect` in the viewer's attic (see `attic.rs`), top first, before the
    /// copies that push them out of view: the rows scrolled away. Keeps come before every
    /// recall of a list.
    Keep {
        /// Which rows and columns.
        rect: Rect,
    },
    /// Paints `rect` from the attic, before the part's pixels: its top row from the row kept
    /// `back` rows before the newest (0: the newest), the next from `back - 1`, and so on; each
    /// holds `rect`'s columns. Rows scrolled back into view cost this. The rows a list's recalls
    /// read leave the attic once the list is applied.
    Recall {
        /// How far back from the newest kept row the top row is.
        back: u32,
        /// Where.
        rect: Rect,
    },
    /// Saves `rect` of the framebuffer at its place in the viewer's picture of what lies under
    /// windows (see `under.rs`), before the copies and pixels that cover it: a window dragged
    /// or opened over still content.
    Save {
        /// Where.
        rect: Rect,
    },
    /// Paints `rect` from what was saved at the same place, before the part's pixels: a window
    /// moved or closed uncovers what it hid.
    Restore {
        /// Where.
        rect: Rect,
    },
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn corrupt(what: &str) -> CodecError {
    CodecError::Corrupt(format!("glyph operations: {what}"))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or_else(|| corrupt("truncated"))?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn signed(&mut self) -> Result<i64, CodecError> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn colour(&mut self) -> Result<[u8; 3], CodecError> {
        let (c, rest) = self
            .0
            .split_first_chunk()
            .ok_or_else(|| corrupt("truncated"))?;
        self.0 = rest;
        Ok(*c)
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.varint()?).map_err(|_| corrupt("number too large"))
    }
}

/// Operation kinds, in the low two bits of an operation's tag (a keep is a fill's kind with 1
/// above it, a recall a copy's; a save a fill's with 2, a restore a copy's).
const DRAW: u64 = 0;
const STORE: u64 = 1;
const FILL: u64 = 2;
const COPY: u64 = 3;
const KEEP: u64 = 1 << 2 | FILL;
const RECALL: u64 = 1 << 2 | COPY;
const SAVE: u64 = 2 << 2 | FILL;
const RESTORE: u64 = 2 << 2 | COPY;

/// Encodes operations for [`FrameUpdate::glyphs`]: a flag byte (0 plain, 1 zstd; the stream's
/// context compresses them, see [`super::StreamWriter`], so this writes 0), then per
/// operation a tag (the slot shifted left twice, plus the kind: 0 draw, 1 store, 2 fill, 3 copy),
/// the position (a copy's destination) as signed differences from the previous operation's, a
/// store's, a fill's, a copy's, a keep's, a recall's, a save's or a restore's width and height,
/// a fill's colour, a copy's source as signed offsets from its destination, and how far back a
/// recall reaches. A keep is tagged 6, a recall 7, a save 10 and a restore 11.
pub fn encode_ops(ops: &[GlyphOp]) -> Vec<u8> {
    if ops.is_empty() {
        return Vec::new();
    }
    let mut raw = Vec::with_capacity(ops.len() * 5 + 1);
    raw.push(0);
    let (mut lx, mut ly) = (0i64, 0i64);
    for op in ops {
        let (tag, x, y) = match *op {
            GlyphOp::Store { slot, rect } => (u64::from(slot) << 2 | STORE, rect.x, rect.y),
            GlyphOp::Draw { slot, x, y } => (u64::from(slot) << 2 | DRAW, x, y),
            GlyphOp::Fill { rect, .. } => (FILL, rect.x, rect.y),
            GlyphOp::Copy { x, y, .. } => (COPY, x, y),
            GlyphOp::Keep { rect } => (KEEP, rect.x, rect.y),
            GlyphOp::Recall { rect, .. } => (RECALL, rect.x, rect.y),
            GlyphOp::Save { rect } => (SAVE, rect.x, rect.y),
            GlyphOp::Restore { rect } => (RESTORE, rect.x, rect.y),
        };
        put_varint(&mut raw, tag);
        put_signed(&mut raw, i64::from(x) - lx);
        put_signed(&mut raw, i64::from(y) - ly);
        (lx, ly) = (i64::from(x), i64::from(y));
        match op {
            GlyphOp::Store { rect, .. }
            | GlyphOp::Keep { rect }
            | GlyphOp::Save { rect }
            | GlyphOp::Restore { rect } => {
                put_varint(&mut raw, u64::from(rect.w));
                put_varint(&mut raw, u64::from(rect.h));
            }
            GlyphOp::Recall { back, rect } => {
                put_varint(&mut raw, u64::from(rect.w));
                put_varint(&mut raw, u64::from(rect.h));
                put_varint(&mut raw, u64::from(*back));
            }
            GlyphOp::Fill { rect, colour } => {
                put_varint(&mut raw, u64::from(rect.w));
                put_varint(&mut raw, u64::from(rect.h));
                raw.extend_from_slice(colour);
            }
            GlyphOp::Copy { src, x, y } => {
                put_varint(&mut raw, u64::from(src.w));
                put_varint(&mut raw, u64::from(src.h));
                put_signed(&mut raw, i64::from(src.x) - i64::from(*x));
                put_signed(&mut raw, i64::from(src.y) - i64::from(*y));
            }
            GlyphOp::Draw { .. } => {}
        }
    }
    raw
}

/// Decodes [`encode_ops`]' output; refuses more than [`MAX_GLYPH_OPS_BYTES`] once
/// decompressed, slots out of range and positions that do not fit in 32 bits.
pub fn decode_ops(data: &[u8]) -> Result<Vec<GlyphOp>, CodecError> {
    let Some((&flag, body)) = data.split_first() else {
        return Ok(Vec::new());
    };
    let unpacked;
    let raw = match flag {
        0 if body.len() <= MAX_GLYPH_OPS_BYTES => body,
        0 => return Err(corrupt("too long")),
        1 => {
            unpacked = zstd::bulk::decompress(body, MAX_GLYPH_OPS_BYTES)
                .map_err(|e| corrupt(&e.to_string()))?;
            &unpacked[..]
        }
        _ => return Err(corrupt("unknown flag")),
    };
    let mut r = Reader(raw);
    let mut ops = Vec::new();
    let (mut lx, mut ly) = (0i64, 0i64);
    while !r.0.is_empty() {
        let tag = r.varint()?;
        let slot = u16::try_from(tag >> 2)
            .ok()
            .filter(|s| usize::from(*s) < GLYPH_SLOTS)
            .ok_or_else(|| corrupt("slot out of range"))?;
        let x = lx.checked_add(r.signed()?).ok_or_else(|| corrupt("x"))?;
        let y = ly.checked_add(r.signed()?).ok_or_else(|| corrupt("y"))?;
        let (xu, yu) = (
            u32::try_from(x).map_err(|_| corrupt("x"))?,
            u32::try_from(y).map_err(|_| corrupt("y"))?,
        );
        (lx, ly) = (x, y);
        ops.push(match tag & 3 {
            _ if tag == KEEP => {
                let (w, h) = (r.u32()?, r.u32()?);
                GlyphOp::Keep {
                    rect: Rect { x: xu, y: yu, w, h },
                }
            }
            _ if tag == SAVE => {
                let (w, h) = (r.u32()?, r.u32()?);
                GlyphOp::Save {
                    rect: Rect { x: xu, y: yu, w, h },
                }
            }
            _ if tag == RESTORE => {
                let (w, h) = (r.u32()?, r.u32()?);
                GlyphOp::Restore {
                    rect: Rect { x: xu, y: yu, w, h },
                }
            }
            _ if tag == RECALL => {
                let (w, h, back) = (r.u32()?, r.u32()?, r.u32()?);
                GlyphOp::Recall {
                    back,
                    rect: Rect { x: xu, y: yu, w, h },
                }
            }
            DRAW => GlyphOp::Draw { slot, x: xu, y: yu },
            STORE => {
                let (w, h) = (r.u32()?, r.u32()?);
                GlyphOp::Store {
                    slot,
                    rect: Rect { x: xu, y: yu, w, h },
                }
            }
            FILL if slot == 0 => {
                let (w, h) = (r.u32()?, r.u32()?);
                let colour = r.colour()?;
                GlyphOp::Fill {
                    rect: Rect { x: xu, y: yu, w, h },
                    colour,
                }
            }
            COPY if slot == 0 => {
                let (w, h) = (r.u32()?, r.u32()?);
                let sx = x.checked_add(r.signed()?).ok_or_else(|| corrupt("x"))?;
                let sy = y.checked_add(r.signed()?).ok_or_else(|| corrupt("y"))?;
                GlyphOp::Copy {
                    src: Rect {
                        x: u32::try_from(sx).map_err(|_| corrupt("x"))?,
                        y: u32::try_from(sy).map_err(|_| corrupt("y"))?,
                        w,
                        h,
                    },
                    x: xu,
                    y: yu,
                }
            }
            _ => return Err(corrupt("unknown operation")),
        });
    }
    Ok(ops)
}

/// One cached blob on the encoder's side: its hash and its exact BGR pixels.
#[derive(Debug, Clone)]
struct Entry {
    hash: u64,
    w: u32,
    h: u32,
    bgr: Vec<u8>,
    /// Drawn since the clock hand last passed (second chance before eviction).
    used: bool,
}

/// The encoder's mirror of one viewer's glyph cache.
#[derive(Debug)]
pub(super) struct GlyphCache {
    index: HashMap<u64, u16>,
    cell: Option<(u32, u32)>,
    slots: Vec<Option<Entry>>,
    hand: usize,
}

impl Default for GlyphCache {
    fn default() -> Self {
        GlyphCache {
            index: HashMap::new(),
            cell: None,
            slots: vec![None; GLYPH_SLOTS],
            hand: 0,
        }
    }
}

/// What the glyph pass found in a frame: the operations and the blobs the viewer already holds
/// (to paint as background in the pixel data).
#[derive(Debug, Default)]
pub(super) struct GlyphPass {
    pub(super) ops: Vec<GlyphOp>,
    pub(super) hits: Vec<(Rect, [u8; 3])>,
    /// Fills of whole regions, which the viewer paints before the frame's pixels.
    pub(super) fills: Vec<GlyphOp>,
    /// Regions painted whole by `fills`, the draws and `pixels`: none of the changed pixels
    /// there are sent otherwise.
    pub(super) covered: Vec<Rect>,
    /// Glyphs in `covered` regions the viewer does not hold, sent as pixels and stored.
    pub(super) pixels: Vec<Rect>,
}

impl GlyphCache {
    /// Forgets everything (the viewer's slots are then never drawn before being stored again).
    pub(super) fn clear(&mut self) {
        *self = GlyphCache::default();
    }

    /// Finds the blobs of `regions` (pairs of a region and the larger one it is looked at in,
    /// both inside `frame`) that touch `changed`, and decides for each whether it is drawn from
    /// the cache or stored. A blob is stored only if `exact` says the viewer will hold it
    /// exactly once the frame is applied. Blobs are looked for in the larger region, so that a
    /// glyph the region's edge crosses is found whole, but only those that reach into the region
    /// are drawn, and only the region is ever painted whole.
    pub(super) fn pass(
        &mut self,
        frame: &FrameRef<'_>,
        regions: &[(Rect, Rect)],
        changed: &[Rect],
        exact: impl Fn(&Rect) -> bool,
    ) -> GlyphPass {
        let mut out = GlyphPass::default();
        let parts: Vec<(Rect, Rect, [u8; 3])> = regions
            .iter()
            .flat_map(|(core, look)| {
                backgrounds(frame, look)
                    .into_iter()
                    .filter_map(|(run, bg)| run.intersect(core).map(|region| (region, run, bg)))
            })
            .collect();
        for &(ref region, ref run, bg) in &parts {
            let (mut blobs, complete) = blobs(frame, run, bg, &mut self.cell);
            blobs.retain(|b| b.intersect(region).is_some());
            // A region that is nothing but glyphs on one background, nearly all of them held by
            // the viewer, is a fill and the draws of all its glyphs, changed or not: its pixels
            // cost nothing, and the glyphs read as the text they are. Otherwise only the glyphs
            // that touch a change are drawn, and those not held are stored (unchanged ones too
            // while the region could be whole: the viewer has their pixels already).
            let specks = blobs.iter().filter(|b| b.area() < MIN_GLYPH_AREA).count();
            let whole_ok = complete && specks * WHOLE_SPECKS <= blobs.len() && exact(region);
            let touches = |b: &Rect| {
                b.area() >= MIN_GLYPH_AREA && changed.iter().any(|c| c.intersect(b).is_some())
            };
            let slots: Vec<Option<u16>> = blobs
                .iter()
                .map(|b| {
                    if whole_ok || touches(b) {
                        self.lookup(frame, b)
                    } else {
                        None
                    }
                })
                .collect();
            // A blob at the edge of where it was looked for may be a glyph cut in two (by the
            // screen's edge, or the margin's): it goes as pixels and takes no slot.
            let cut = |b: &Rect| {
                b.x == run.x
                    || b.y == run.y
                    || b.x + b.w == run.x + run.w
                    || b.y + b.h == run.y + run.h
            };
            let cuts = blobs.iter().filter(|b| cut(b)).count();
            let misses = blobs
                .iter()
                .zip(&slots)
                .filter(|(b, s)| s.is_none() && !cut(b))
                .count();
            // At most a quarter of the glyphs new, and a quarter cut.
            let whole = whole_ok
                && misses * WHOLE_MISSES <= blobs.len() - cuts
                && cuts * WHOLE_MISSES <= blobs.len();
            if whole {
                out.fills.push(GlyphOp::Fill {
                    rect: *region,
                    colour: bg,
                });
                out.covered.push(*region);
            }
            // Every draw goes before any store: a store may take the slot of a glyph drawn
            // later in the region, and the viewer applies operations in order.
            for (blob, slot) in blobs.iter().zip(&slots) {
                if let Some(slot) = slot
                    && (whole || touches(blob))
                {
                    self.draw(*slot, blob, &mut out.ops);
                    if !whole {
                        out.hits.push((*blob, bg));
                    }
                }
            }
            for (blob, slot) in blobs.iter().zip(&slots) {
                let wanted = whole || touches(blob) || whole_ok && blob.area() >= MIN_GLYPH_AREA;
                if slot.is_some() || !wanted {
                    continue;
                }
                // In a region painted whole, a glyph not drawn goes as pixels, whether or not
                // it can be stored (it may be cut, or reach into a tile the viewer holds lossy).
                if whole {
                    // New glyphs side by side (a new word) go as one rectangle of pixels.
                    match out.pixels.last_mut() {
                        Some(last)
                            if last.x + last.w + NEAR_PIXELS >= blob.x
                                && last.x <= blob.x
                                && last.y < blob.y + blob.h
                                && blob.y < last.y + last.h =>
                        {
                            *last = last.union(blob);
                        }
                        _ => out.pixels.push(*blob),
                    }
                }
                if !cut(blob) && exact(blob) {
                    let slot = self.store(frame, blob);
                    out.ops.push(GlyphOp::Store { slot, rect: *blob });
                }
            }
        }
        out
    }

    /// Takes a slot for `blob`'s pixels, which the viewer will hold once the frame is applied.
    fn store(&mut self, frame: &FrameRef<'_>, blob: &Rect) -> u16 {
        let hash = hash_blob(frame, blob);
        let slot = self.evict();
        self.index.insert(hash, slot);
        self.slots[usize::from(slot)] = Some(Entry {
            hash,
            w: blob.w,
            h: blob.h,
            bgr: bgr_of(frame, blob),
            used: false,
        });
        slot
    }

    /// The slot that holds exactly the pixels of `blob`, if any.
    fn lookup(&self, frame: &FrameRef<'_>, blob: &Rect) -> Option<u16> {
        let slot = *self.index.get(&hash_blob(frame, blob))?;
        let e = self.slots[usize::from(slot)].as_ref()?;
        (e.w == blob.w && e.h == blob.h && same_pixels(frame, blob, &e.bgr)).then_some(slot)
    }

    /// Draws `slot` at `blob`'s place, and marks it used.
    fn draw(&mut self, slot: u16, blob: &Rect, ops: &mut Vec<GlyphOp>) {
        if let Some(e) = self.slots[usize::from(slot)].as_mut() {
            e.used = true;
        }
        ops.push(GlyphOp::Draw {
            slot,
            x: blob.x,
            y: blob.y,
        });
    }

    /// Frees a slot, giving recently drawn ones a second chance, and returns it.
    fn evict(&mut self) -> u16 {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % GLYPH_SLOTS;
            match &mut self.slots[i] {
                Some(e) if e.used => e.used = false,
                slot => {
                    if let Some(old) = slot.take()
                        && self.index.get(&old.hash) == Some(&(i as u16))
                    {
                        self.index.remove(&old.hash);
                    }
                    return i as u16;
                }
            }
        }
    }
}

/// Rows of region `r` sampled for their background.
const ROW_SAMPLES: u32 = 128;
/// Runs of rows shorter than this between two of one background are part of it (a row of bold
/// text, a thin rule in text); others are not looked at for text.
const MIN_RUN: u32 = 4;

/// Region `r` cut into runs of rows that share a background: the most common colour of each of
/// their rows, if it is at least a quarter of it. A page's code blocks, bars and table rows
/// have their own background, against which their text is glyphs; rows with none (a picture)
/// are left out.
fn backgrounds(frame: &FrameRef<'_>, r: &Rect) -> Vec<(Rect, [u8; 3])> {
    let step = (r.w / ROW_SAMPLES).max(1);
    let samples = r.w.div_ceil(step);
    let mut runs: Vec<(u32, u32, Option<[u8; 3]>)> = Vec::new();
    let mut counts: Vec<([u8; 3], u32)> = Vec::with_capacity(16);
    for y in r.y..r.y + r.h {
        counts.clear();
        let row = frame.row(y, r.x, r.x + r.w);
        for p in row.chunks_exact(4 * step as usize) {
            let c = [p[0], p[1], p[2]];
            if let Some((_, n)) = counts.iter_mut().find(|(k, _)| *k == c) {
                *n += 1;
            } else if counts.len() < 16 {
                counts.push((c, 1));
            }
        }
        let bg = counts
            .iter()
            .max_by_key(|(_, n)| *n)
            .filter(|(_, n)| *n * 4 >= samples)
            .map(|(c, _)| *c);
        match runs.last_mut() {
            Some((_, h, last)) if *last == bg => *h += 1,
            _ => runs.push((y, 1, bg)),
        }
    }
    // A short run between two of one background joins them.
    let mut merged: Vec<(u32, u32, Option<[u8; 3]>)> = Vec::with_capacity(runs.len());
    let mut i = 0;
    while i < runs.len() {
        let (y, mut h, bg) = runs[i];
        i += 1;
        while i + 1 < runs.len() && runs[i].1 < MIN_RUN && runs[i + 1].2 == bg && bg.is_some() {
            h += runs[i].1 + runs[i + 1].1;
            i += 2;
        }
        merged.push((y, h, bg));
    }
    // Shorter runs are rules and gaps between lines (or the rows of a dither), not text.
    merged
        .into_iter()
        .filter(|(_, h, _)| *h >= MIN_RUN)
        .filter_map(|(y, h, bg)| {
            let run = Rect {
                x: r.x,
                y,
                w: r.w,
                h,
            };
            let bg = bg?;
            Some((trim_rules(frame, run, bg), bg))
        })
        .collect()
}

/// `run` without the columns at its sides drawn in one colour other than `bg` from its top to
/// its bottom (a border beside the text), which would make its glyphs incomplete.
fn trim_rules(frame: &FrameRef<'_>, mut run: Rect, bg: [u8; 3]) -> Rect {
    let rule = |x: u32| {
        let top = &frame.row(run.y, x, x + 1)[..3];
        !is_bg(top, bg) && (run.y..run.y + run.h).all(|y| frame.row(y, x, x + 1)[..3] == *top)
    };
    while run.w > 1 && rule(run.x) {
        run.x += 1;
        run.w -= 1;
    }
    while run.w > 1 && rule(run.x + run.w - 1) {
        run.w -= 1;
    }
    run
}

fn is_bg(p: &[u8], bg: [u8; 3]) -> bool {
    p[0] == bg[0] && p[1] == bg[1] && p[2] == bg[2]
}

/// The glyph-like blobs of region `r` against background `bg` (see the module's documentation),
/// in reading order.
fn blobs(
    frame: &FrameRef<'_>,
    r: &Rect,
    bg: [u8; 3],
    known: &mut Option<(u32, u32)>,
) -> (Vec<Rect>, bool) {
    let (w, h) = (r.w as usize, r.h as usize);
    // Which pixels are not background, row by row: read once.
    let mut ink = Vec::with_capacity(w * h);
    for y in r.y..r.y + r.h {
        ink.extend(
            frame
                .row(y, r.x, r.x + r.w)
                .chunks_exact(4)
                .map(|p| !is_bg(p, bg)),
        );
    }
    // Columns drawn from top to bottom of a tall region (a window's border, a scroll bar, a
    // split line) are rules, not text: they would join every row into one band.
    let mut ink_rows = vec![0u32; w];
    for row in ink.chunks_exact(w) {
        for (n, i) in ink_rows.iter_mut().zip(row) {
            *n += u32::from(*i);
        }
    }
    let tall = r.h >= 2 * MAX_GLYPH_H;
    let rule: Vec<bool> = ink_rows
        .iter()
        .map(|n| tall && *n * 10 >= r.h * 9)
        .collect();
    let mut complete = !rule.contains(&true);
    if !complete {
        for row in ink.chunks_exact_mut(w) {
            for (i, rule) in row.iter_mut().zip(&rule) {
                *i &= !rule;
            }
        }
    }
    let rules_under = underlines(&mut ink, r);
    let inked: Vec<bool> = ink.chunks_exact(w).map(|row| row.contains(&true)).collect();
    // Lines of text whose glyphs reach into each other's rows (descenders, brackets, bars)
    // make one band of many lines: the grid of text lines cuts them, as the character grid
    // cuts words.
    let line = grid(&[&inked], MAX_GLYPH_H)
        .cells()
        .map(|(pitch, phase)| (pitch, (r.y + phase) % pitch));
    let boundary = |y: u32| line.is_some_and(|(pitch, phase)| (r.y + y) % pitch == phase);
    let mut bands = Vec::new();
    let mut y = 0;
    while y < r.h {
        if !inked[y as usize] {
            y += 1;
            continue;
        }
        let top = y;
        while y < r.h && inked[y as usize] {
            y += 1;
            if boundary(y) {
                break;
            }
        }
        complete &= y - top <= MAX_GLYPH_H;
        if y - top <= MAX_GLYPH_H {
            let mut cols = vec![false; w];
            for row in ink[top as usize * w..y as usize * w].chunks_exact(w) {
                for (c, i) in cols.iter_mut().zip(row) {
                    *c |= *i;
                }
            }
            bands.push((top, y, cols));
        }
    }
    // The character grid of the region's text as a whole (a terminal's lines share one), or
    // where there is too little text to tell, that of each line, or failing that the grid last
    // found. Proportional text has none, and cells would cut its glyphs.
    let lines: Vec<&[bool]> = bands.iter().map(|(_, _, c)| c.as_slice()).collect();
    let at = |(pitch, phase): (u32, u32)| (pitch, (r.x + phase) % pitch);
    // A grid too faint to be found in a few short lines may still be the one found before; a
    // line of proportional text may look regular by chance, but not like that grid.
    let before = *known;
    let known_fits =
        |lines: &[&[bool]]| before.filter(|&(p, abs)| fits(lines, p, (abs + p - r.x % p) % p));
    let found = |lines: &[&[bool]], grid: Grid| match grid {
        Grid::Cells(pitch, phase) => Some(at((pitch, phase))),
        Grid::Proportional => known_fits(lines),
        Grid::Unknown => before,
    };
    let region_grid = grid(&lines, MAX_PITCH);
    let region_cell = found(&lines, region_grid);
    match region_grid {
        Grid::Cells(..) => *known = region_cell,
        // Enough text that the grid found before does not fit is other text (another window,
        // or a grid found by chance in proportional text): the grid is forgotten, so that the
        // few glyphs of a keystroke here are not cut at it.
        Grid::Proportional if region_cell.is_none() => *known = None,
        Grid::Proportional | Grid::Unknown => {}
    }
    let mut out = Vec::new();
    for (y0, y1, cols) in &bands {
        let cell = match region_grid {
            Grid::Cells(..) | Grid::Proportional => region_cell,
            Grid::Unknown => found(&[cols], grid(&[cols], MAX_PITCH)),
        };
        band_blobs(r, &ink, (*y0, *y1), cols, cell, &mut out);
    }
    out.extend(rules_under);
    (out, complete)
}

/// A run of proportional text is cut where a column with at most this many inked rows is
/// followed by one with [`VALLEY_RISE`] more, at least [`MIN_CUT_W`] columns into the run.
const VALLEY: u32 = 2;
const VALLEY_RISE: u32 = 2;
const MIN_CUT_W: u32 = 3;

/// New glyphs at most this far apart in a region painted whole go as one rectangle of pixels.
const NEAR_PIXELS: u32 = 8;

/// Shortest underline looked for: longer than a glyph's stroke.
const MIN_UNDERLINE: usize = 16;

/// Takes the underlines out of `ink` (of region `r`) and returns them as blobs of one row, cut
/// every [`MAX_GLYPH_W`]: runs of at least [`MIN_UNDERLINE`] inked pixels in a row, with at
/// most a fifth of the pixels above and below them inked. An underline joins the letters of a
/// link into one blob that never repeats; without it they are the glyphs they are everywhere.
fn underlines(ink: &mut [bool], r: &Rect) -> Vec<Rect> {
    let w = r.w as usize;
    let mut out = Vec::new();
    for y in 1..(r.h as usize).saturating_sub(1) {
        let mut x = 0;
        while x < w {
            if !ink[y * w + x] {
                x += 1;
                continue;
            }
            let x0 = x;
            while x < w && ink[y * w + x] {
                x += 1;
            }
            let len = x - x0;
            let inked = |row: usize| {
                ink[row * w + x0..row * w + x]
                    .iter()
                    .filter(|i| **i)
                    .count()
            };
            if len < MIN_UNDERLINE || inked(y - 1) * 5 > len || inked(y + 1) * 5 > len {
                continue;
            }
            ink[y * w + x0..y * w + x].fill(false);
            let mut left = x0 as u32;
            while left < x as u32 {
                let piece = MAX_GLYPH_W.min(x as u32 - left);
                out.push(Rect {
                    x: r.x + left,
                    y: r.y + y as u32,
                    w: piece,
                    h: 1,
                });
                left += piece;
            }
        }
    }
    out
}

/// Boundary columns of a grid over which a looser test finds it (see [`grid`]): a few lines of
/// proportional text may look regular by chance, many may not.
const MANY_BOUNDARIES: usize = 24;
/// Character cells narrower or lower than this are not looked for.
const MIN_PITCH: u32 = 5;
/// Character cells wider than this are not looked for.
const MAX_PITCH: u32 = 24;

/// What the columns of some lines of text say of their character grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grid {
    /// Monospaced: the columns at `x` with `x % pitch == phase` (in the lines' coordinates)
    /// fall between characters.
    Cells(u32, u32),
    /// Enough text and no grid: proportional text, or no text.
    Proportional,
    /// Too little text, or too sparse, to tell.
    Unknown,
}

impl Grid {
    fn cells(self) -> Option<(u32, u32)> {
        match self {
            Grid::Cells(pitch, phase) => Some((pitch, phase)),
            Grid::Proportional | Grid::Unknown => None,
        }
    }
}

/// The character grid of lines of monospaced text. Anti-aliased glyphs of neighbouring cells
/// often touch, so runs of inked columns are whole words; the grid cuts them into characters,
/// which repeat. Found as the smallest pitch whose boundary columns are blank far more often
/// than the others in the lines' inked extents (proportional text has none).
fn grid(lines: &[&[bool]], max_pitch: u32) -> Grid {
    let spans = spans(lines);
    let len: usize = spans.iter().map(|(_, s)| s.len()).sum();
    // Too short a line says nothing about its pitch.
    if len < 6 * max_pitch as usize {
        return Grid::Unknown;
    }
    // Runs wider than a character are what the grid is for.
    let inked_cols: usize = spans
        .iter()
        .map(|(_, s)| s.iter().filter(|i| **i).count())
        .sum();
    if inked_cols * 2 < len {
        return Grid::Unknown;
    }
    // Per phase of a pitch: boundary columns, and how many of them are blank.
    let mut counts = vec![(0usize, 0usize); max_pitch as usize];
    for pitch in MIN_PITCH..=max_pitch {
        let counts = &mut counts[..pitch as usize];
        phase_counts(&spans, counts);
        // The boundary columns are blank far more often than the others: most of the time,
        // and at least 1.6 times as often as a column of the pitch on average. Bold text
        // touches across half its boundaries, but over many of them they stand out more.
        if let Some((phase, _)) = counts.iter().enumerate().max_by_key(|(_, c)| {
            // Compares blank / total across phases without dividing.
            c.1 * 1_000_000 / c.0.max(1)
        }) && (boundary_blank(counts, phase, 6, 16)
            || counts[phase].0 >= MANY_BOUNDARIES && boundary_blank(counts, phase, 4, 30))
        {
            return Grid::Cells(pitch, phase as u32);
        }
    }
    Grid::Proportional
}

/// Whether a grid found elsewhere, (`pitch`, `phase`) in the lines' coordinates, is that of
/// these lines too: its boundary columns are blank 40 % of the time and 1.5 times as often as
/// a column on average (dense text touches more; a looser test than finding a grid, which tries
/// every pitch and phase).
fn fits(lines: &[&[bool]], pitch: u32, phase: u32) -> bool {
    let mut counts = vec![(0usize, 0usize); pitch as usize];
    phase_counts(&spans(lines), &mut counts);
    boundary_blank(&counts, phase as usize, 4, 15)
}

/// Each line's inked extent, as (offset, columns).
fn spans<'a>(lines: &[&'a [bool]]) -> Vec<(usize, &'a [bool])> {
    lines
        .iter()
        .filter_map(|inked| {
            let first = inked.iter().position(|i| *i)?;
            let last = inked.iter().rposition(|i| *i)?;
            Some((first, &inked[first..=last]))
        })
        .collect()
}

/// Per phase of the pitch `counts.len()`: the columns of `spans` at that phase, and how many
/// of them are blank.
fn phase_counts(spans: &[(usize, &[bool])], counts: &mut [(usize, usize)]) {
    let pitch = counts.len();
    counts.fill((0, 0));
    for (first, span) in spans {
        let mut phase = first % pitch;
        for ink in span.iter() {
            let c = &mut counts[phase];
            c.0 += 1;
            c.1 += usize::from(!*ink);
            phase += 1;
            if phase == pitch {
                phase = 0;
            }
        }
    }
}

/// Whether the columns at `phase` are blank at least `least` tenths of the time, and `times`
/// tenths as often as all columns.
fn boundary_blank(counts: &[(usize, usize)], phase: usize, least: usize, times: usize) -> bool {
    let (total, blank) = counts
        .iter()
        .fold((0, 0), |(t, b), &(ct, cb)| (t + ct, b + cb));
    let (n, b) = counts[phase];
    n >= 6 && b * 10 >= n * least && b * total * 10 >= blank * n * times
}

/// Cuts the band of rows `y0..y1` of region `r` into runs of inked columns, each at most
/// [`MAX_GLYPH_W`] wide (and, in monospaced text, one character cell), trimmed to its own inked
/// rows.
fn band_blobs(
    r: &Rect,
    ink: &[bool],
    (y0, y1): (u32, u32),
    inked: &[bool],
    cell: Option<(u32, u32)>,
    out: &mut Vec<Rect>,
) {
    let w = r.w as usize;
    // Inked rows per column, for proportional text: where a thin stroke (the arm of an `r`)
    // runs into the stem of the next letter, the letters are cut apart, so that `rk` and `re`
    // are the `r`, `k` and `e` found everywhere else.
    let depth: Vec<u32> = match cell {
        Some(_) => Vec::new(),
        None => (0..w)
            .map(|x| (y0..y1).filter(|&y| ink[y as usize * w + x]).count() as u32)
            .collect(),
    };
    let boundary = |left: u32, x: u32| match cell {
        Some((pitch, phase)) => (r.x + x) % pitch == phase,
        None => {
            x - left >= MIN_CUT_W
                && (x as usize) < w
                && depth[x as usize - 1] <= VALLEY
                && depth[x as usize] >= depth[x as usize - 1] + VALLEY_RISE
        }
    };
    let mut x = 0u32;
    while x < r.w {
        if !inked[x as usize] {
            x += 1;
            continue;
        }
        let left = x;
        while x < r.w && inked[x as usize] && x - left < MAX_GLYPH_W {
            x += 1;
            if boundary(left, x) {
                break;
            }
        }
        let mut rows = (y0..y1).filter(|&y| {
            let o = y as usize * w;
            ink[o + left as usize..o + x as usize].contains(&true)
        });
        let Some(top) = rows.next() else { continue };
        let bottom = rows.next_back().unwrap_or(top);
        let blob = Rect {
            x: r.x + left,
            y: r.y + top,
            w: x - left,
            h: bottom - top + 1,
        };
        // A speck of anti-aliasing that bleeds over a cell boundary belongs to the glyph it
        // bleeds from, at most a column away.
        let touching = out.last_mut().filter(|p| {
            (blob.x.saturating_sub(1)..=blob.x).contains(&(p.x + p.w))
                && blob.x + blob.w - p.x <= MAX_GLYPH_W
                && p.y < blob.y + blob.h
                && blob.y < p.y + p.h
                && p.y >= r.y + y0
        });
        match touching {
            Some(prev) if blob.area() < MIN_GLYPH_AREA => *prev = prev.union(&blob),
            _ => out.push(blob),
        }
    }
}

fn hash_blob(frame: &FrameRef<'_>, r: &Rect) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (u64::from(r.w) << 32 | u64::from(r.h)).wrapping_mul(K);
    for y in r.y..r.y + r.h {
        for p in frame.row(y, r.x, r.x + r.w).chunks_exact(4) {
            let v = u64::from(p[0]) | u64::from(p[1]) << 8 | u64::from(p[2]) << 16;
            h = (h.rotate_left(23) ^ v).wrapping_mul(K);
        }
    }
    h ^ h >> 29
}

fn same_pixels(frame: &FrameRef<'_>, r: &Rect, bgr: &[u8]) -> bool {
    let mut it = bgr.chunks_exact(3);
    (r.y..r.y + r.h).all(|y| {
        frame
            .row(y, r.x, r.x + r.w)
            .chunks_exact(4)
            .all(|p| it.next() == Some(&p[..3]))
    })
}

fn bgr_of(frame: &FrameRef<'_>, r: &Rect) -> Vec<u8> {
    let mut v = Vec::with_capacity(r.area() as usize * 3);
    pack_bgr(frame, r, &mut v);
    v
}

/// The viewer's glyph cache: BGRX pixels per slot.
#[derive(Debug, Clone, Default)]
pub(super) struct GlyphSlots {
    slots: Vec<Option<(u32, u32, Vec<u8>)>>,
}

impl GlyphSlots {
    /// Empties every slot.
    pub(super) fn clear(&mut self) {
        self.slots.clear();
    }

    /// Checks `ops` against a `width` x `height` framebuffer, this cache and `attic`, without
    /// changing anything: every rectangle inside, every store small enough, every draw of a slot
    /// stored (before, or earlier in `ops`), every recall of rows the attic will hold, and no more
    /// painting than [`MAX_PAINTED_SCREENS`] times the screen.
    pub(super) fn check(
        &self,
        ops: &[GlyphOp],
        width: u32,
        height: u32,
        attic: &Attic,
    ) -> Result<(), CodecError> {
        let pending = Pending::new(attic, ops)?;
        let mut sizes: Vec<Option<(u32, u32)>> = (0..GLYPH_SLOTS)
            .map(|i| {
                self.slots
                    .get(i)
                    .and_then(|s| s.as_ref().map(|s| (s.0, s.1)))
            })
            .collect();
        let inside = |r: &Rect| {
            r.w > 0
                && r.h > 0
                && u64::from(r.x) + u64::from(r.w) <= u64::from(width)
                && u64::from(r.y) + u64::from(r.h) <= u64::from(height)
        };
        let mut area = 0u64;
        for op in ops {
            match *op {
                GlyphOp::Store { slot, rect } => {
                    if rect.w > MAX_GLYPH_W || rect.h > MAX_GLYPH_H || !inside(&rect) {
                        return Err(CodecError::OutOfBounds(rect));
                    }
                    sizes[usize::from(slot)] = Some((rect.w, rect.h));
                }
                GlyphOp::Draw { slot, x, y } => {
                    let (w, h) =
                        sizes[usize::from(slot)].ok_or_else(|| corrupt("draws an empty slot"))?;
                    let r = Rect { x, y, w, h };
                    if !inside(&r) {
                        return Err(CodecError::OutOfBounds(r));
                    }
                    area += r.area();
                }
                GlyphOp::Fill { rect, .. } => {
                    if !inside(&rect) {
                        return Err(CodecError::OutOfBounds(rect));
                    }
                    area += rect.area();
                }
                GlyphOp::Copy { src, x, y } => {
                    let to = Rect { x, y, ..src };
                    for r in [src, to] {
                        if !inside(&r) {
                            return Err(CodecError::OutOfBounds(r));
                        }
                    }
                    area += src.area();
                }
                GlyphOp::Keep { rect } | GlyphOp::Save { rect } | GlyphOp::Restore { rect } => {
                    if !inside(&rect) {
                        return Err(CodecError::OutOfBounds(rect));
                    }
                    area += rect.area();
                }
                GlyphOp::Recall { back, rect } => {
                    if !inside(&rect) {
                        return Err(CodecError::OutOfBounds(rect));
                    }
                    pending.recall(back, &rect)?;
                    area += rect.area();
                }
            }
        }
        if area > u64::from(width) * u64::from(height) * MAX_PAINTED_SCREENS {
            return Err(corrupt(
                "draws, fills, copies, keeps, recalls, saves and restores cover more than eight \
                 times the screen",
            ));
        }
        Ok(())
    }

    /// Applies the checked keeps, copies, recalls, saves, restores and fills among `ops`, in
    /// their order, to `pixels` (BGRX, `width` pixels a row), `attic` and `under`, adding what
    /// they paint to `painted`. The viewer does this before a part's pixels.
    pub(super) fn apply_before(
        ops: &[GlyphOp],
        pixels: &mut [u8],
        width: u32,
        attic: &mut Attic,
        under: &mut Under,
        painted: &mut Vec<Rect>,
    ) {
        let pitch = width as usize * 4;
        for op in ops {
            match *op {
                GlyphOp::Save { rect } => under.save(pixels, width, &rect),
                GlyphOp::Restore { rect } => {
                    under.restore(pixels, width, &rect);
                    painted.push(rect);
                }
                GlyphOp::Keep { rect } => {
                    attic.keep(pixels, width, &rect);
                }
                GlyphOp::Recall { back, rect } => {
                    attic.recall(back, &rect, pixels, width);
                    painted.push(rect);
                }
                GlyphOp::Copy { src, x, y } => {
                    copy_rect(pixels, width, &src, x, y);
                    painted.push(Rect { x, y, ..src });
                }
                GlyphOp::Fill { rect, colour } => {
                    painted.push(rect);
                    let c = [colour[0], colour[1], colour[2], 0];
                    for y in rect.y..rect.y + rect.h {
                        let o = y as usize * pitch + rect.x as usize * 4;
                        for p in pixels[o..o + rect.w as usize * 4].chunks_exact_mut(4) {
                            p.copy_from_slice(&c);
                        }
                    }
                }
                GlyphOp::Store { .. } | GlyphOp::Draw { .. } => {}
            }
        }
        // Rows recalled are in view again: kept again if they leave it.
        attic.forget(ops);
    }

    /// Applies the checked stores and draws among `ops` to `pixels` (BGRX, `width` pixels a row),
    /// adding what the fills and draws paint to `painted`.
    pub(super) fn apply(
        &mut self,
        ops: &[GlyphOp],
        pixels: &mut [u8],
        width: u32,
        painted: &mut Vec<Rect>,
    ) {
        if self.slots.is_empty() {
            self.slots = vec![None; GLYPH_SLOTS];
        }
        let pitch = width as usize * 4;
        for op in ops {
            match *op {
                GlyphOp::Store { slot, rect } => {
                    let mut px = Vec::with_capacity(rect.area() as usize * 4);
                    for y in rect.y..rect.y + rect.h {
                        let o = y as usize * pitch + rect.x as usize * 4;
                        px.extend_from_slice(&pixels[o..o + rect.w as usize * 4]);
                    }
                    self.slots[usize::from(slot)] = Some((rect.w, rect.h, px));
                }
                GlyphOp::Fill { .. }
                | GlyphOp::Copy { .. }
                | GlyphOp::Keep { .. }
                | GlyphOp::Recall { .. }
                | GlyphOp::Save { .. }
                | GlyphOp::Restore { .. } => {}
                GlyphOp::Draw { slot, x, y } => {
                    if let Some((w, h, px)) = &self.slots[usize::from(slot)] {
                        painted.push(Rect { x, y, w: *w, h: *h });
                        let line = *w as usize * 4;
                        for (row, src) in (y..y + h).zip(px.chunks_exact(line)) {
                            let o = row as usize * pitch + x as usize * 4;
                            pixels[o..o + line].copy_from_slice(src);
                        }
                    }
                }
            }
        }
    }
}

/// Moves `src` of `pixels` (BGRX, `width` pixels a row) so its top-left corner lands at
/// (`x`, `y`), as if the source were read whole first. Both rectangles lie inside.
pub(super) fn copy_rect(pixels: &mut [u8], width: u32, src: &Rect, x: u32, y: u32) {
    let pitch = width as usize * 4;
    let line = src.w as usize * 4;
    let row = |k: u32| {
        let from = (src.y + k) as usize * pitch + src.x as usize * 4;
        let to = (y + k) as usize * pitch + x as usize * 4;
        (from, to)
    };
    // Rows moving down are copied bottom first, so that none is overwritten before it is read.
    if y > src.y {
        for k in (0..src.h).rev() {
            let (from, to) = row(k);
            pixels.copy_within(from..from + line, to);
        }
    } else {
        for k in 0..src.h {
            let (from, to) = row(k);
            pixels.copy_within(from..from + line, to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Grid, MAX_PITCH, grid};

    /// Lines of `cells` characters on a grid of `pitch`: each inked in all its columns but the
    /// last, and in that one too (touching the next) when `touch` says so.
    fn monospaced(
        lines: usize,
        cells: usize,
        pitch: usize,
        touch: impl Fn(usize) -> bool,
    ) -> Vec<Vec<bool>> {
        (0..lines)
            .map(|l| {
                let mut cols = vec![false; cells * pitch];
                for c in 0..cells {
                    let k = l * cells + c;
                    // A space now and then, as between words of a dozen letters.
                    if k % 13 == 12 {
                        continue;
                    }
                    let end = (c + 1) * pitch - usize::from(!touch(k));
                    cols[c * pitch..end].fill(true);
                }
                cols
            })
            .collect()
    }

    #[test]
    fn bold_text_that_touches_across_half_its_boundaries_shows_its_grid() {
        // Bold glyphs reach their neighbours across half the boundaries: a terminal's bold
        // listing (`ls --color`), whose grid the keystrokes after it need.
        let touch = |k: usize| k.is_multiple_of(2);
        let lines = monospaced(20, 30, 9, touch);
        let refs: Vec<&[bool]> = lines.iter().map(Vec::as_slice).collect();
        assert_eq!(grid(&refs, MAX_PITCH), Grid::Cells(9, 8));
        // Twenty characters of it are too few to tell.
        let few = monospaced(2, 10, 9, touch);
        let refs: Vec<&[bool]> = few.iter().map(Vec::as_slice).collect();
        assert_ne!(grid(&refs, MAX_PITCH), Grid::Cells(9, 8));
    }

    #[test]
    fn proportional_text_shows_no_grid() {
        let mut x = 7u64;
        let lines: Vec<Vec<bool>> = (0..20)
            .map(|_| {
                let mut cols = Vec::new();
                while cols.len() < 300 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (w, gap) = (3 + (x % 8) as usize, 1 + (x >> 8) as usize % 2);
                    cols.extend(std::iter::repeat_n(true, w));
                    cols.extend(std::iter::repeat_n(
                        false,
                        gap + 5 * usize::from(x >> 12 & 7 == 0),
                    ));
                }
                cols
            })
            .collect();
        let refs: Vec<&[bool]> = lines.iter().map(Vec::as_slice).collect();
        assert_eq!(grid(&refs, MAX_PITCH), Grid::Proportional);
    }
}
