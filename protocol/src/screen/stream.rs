//! What a screen stream leaves out because the viewer knows it already: the screen size while it
//! does not change, the full sequence number and capture time of every part after the first, and
//! whatever the parts before it already carried.
//!
//! The host passes each part through its [`StreamWriter`] just before writing it; the viewer passes
//! each part it reads through its [`StreamReader`] before anything else. Both live as long as the
//! stream, which is as long as the viewer's framebuffer.
//!
//! Parts whose pixels are not compressed yet (all but big pictures, which [`super::pack`]
//! compresses on every core) are packed ([`Encoding::Packed`]): their rectangles, palettes
//! and pixels go through one zstd context that lives as long as the stream,
//! flushed at the end of each part. Its window holds the last [`PACK_WINDOW`] bytes of what earlier
//! parts carried, so the palettes of text and the pixels of glyphs that resemble earlier ones
//! cost a few bytes each, as in VNC's long-lived zlib
//! streams. A QUIC stream is reliable and ordered, so both sides feed their contexts the same
//! bytes in the same order.
//!
//! Packing also gives the palettes of coloured anti-aliased text a memory. A browser draws a
//! link or a code span in dozens of shades of its colour that are not exact blends of it and its
//! background (see [`Colours::blend`]), so each glyph's rectangle would carry its own list of
//! them, in its own order, and the same shape in two rectangles would be different index bytes.
//! Instead, a rectangle of more than 16 colours (a byte an index) that are not all blends
//! indexes one of the stream's [`TABLES`] colour tables of up to 256 colours each: the one that
//! already holds most of its colours. The part carries only the colours the table lacks and the
//! slots they take (the least recently used, once it is full), and the same shade is the same
//! byte in every rectangle that uses the table, which is what zstd's window can then match.
//!
//! A part's glyph operations go beside the packed contents, coded by the stream's
//! [`OpsModel`] (see `model.rs`), whose arithmetic coding zstd could not shrink further; a
//! list too long for the viewer's bounds on it goes as [`super::encode_ops`] wrote it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, InBuffer, OutBuffer};

use super::glyphs::{decode_ops, encode_ops};
use super::model::{MODELLED, OpsModel};
use super::wire::{
    CodecError, Colours, Encoding, FrameUpdate, MAX_PART_DECODED, MAX_PART_RECTS, Rect, ScreenSize,
};

/// zstd's window of a stream, as a power of two: how far back a part may refer (1 MiB).
const WINDOW_LOG: u32 = 20;
/// zstd's window of a stream in bytes.
pub const PACK_WINDOW: usize = 1 << WINDOW_LOG;
/// zstd level of packed parts: the stream's own history is what they gain most from.
const PACK_LEVEL: i32 = 6;
/// Parts whose packed contents are shorter than this go as they are: a few bytes gain nothing
/// from zstd's block header.
const MIN_PACK: usize = 32;
/// Most bytes a packed part unpacks to: as much as a part's pixels may decode to.
pub const MAX_PACKED: usize = MAX_PART_DECODED;

/// Colour tables a stream keeps.
pub const TABLES: usize = 16;
/// Colours a table holds: as many as a byte indexes.
const TABLE_LEN: usize = 256;
/// Palettes of more colours than this take a byte an index, and may use a table.
const SHARED_MIN: usize = 16;
/// Most bytes a shared palette takes packed: its table, whether fresh, the lengths of its two
/// lists and every colour with its slot.
const SHARED_MAX_BYTES: usize = 8 + TABLE_LEN * 5;

/// What a packed part carries, in order (its glyph operations go beside, as the stream's
/// [`OpsModel`] coded them).
type Packed = (Vec<Rect>, Vec<Palette>, Vec<bool>, ByteBuf);

/// A rectangle's palette in a packed part.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(super) enum Palette {
    /// Its own, as in an unpacked part.
    Own(Colours),
    /// A colour table of the stream, whose slots the rectangle's indices are: emptied first if
    /// `fresh`, then given the colours of `add` at its end and those of `set` at their slots.
    Shared {
        table: u8,
        fresh: bool,
        add: Vec<[u8; 3]>,
        set: Vec<(u8, [u8; 3])>,
    },
}

/// The host's side of one screen stream.
#[derive(Debug, Default)]
pub struct StreamWriter {
    size: Option<ScreenSize>,
    seq: u64,
    captured_us: u64,
    packer: Packer,
    tables: WriterTables,
    ops: OpsModel,
}

