//! The viewer's side: applying update parts to a framebuffer, every length and rectangle
//! checked before anything is written.

use std::borrow::Cow;

use super::attic::Attic;
use super::glyphs::{GlyphSlots, decode_ops};
use super::pack::{MAX_PALETTE, encoded_len, index_bits};
use super::predict;
use super::under::Under;
use super::video::{NoVideo, VideoDecoder};
use super::wire::*;

/// Decodes a JPEG that must be exactly `w` x `h`, to RGB.
fn decode_jpeg(data: &[u8], w: usize, h: usize) -> Result<Vec<u8>, CodecError> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(w)
        .set_max_height(h);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(data), opts);
    let rgb = d
        .decode()
        .map_err(|e| CodecError::Corrupt(format!("jpeg: {e:?}")))?;
    let info = d
        .info()
        .ok_or_else(|| CodecError::Corrupt("jpeg without a header".into()))?;
    if (info.width as usize, info.height as usize) != (w, h) || rgb.len() != w * h * 3 {
        return Err(CodecError::Corrupt(format!(
            "jpeg is {}x{}, its rectangle {w}x{h}",
            info.width, info.height
        )));
    }
    Ok(rgb)
}

/// The viewer's copy of a remote monitor, BGRX.
#[derive(Debug, Default, Clone)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    glyphs: GlyphSlots,
    /// Rows scrolled out of view that the host told it to keep.
    attic: Attic,
    /// What windows covered, saved where the host told it to.
    under: Under,
    /// What the last applied part painted.
    painted: Vec<Rect>,
}

impl Framebuffer {
    /// An empty (0x0) framebuffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The rectangles the last applied part painted: its copies' destinations, its pixels, its
    /// lossy rectangles, and its glyph fills and draws (the only change a keystroke of cached
    /// glyphs makes).
    pub fn painted(&self) -> &[Rect] {
        &self.painted
    }

    /// BGRX pixels, `width * 4` bytes per row.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Applies one update part of a stream without video (see [`Self::apply_with`]).
    pub fn apply(&mut self, upd: &FrameUpdate) -> Result<bool, CodecError> {
        self.apply_with(upd, &mut NoVideo)
    }

