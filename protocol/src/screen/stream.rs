//! What a screen stream leaves out because the viewer knows it already: the screen size while it
//! does not change, the full sequence number and capture time of every part after the first, and
//! whatever the parts before it already carried.
//!
//! The host passes each part through its [`StreamWriter`] just before writing it; the viewer passes
//! each part it reads through its [`StreamReader`] before anything else. Both live as long as the
//! stream, which is as long as the viewer's framebuffer.
//!
//! Parts whose pixels are not compressed yet (all but big pictures, which [`super::pack`]
//! compresses on every core) are packed ([`Encoding::Packed`]): their rectangles, palettes,
//! pixels and glyph operations go through one zstd context that lives as long as the stream,
//! flushed at the end of each part. Its window holds the last [`PACK_WINDOW`] bytes of what earlier
//! parts carried, so the palettes of text, the pixels of glyphs that resemble earlier ones and
//! runs of glyph operations that repeat cost a few bytes each, as in VNC's long-lived zlib
//! streams. A QUIC stream is reliable and ordered, so both sides feed their contexts the same
//! bytes in the same order.

use serde_bytes::{ByteBuf, Bytes};
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, InBuffer, OutBuffer};

use super::wire::{CodecError, Colours, Encoding, FrameUpdate, MAX_PART_DECODED, Rect, ScreenSize};

/// zstd's window of a stream, as a power of two: how far back a part may refer (1 MiB).
const WINDOW_LOG: u32 = 20;
/// zstd's window of a stream in bytes.
pub const PACK_WINDOW: usize = 1 << WINDOW_LOG;
/// zstd level of packed parts: the stream's own history is what they gain most from.
const PACK_LEVEL: i32 = 6;
/// Parts whose packed contents are shorter than this go as they are: a keystroke's few bytes of
/// glyph operations gain nothing from zstd's block header.
const MIN_PACK: usize = 32;
/// Most bytes a packed part unpacks to: as much as a part's pixels may decode to.
pub const MAX_PACKED: usize = MAX_PART_DECODED;

/// What a packed part carries, in order.
type Packed = (Vec<Rect>, Vec<Colours>, Vec<bool>, ByteBuf, ByteBuf);

/// The host's side of one screen stream.
#[derive(Debug, Default)]
pub struct StreamWriter {
    size: Option<ScreenSize>,
    seq: u64,
    captured_us: u64,
    packer: Packer,
}

impl StreamWriter {
    /// A writer for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves out of `upd` what the viewer knows from the parts before it, and packs it (see the
    /// module's documentation). Fails only if zstd does, after which the stream is unusable.
    pub fn compact(&mut self, upd: &mut FrameUpdate) -> Result<(), CodecError> {
        self.packer.pack(upd)?;
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
}

impl StreamReader {
    /// A reader for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores what the host left out of `upd`, and unpacks it. A first part without a screen
    /// size is refused, and so is a packed part that is not valid zstd of the stream, unpacks to
    /// more than [`MAX_PACKED`] bytes or does not hold exactly a part's contents. After an error
    /// the stream is unusable.
    pub fn expand(&mut self, upd: &mut FrameUpdate) -> Result<(), CodecError> {
        self.unpacker.unpack(upd)?;
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
    /// Packs `upd` if its pixels are not compressed yet and it carries enough to gain from it.
    fn pack(&mut self, upd: &mut FrameUpdate) -> Result<(), CodecError> {
        if upd.encoding == Encoding::Bgr24Zstd && !upd.data.is_empty() {
            return Ok(());
        }
        let contents = (
            &upd.rects,
            &upd.palettes,
            &upd.predicted,
            Bytes::new(&upd.data),
            Bytes::new(&upd.glyphs),
        );
        let raw = postcard::to_stdvec(&contents).map_err(|e| corrupt(&e.to_string()))?;
        if raw.len() < MIN_PACK || raw.len() > MAX_PACKED {
            return Ok(());
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
        upd.glyphs.clear();
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
    /// Unpacks `upd` if it is packed.
    fn unpack(&mut self, upd: &mut FrameUpdate) -> Result<(), CodecError> {
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
        let ((rects, palettes, predicted, data, glyphs), rest): (Packed, _) =
            postcard::take_from_bytes(&out).map_err(|e| corrupt(&e.to_string()))?;
        if !rest.is_empty() {
            return Err(corrupt("a packed part has bytes left over"));
        }
        upd.encoding = Encoding::Bgr24;
        upd.rects = rects;
        upd.palettes = palettes;
        upd.predicted = predicted;
        upd.data = data.into_vec();
        upd.glyphs = glyphs.into_vec();
        Ok(())
    }
}

fn corrupt(why: &str) -> CodecError {
    CodecError::Corrupt(format!("packed part: {why}"))
}

fn zstd_error(code: usize) -> CodecError {
    corrupt(zstd_safe::get_error_name(code))
}