impl StreamWriter {
    /// A writer for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves out of `upd` what the viewer knows from the parts before it, and packs it (see the
    /// module's documentation). Fails only if zstd does, after which the stream is unusable.
    pub fn compact(&mut self, upd: &mut FrameUpdate) -> Result<(), CodecError> {
        // A list too long for the viewer's bounds goes as it is, and neither model learns it.
        if !upd.glyphs.is_empty()
            && let Some(coded) = decode_ops(&upd.glyphs)
                .ok()
                .and_then(|ops| self.ops.encode(&ops))
        {
            upd.glyphs = coded;
        }
        self.packer.pack(upd, &mut self.tables)?;
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
        Ok(())
    }
}

/// The viewer's side of one screen stream.
#[derive(Debug, Default)]
pub struct StreamReader {
    size: Option<ScreenSize>,
    seq: u64,
    captured_us: u64,
    unpacker: Unpacker,
    tables: ReaderTables,
    ops: OpsModel,
}

impl StreamReader {
    /// A reader for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores what the host left out of `upd`, and unpacks it. A first part without a screen
    /// size is refused, and so is a packed part that is not valid zstd of the stream, unpacks to
    /// more than [`MAX_PACKED`] bytes, does not hold exactly a part's contents or sets a colour
    /// table out of its bounds. After an error the stream is unusable.
    pub fn expand(&mut self, upd: &mut FrameUpdate) -> Result<(), CodecError> {
        self.unpacker.unpack(upd, &mut self.tables)?;
        if let Some((&MODELLED, coded)) = upd.glyphs.split_first() {
            upd.glyphs = encode_ops(&self.ops.decode(coded)?);
        }
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

/// The writer's zstd context, made with the first part it packs.
#[derive(Default)]
struct Packer(Option<CCtx<'static>>);

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Packer")
    }
}

impl Packer {
    /// Packs `upd` if its pixels are not compressed yet and it carries enough to gain from it,
    /// its palettes of many colours as `tables`' (see the module's documentation).
    fn pack(&mut self, upd: &mut FrameUpdate, tables: &mut WriterTables) -> Result<(), CodecError> {
        if upd.encoding == Encoding::Bgr24Zstd && !upd.data.is_empty() {
            return Ok(());
        }
        let own = |p: &Colours| Palette::Own(p.clone());
        let mut palettes: Vec<Palette> = upd.palettes.iter().map(own).collect();
        let contents = (&upd.rects, &palettes, &upd.predicted, Bytes::new(&upd.data));
        let mut raw = postcard::to_stdvec(&contents).map_err(|e| corrupt(&e.to_string()))?;
        if raw.len() < MIN_PACK || raw.len() > MAX_PACKED {
            return Ok(());
        }
        let shared = upd.palettes.iter().filter(|p| shares(p)).count();
        if shared > 0 && raw.len() + shared * SHARED_MAX_BYTES <= MAX_PACKED {
            let mut data = upd.data.clone();
            tables.share(&upd.rects, &upd.palettes, &mut palettes, &mut data);
            let contents = (&upd.rects, &palettes, &upd.predicted, Bytes::new(&data));
            raw = postcard::to_stdvec(&contents).map_err(|e| corrupt(&e.to_string()))?;
        }
        let cx = match &mut self.0 {
            Some(cx) => cx,
            None => self.0.insert(writer_context()?),
        };
        let mut out: Vec<u8> = Vec::with_capacity(zstd_safe::compress_bound(raw.len()) + 16);
        let mut input = InBuffer::around(&raw);
        loop {
            if out.capacity() == out.len() {
                out.reserve(out.len().max(64));
            }
            let pos = out.len();
            let mut o = OutBuffer::around_pos(&mut out, pos);
            let left = cx
                .compress_stream2(
                    &mut o,
                    &mut input,
                    zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_flush,
                )
                .map_err(zstd_error)?;
            if left == 0 && input.pos() == raw.len() {
                break;
            }
        }
        upd.encoding = Encoding::Packed;
        upd.data = out;
        upd.rects.clear();
        upd.palettes.clear();
        upd.predicted.clear();
        Ok(())
    }
}

fn writer_context() -> Result<CCtx<'static>, CodecError> {
    let mut cx = CCtx::try_create().ok_or_else(|| corrupt("no memory for zstd"))?;
    cx.set_parameter(CParameter::CompressionLevel(PACK_LEVEL))
        .map_err(zstd_error)?;
    cx.set_parameter(CParameter::WindowLog(WINDOW_LOG))
        .map_err(zstd_error)?;
    Ok(cx)
}