    /// Applies one update part, its video pictures through `video`. Returns whether the screen
    /// size changed (the whole buffer is then new). Every bound is checked before any pixel is
    /// written; a lossy picture that fails to decode leaves the lossless rectangles of the part
    /// painted, never anything out of bounds.
    pub fn apply_with(
        &mut self,
        upd: &FrameUpdate,
        video: &mut dyn VideoDecoder,
    ) -> Result<bool, CodecError> {
        // No size: the same screen as before.
        let (w, h) = upd
            .size
            .map_or((self.width, self.height), |s| (s.width, s.height));
        let expected = check(upd, w, h)?;
        let raw: Cow<'_, [u8]> = match upd.encoding {
            _ if expected == 0 && upd.data.is_empty() => Cow::Borrowed(&[]),
            Encoding::Bgr24 => Cow::Borrowed(&upd.data),
            Encoding::Bgr24Zstd => Cow::Owned(
                zstd::bulk::decompress(&upd.data, expected)
                    .map_err(|e| CodecError::Corrupt(e.to_string()))?,
            ),
            // Unpacking needs the stream's context, which only its StreamReader has.
            Encoding::Packed => {
                return Err(CodecError::Corrupt("a packed part was not unpacked".into()));
            }
        };
        if raw.len() != expected {
            return Err(CodecError::DataLength {
                expected,
                got: raw.len(),
            });
        }
        let resized = w != self.width || h != self.height;
        let ops = decode_ops(&upd.glyphs)?;
        if !ops.is_empty() {
            let (empty, no_rows) = (GlyphSlots::default(), Attic::default());
            let (slots, attic) = if resized {
                (&empty, &no_rows)
            } else {
                (&self.glyphs, &self.attic)
            };
            slots.check(&ops, w, h, attic)?;
        }
        if resized {
            self.width = w;
            self.height = h;
            self.pixels = vec![0; w as usize * h as usize * 4];
            self.glyphs.clear();
            self.attic.clear();
            self.under.clear();
        }
        self.painted.clear();
        GlyphSlots::apply_before(
            &ops,
            &mut self.pixels,
            w,
            &mut self.attic,
            &mut self.under,
            &mut self.painted,
        );
        let mut at = 0usize;
        for (i, r) in upd.rects.iter().enumerate() {
            let palette = upd.palettes.get(i).filter(|p| !p.is_empty());
            let len = encoded_len(r, palette.map_or(0, Colours::len));
            let src = &raw[at..at + len];
            at += len;
            match palette.map(Colours::table) {
                None if upd.predicted.get(i) == Some(&true) => {
                    predict::restore_rows(self.rows_mut(r), src);
                }
                None => self.paint_bgr(r, src),
                Some(table) => {
                    // `check` refused blends without their two full colours.
                    let table = table.unwrap_or_default();
                    self.paint_indexed(r, &table, src)
                }
            }
        }
        for j in &upd.lossy {
            match j.codec {
                LossyCodec::Jpeg => {
                    let rgb = decode_jpeg(&j.data, j.rect.w as usize, j.rect.h as usize)?;
                    self.paint_rgb(&j.rect, &rgb);
                }
                LossyCodec::H264 => {
                    let pitch = w as usize * 4;
                    let at = j.rect.y as usize * pitch + j.rect.x as usize * 4;
                    video.decode(&j.data, j.rect.w, j.rect.h, &mut self.pixels[at..], pitch)?;
                }
            }
        }
        self.painted.extend_from_slice(&upd.rects);
        self.painted.extend(upd.lossy.iter().map(|j| j.rect));
        if !ops.is_empty() {
            self.glyphs
                .apply(&ops, &mut self.pixels, w, &mut self.painted);
        }
        Ok(resized)
    }

    /// The rows of `r`, each as the slice of the buffer it covers. `r` was checked to lie inside.
    fn rows_mut(&mut self, r: &Rect) -> impl Iterator<Item = &mut [u8]> {
        let pitch = self.width as usize * 4;
        let (x, w) = (r.x as usize * 4, r.w as usize * 4);
        self.pixels
            .chunks_exact_mut(pitch)
            .skip(r.y as usize)
            .take(r.h as usize)
            .map(move |row| &mut row[x..x + w])
    }

    /// Paints packed BGR pixels.
    fn paint_bgr(&mut self, r: &Rect, src: &[u8]) {
        let mut px = src.chunks_exact(3);
        for row in self.rows_mut(r) {
            for (dst, s) in row.chunks_exact_mut(4).zip(&mut px) {
                dst[..3].copy_from_slice(s);
                dst[3] = 0;
            }
        }
    }

    /// Paints palette indices, `index_bits` per pixel, each row starting on a byte.
    fn paint_indexed(&mut self, r: &Rect, pal: &[[u8; 3]], src: &[u8]) {
        let bits = index_bits(pal.len());
        let colour = |idx: usize| {
            let c = pal.get(idx).copied().unwrap_or([0, 0, 0]);
            [c[0], c[1], c[2], 0]
        };
        if bits == 0 {
            // One colour: no index data at all.
            let c = colour(0);
            for row in self.rows_mut(r) {
                for dst in row.chunks_exact_mut(4) {
                    dst.copy_from_slice(&c);
                }
            }
            return;
        }
        let row_bytes = (r.w as usize * bits).div_ceil(8);
        for (row, line) in self.rows_mut(r).zip(src.chunks_exact(row_bytes)) {
            for (x, dst) in row.chunks_exact_mut(4).enumerate() {
                let idx = (line[x * bits / 8] >> (8 - bits - (x * bits) % 8)) as usize
                    & ((1 << bits) - 1);
                dst.copy_from_slice(&colour(idx));
            }
        }
    }

    /// Paints RGB pixels (a decoded JPEG).
    fn paint_rgb(&mut self, r: &Rect, rgb: &[u8]) {
        let line = r.w as usize * 3;
        for (row, src) in self.rows_mut(r).zip(rgb.chunks_exact(line.max(1))) {
            for (dst, s) in row.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                dst.copy_from_slice(&[s[2], s[1], s[0], 0]);
            }
        }
    }

    /// RGBA bytes of a rectangle (for a texture upload); empty if it is empty or lies outside
    /// the buffer.
    pub fn region_rgba(&self, r: &Rect) -> Vec<u8> {
        let mut out = vec![0; r.area() as usize * 4];
        if !self.write_rgba(r, &mut out, r.w as usize * 4, (0, 0)) {
            return Vec::new();
        }
        out
    }

    /// Writes rectangle `r` as RGBA (opaque) into `dst`, a picture of `pitch` bytes a row, with
    /// its top-left corner at `at` (x, y) there: one pass, no allocation. False, writing nothing,
    /// when `r` is empty or not inside the screen or `dst` cannot hold it.
    pub fn write_rgba(&self, r: &Rect, dst: &mut [u8], pitch: usize, at: (u32, u32)) -> bool {
        if r.w == 0
            || r.h == 0
            || u64::from(r.x) + u64::from(r.w) > u64::from(self.width)
            || u64::from(r.y) + u64::from(r.h) > u64::from(self.height)
        {
            return false;
        }
        let row = r.w as usize * 4;
        let (ax, ay) = (at.0 as usize, at.1 as usize);
        let end = (ay + r.h as usize - 1) * pitch + ax * 4 + row;
        if ax * 4 + row > pitch || end > dst.len() {
            return false;
        }
        let src_pitch = self.width as usize * 4;
        for i in 0..r.h as usize {
            let s = (r.y as usize + i) * src_pitch + r.x as usize * 4;
            let d = (ay + i) * pitch + ax * 4;
            for (o, p) in dst[d..d + row]
                .chunks_exact_mut(4)
                .zip(self.pixels[s..s + row].chunks_exact(4))
            {
                // BGRX to RGBA.
                let v = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                let rgba =
                    (v & 0x0000_ff00) | ((v >> 16) & 0xff) | ((v & 0xff) << 16) | 0xff00_0000;
                o.copy_from_slice(&rgba.to_le_bytes());
            }
        }
        true
    }
}