/// The reader's zstd context, made with the first packed part.
#[derive(Default)]
struct Unpacker(Option<DCtx<'static>>);

impl std::fmt::Debug for Unpacker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unpacker")
    }
}

impl Unpacker {
    /// Unpacks `upd` if it is packed, its shared palettes from `tables`.
    fn unpack(
        &mut self,
        upd: &mut FrameUpdate,
        tables: &mut ReaderTables,
    ) -> Result<(), CodecError> {
        if upd.encoding != Encoding::Packed {
            return Ok(());
        }
        let cx = match &mut self.0 {
            Some(cx) => cx,
            None => {
                let mut cx = DCtx::try_create().ok_or_else(|| corrupt("no memory for zstd"))?;
                // A host announcing a larger window than ours is refused, not obeyed.
                cx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
                    .map_err(zstd_error)?;
                self.0.insert(cx)
            }
        };
        let mut out: Vec<u8> = Vec::with_capacity((upd.data.len() * 4).clamp(256, MAX_PACKED));
        let mut input = InBuffer::around(&upd.data);
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_PACKED {
                    return Err(corrupt("a packed part unpacks to too much"));
                }
                out.reserve_exact(out.len().min(MAX_PACKED - out.len()));
            }
            let (pos, read) = (out.len(), input.pos());
            let mut o = OutBuffer::around_pos(&mut out, pos);
            cx.decompress_stream(&mut o, &mut input)
                .map_err(zstd_error)?;
            let (room, wrote) = (o.pos() < o.capacity(), o.pos() > pos);
            // All input read and room left over: the part's flush has been fully unpacked.
            if input.pos() == upd.data.len() && room {
                break;
            }
            if room && !wrote && input.pos() == read {
                return Err(corrupt("zstd makes no progress"));
            }
        }
        let ((rects, palettes, predicted, data), rest): (Packed, _) =
            postcard::take_from_bytes(&out).map_err(|e| corrupt(&e.to_string()))?;
        if !rest.is_empty() {
            return Err(corrupt("a packed part has bytes left over"));
        }
        // Each shared palette becomes a copy of its table: no more of them than a part may have
        // rectangles, one for each.
        if rects.len() > MAX_PART_RECTS || !(palettes.is_empty() || palettes.len() == rects.len()) {
            return Err(corrupt("palettes that do not match the rectangles"));
        }
        let palettes = palettes
            .into_iter()
            .map(|p| tables.restore(p))
            .collect::<Result<_, _>>()?;
        upd.encoding = Encoding::Bgr24;
        upd.rects = rects;
        upd.palettes = palettes;
        upd.predicted = predicted;
        upd.data = data.into_vec();
        Ok(())
    }
}

/// Whether a palette goes as a table's: more colours than a nibble indexes, not all blends.
fn shares(p: &Colours) -> bool {
    p.len() > SHARED_MIN && !p.is_alpha()
}

/// One colour table on the writer's side.
#[derive(Debug, Default)]
struct WriterTable {
    colours: Vec<[u8; 3]>,
    /// Per slot: when a rectangle last used it.
    used: Vec<u64>,
    slots: HashMap<[u8; 3], u8>,
    /// When a rectangle last used the table.
    last: u64,
}

/// The writer's colour tables: what the reader's hold, and how recently each slot was used.
#[derive(Debug, Default)]
struct WriterTables {
    tables: Vec<WriterTable>,
    clock: u64,
}

impl WriterTables {
    /// Turns every palette of more than [`SHARED_MIN`] colours that are not all blends into a
    /// table's, and renumbers its rectangle's indices in `data` (a byte each) to the table's
    /// slots. `palettes` and `data` are the packed part's, which start as the part's own.
    fn share(
        &mut self,
        rects: &[Rect],
        own: &[Colours],
        palettes: &mut [Palette],
        data: &mut [u8],
    ) {
        let mut at = 0usize;
        for ((r, colours), packed) in rects.iter().zip(own).zip(palettes.iter_mut()) {
            let len = super::pack::encoded_len(r, colours.len());
            let Some(indices) = data.get_mut(at..at + len) else {
                return;
            };
            at += len;
            if !shares(colours) {
                continue;
            }
            // A palette of more colours than a byte indexes is left to the decoder to refuse.
            let Some(table) = colours.table().filter(|t| t.len() <= TABLE_LEN) else {
                continue;
            };
            let (id, fresh) = self.pick(&table);
            self.clock += 1;
            let clock = self.clock;
            let t = &mut self.tables[id];
            if fresh {
                *t = WriterTable::default();
            }
            t.last = clock;
            let mut slot_of = [0u8; TABLE_LEN];
            let mut missing = Vec::new();
            for (i, c) in table.iter().enumerate() {
                match t.slots.get(c) {
                    Some(&s) => {
                        t.used[usize::from(s)] = clock;
                        slot_of[i] = s;
                    }
                    None => missing.push(i),
                }
            }
            let (mut add, mut set) = (Vec::new(), Vec::new());
            for i in missing {
                let c = table[i];
                let s = if t.colours.len() < TABLE_LEN {
                    t.colours.push(c);
                    t.used.push(clock);
                    add.push(c);
                    t.colours.len() - 1
                } else {
                    // The rectangle has at most as many colours as the table has slots, and those
                    // it uses were marked: the least recently used slot is not one of them.
                    let s = (0..TABLE_LEN)
                        .min_by_key(|&s| t.used[s])
                        .unwrap_or_default();
                    t.slots.remove(&t.colours[s]);
                    t.colours[s] = c;
                    t.used[s] = clock;
                    set.push((s as u8, c));
                    s
                };
                t.slots.insert(c, s as u8);
                slot_of[i] = s as u8;
            }
            for b in indices.iter_mut() {
                *b = slot_of[usize::from(*b)];
            }
            *packed = Palette::Shared {
                table: id as u8,
                fresh,
                add,
                set,
            };
        }
    }

    /// The table that holds at least half of `colours`, most of them; else a new one, or the
    /// least recently used one emptied (then `true`).
    fn pick(&mut self, colours: &[[u8; 3]]) -> (usize, bool) {
        let held = |t: &WriterTable| colours.iter().filter(|c| t.slots.contains_key(*c)).count();
        let best = (self.tables.iter().enumerate())
            .map(|(i, t)| (held(t), i))
            .max();
        match best {
            Some((n, i)) if n * 2 >= colours.len() => (i, false),
            _ if self.tables.len() < TABLES => {
                self.tables.push(WriterTable::default());
                (self.tables.len() - 1, true)
            }
            _ => {
                let lru = (self.tables.iter().enumerate())
                    .min_by_key(|(_, t)| t.last)
                    .map_or(0, |(i, _)| i);
                (lru, true)
            }
        }
    }
}

/// The reader's colour tables.
#[derive(Debug, Default)]
struct ReaderTables(Vec<Vec<[u8; 3]>>);

impl ReaderTables {
    /// The palette a packed palette stands for; a shared one sets its table first, and must
    /// leave it with more than [`SHARED_MIN`] colours (a byte an index).
    fn restore(&mut self, p: Palette) -> Result<Colours, CodecError> {
        let (table, fresh, add, set) = match p {
            Palette::Own(c) => return Ok(c),
            Palette::Shared {
                table,
                fresh,
                add,
                set,
            } => (usize::from(table), fresh, add, set),
        };
        if table >= TABLES {
            return Err(corrupt("no such colour table"));
        }
        if self.0.len() <= table {
            self.0.resize_with(table + 1, Vec::new);
        }
        let t = &mut self.0[table];
        if fresh {
            t.clear();
        }
        if t.len() + add.len() > TABLE_LEN {
            return Err(corrupt("a colour table of too many colours"));
        }
        t.extend_from_slice(&add);
        for (slot, c) in set {
            *t.get_mut(usize::from(slot))
                .ok_or_else(|| corrupt("a colour table's slot out of range"))? = c;
        }
        if t.len() <= SHARED_MIN {
            return Err(corrupt("a shared palette of too few colours"));
        }
        Ok(Colours::full(t.clone()))
    }
}

fn corrupt(why: &str) -> CodecError {
    CodecError::Corrupt(format!("packed part: {why}"))
}

fn zstd_error(code: usize) -> CodecError {
    corrupt(zstd_safe::get_error_name(code))
}