/// Checks every bound of a part before anything is decoded: screen size, rectangle count, each
/// rectangle inside the screen and not empty, palettes, decoded length, JPEG sizes and the area
/// painted. Returns the length the lossless data must decompress to.
fn check(upd: &FrameUpdate, w: u32, h: u32) -> Result<usize, CodecError> {
    if u64::from(w) * u64::from(h) > MAX_PIXELS || w > MAX_SIDE || h > MAX_SIDE {
        return Err(CodecError::TooLarge {
            width: w,
            height: h,
        });
    }
    if upd.rects.len() + upd.lossy.len() > MAX_PART_RECTS {
        return Err(CodecError::Corrupt(format!(
            "{} rectangles in one part (at most {MAX_PART_RECTS})",
            upd.rects.len() + upd.lossy.len()
        )));
    }
    if !upd.palettes.is_empty() && upd.palettes.len() != upd.rects.len() {
        return Err(CodecError::Corrupt(
            "palette list does not match the rectangles".into(),
        ));
    }
    if !upd.predicted.is_empty() && upd.predicted.len() != upd.rects.len() {
        return Err(CodecError::Corrupt(
            "prediction list does not match the rectangles".into(),
        ));
    }
    if let Some(i) = upd
        .predicted
        .iter()
        .zip(&upd.rects)
        .enumerate()
        .position(|(i, (p, _))| *p && upd.palettes.get(i).is_some_and(|pal| !pal.is_empty()))
    {
        return Err(CodecError::Corrupt(format!(
            "rectangle {i} has a palette and is predicted"
        )));
    }
    let inside = |r: &Rect| {
        r.w > 0
            && r.h > 0
            && u64::from(r.x) + u64::from(r.w) <= u64::from(w)
            && u64::from(r.y) + u64::from(r.h) <= u64::from(h)
    };
    let mut expected: u64 = 0;
    // Every pixel costs work to paint, even a one-colour one that costs no bytes: the
    // rectangles of a part cover the screen at most twice (lossless, then lossy).
    let mut area: u64 = 0;
    for (i, r) in upd.rects.iter().enumerate() {
        if !inside(r) {
            return Err(CodecError::OutOfBounds(*r));
        }
        let colours = upd.palettes.get(i).map_or(0, Colours::len);
        if colours > MAX_PALETTE {
            return Err(CodecError::Corrupt(format!("palette of {colours} colours")));
        }
        if upd.palettes.get(i).is_some_and(|p| !p.is_complete()) {
            return Err(CodecError::Corrupt(format!(
                "rectangle {i} has blends without two full colours"
            )));
        }
        expected += encoded_len(r, colours) as u64;
        area += r.area();
    }
    if expected > MAX_PART_DECODED as u64 {
        return Err(CodecError::DataLength {
            expected: expected.min(usize::MAX as u64) as usize,
            got: 0,
        });
    }
    let mut videos = 0;
    for j in &upd.lossy {
        if !inside(&j.rect) {
            return Err(CodecError::OutOfBounds(j.rect));
        }
        area += j.rect.area();
        if j.codec == LossyCodec::H264 {
            videos += 1;
            let (max_w, max_h) = MAX_VIDEO_SIDES;
            if videos > 1
                || j.rect.w % 2 == 1
                || j.rect.h % 2 == 1
                || j.rect.w > max_w
                || j.rect.h > max_h
            {
                return Err(CodecError::Corrupt(format!(
                    "video picture {:?}: one a part, even sides up to {max_w}x{max_h}",
                    j.rect
                )));
            }
        }
        if j.data.len() > MAX_LOSSY_BYTES {
            return Err(CodecError::Corrupt(format!(
                "lossy rectangle of {} bytes",
                j.data.len()
            )));
        }
    }
    let screen = u64::from(w) * u64::from(h);
    if area > screen * 2 {
        return Err(CodecError::Corrupt(format!(
            "rectangles cover {area} pixels of a {w}x{h} screen"
        )));
    }
    Ok(expected as usize)
}
