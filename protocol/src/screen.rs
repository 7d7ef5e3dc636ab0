//! The lossless changed-tile screen codec.
//!
//! The host keeps, per viewer, a copy of the last frame that viewer was sent. Each new capture is
//! compared with it tile by tile; inside a changed tile only the bounding box of the changed pixels
//! is kept, and horizontally adjacent boxes are merged. The pixels of the changed rectangles
//! (BGR, 3 bytes each) are compressed with zstd in parts of at most [`PART_RAW_BYTES`], so that no
//! frame on the wire approaches the media frame limit and a viewer can start applying a big
//! update before all of it has arrived.
//!
//! Pixels are 32-bit BGRX, as X11 and the other capture APIs deliver them.

use serde::{Deserialize, Serialize};

/// Tile edge in pixels.
pub const TILE: u32 = 32;
/// Uncompressed pixel bytes per update part.
pub const PART_RAW_BYTES: usize = 1 << 20;
/// Largest screen a viewer accepts (8K UHD).
pub const MAX_PIXELS: u64 = 7680 * 4320;
/// zstd level for screen data.
const ZSTD_LEVEL: i32 = 1;

/// A rectangle in monitor coordinates.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    /// Pixels covered.
    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }

    /// Smallest rectangle covering both.
    pub fn union(&self, o: &Rect) -> Rect {
        let x0 = self.x.min(o.x);
        let y0 = self.y.min(o.y);
        let x1 = (self.x + self.w).max(o.x + o.w);
        let y1 = (self.y + self.h).max(o.y + o.h);
        Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }
}

/// How the pixel data of an update is encoded.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The rectangles' pixels as BGR rows, concatenated, compressed with zstd.
    Bgr24Zstd,
}

/// Host clock readings for one frame, microseconds since the Unix epoch.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// When the pixels were captured.
    pub captured_us: u64,
    /// When encoding finished.
    pub encoded_us: u64,
}

/// One part of a frame update. A frame is presented when its `last` part has been applied.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FrameUpdate {
    /// Frame sequence number; all parts of a frame share it.
    pub seq: u64,
    /// Index of this part within the frame.
    pub part: u32,
    /// Whether this is the frame's last part.
    pub last: bool,
    /// Monitor width; a change resets the viewer's framebuffer.
    pub width: u32,
    /// Monitor height.
    pub height: u32,
    /// Data encoding.
    pub encoding: Encoding,
    /// Rectangles whose pixels `data` holds, in order.
    pub rects: Vec<Rect>,
    /// Encoded pixels.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// When the frame was captured and encoded.
    pub timing: Timing,
}

/// A captured frame: BGRX pixels, `stride` bytes per row.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row, at least `width * 4`.
    pub stride: usize,
    /// The pixels.
    pub data: &'a [u8],
}

impl FrameRef<'_> {
    fn row(&self, y: u32, x0: u32, x1: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start + x0 as usize * 4..start + x1 as usize * 4]
    }

    fn is_valid(&self) -> bool {
        self.stride >= self.width as usize * 4
            && self.data.len() >= self.stride * self.height as usize
    }
}

/// Why an update could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The announced screen is larger than [`MAX_PIXELS`].
    #[error("screen of {width}x{height} is too large")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// A rectangle lies outside the screen.
    #[error("rectangle {0:?} lies outside the screen")]
    OutOfBounds(Rect),
    /// The decoded data does not match the rectangles.
    #[error("pixel data is {got} bytes, the rectangles need {expected}")]
    DataLength {
        /// What the rectangles need.
        expected: usize,
        /// What was decoded.
        got: usize,
    },
    /// The compressed data is corrupt.
    #[error("corrupt pixel data: {0}")]
    Corrupt(String),
    /// The captured frame's buffer is smaller than its geometry.
    #[error("frame buffer is smaller than its geometry")]
    BadFrame,
}

/// Encodes frames for one viewer, remembering what that viewer has.
#[derive(Debug, Default)]
pub struct TileEncoder {
    width: u32,
    height: u32,
    prev: Vec<u8>,
    has_prev: bool,
}

impl TileEncoder {
    /// A new encoder; its first frame is sent whole.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets what the viewer has, so that the next frame is sent whole.
    pub fn reset(&mut self) {
        self.has_prev = false;
    }

    /// Compares `frame` with the last encoded frame and returns the changed rectangles, which it
    /// then considers sent. A first frame, or one of another size, is returned whole.
    ///
    /// With `hints` (say, the damage the OS reported), only tiles touching them are compared:
    /// the hints must cover every change since the previous call.
    pub fn diff(
        &mut self,
        frame: &FrameRef<'_>,
        hints: Option<&[Rect]>,
    ) -> Result<Vec<Rect>, CodecError> {
        if !frame.is_valid() {
            return Err(CodecError::BadFrame);
        }
        let (w, h) = (frame.width, frame.height);
        if !self.has_prev || w != self.width || h != self.height {
            self.width = w;
            self.height = h;
            self.prev.clear();
            self.prev.reserve(w as usize * h as usize * 4);
            for y in 0..h {
                self.prev.extend_from_slice(frame.row(y, 0, w));
            }
            self.has_prev = true;
            return Ok((0..h.div_ceil(TILE))
                .map(|ty| {
                    let y = ty * TILE;
                    Rect {
                        x: 0,
                        y,
                        w,
                        h: TILE.min(h - y),
                    }
                })
                .filter(|r| r.area() > 0)
                .collect());
        }
        let mut out = Vec::new();
        let pitch = w as usize * 4;
        let (tw, th) = (w.div_ceil(TILE), h.div_ceil(TILE));
        let mask = hints.map(|hints| {
            let mut m = vec![false; (tw * th) as usize];
            for r in hints {
                if r.w == 0 || r.h == 0 || r.x >= w || r.y >= h {
                    continue;
                }
                let (x1, y1) = ((r.x + r.w).min(w), (r.y + r.h).min(h));
                for ty in r.y / TILE..=(y1 - 1) / TILE {
                    for tx in r.x / TILE..=(x1 - 1) / TILE {
                        m[(ty * tw + tx) as usize] = true;
                    }
                }
            }
            m
        });
        for ty in 0..th {
            let y0 = ty * TILE;
            let y1 = (y0 + TILE).min(h);
            let row_start = out.len();
            for tx in 0..tw {
                if let Some(m) = &mask {
                    if !m[(ty * tw + tx) as usize] {
                        continue;
                    }
                }
                let x0 = tx * TILE;
                let x1 = (x0 + TILE).min(w);
                let mut bbox: Option<(u32, u32, u32, u32)> = None;
                for y in y0..y1 {
                    let cur = frame.row(y, x0, x1);
                    let off = y as usize * pitch + x0 as usize * 4;
                    let prev = &mut self.prev[off..off + cur.len()];
                    if cur == prev {
                        continue;
                    }
                    let first = first_diff(cur, prev);
                    let last = last_diff(cur, prev);
                    prev.copy_from_slice(cur);
                    let (fx, lx) = (x0 + first, x0 + last);
                    bbox = Some(match bbox {
                        None => (fx, y, lx, y),
                        Some((a, b, c, _)) => (a.min(fx), b, c.max(lx), y),
                    });
                }
                if let Some((bx0, by0, bx1, by1)) = bbox {
                    out.push(Rect {
                        x: bx0,
                        y: by0,
                        w: bx1 - bx0 + 1,
                        h: by1 - by0 + 1,
                    });
                }
            }
            merge_row(&mut out, row_start);
            merge_down(&mut out, row_start);
        }
        Ok(out)
    }

    /// Encodes the given rectangles of `frame` as update parts with sequence number `seq`.
    pub fn encode(
        &self,
        frame: &FrameRef<'_>,
        rects: &[Rect],
        seq: u64,
        timing: Timing,
    ) -> Result<Vec<FrameUpdate>, CodecError> {
        if !frame.is_valid() {
            return Err(CodecError::BadFrame);
        }
        let mut parts = Vec::new();
        let mut raw = Vec::with_capacity(PART_RAW_BYTES.min(frame.data.len()));
        let mut part_rects = Vec::new();
        let flush =
            |raw: &mut Vec<u8>, part_rects: &mut Vec<Rect>, parts: &mut Vec<FrameUpdate>| {
                let data = zstd::bulk::compress(raw, ZSTD_LEVEL)
                    .map_err(|e| CodecError::Corrupt(e.to_string()))?;
                parts.push(FrameUpdate {
                    seq,
                    part: u32::try_from(parts.len()).unwrap_or(u32::MAX),
                    last: false,
                    width: frame.width,
                    height: frame.height,
                    encoding: Encoding::Bgr24Zstd,
                    rects: std::mem::take(part_rects),
                    data,
                    timing,
                });
                raw.clear();
                Ok::<(), CodecError>(())
            };
        for r in rects {
            if r.x + r.w > frame.width || r.y + r.h > frame.height {
                return Err(CodecError::OutOfBounds(*r));
            }
            for y in r.y..r.y + r.h {
                for px in frame.row(y, r.x, r.x + r.w).chunks_exact(4) {
                    raw.extend_from_slice(&px[..3]);
                }
            }
            part_rects.push(*r);
            if raw.len() >= PART_RAW_BYTES {
                flush(&mut raw, &mut part_rects, &mut parts)?;
            }
        }
        if !part_rects.is_empty() || parts.is_empty() {
            flush(&mut raw, &mut part_rects, &mut parts)?;
        }
        if let Some(p) = parts.last_mut() {
            p.last = true;
        }
        Ok(parts)
    }
}

fn first_diff(a: &[u8], b: &[u8]) -> u32 {
    let i = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .position(|(p, q)| p != q)
        .unwrap_or(0);
    i as u32
}

fn last_diff(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len() / 4;
    let i = a
        .chunks_exact(4)
        .rev()
        .zip(b.chunks_exact(4).rev())
        .position(|(p, q)| p != q);
    (n - 1 - i.unwrap_or(0)) as u32
}

/// Merges horizontally adjacent rectangles of equal rows in `out[start..]`.
fn merge_row(out: &mut Vec<Rect>, start: usize) {
    let mut w = start;
    for r in start..out.len() {
        let cur = out[r];
        if w > start {
            let prev = &mut out[w - 1];
            if prev.y == cur.y && prev.h == cur.h && prev.x + prev.w == cur.x {
                prev.w += cur.w;
                continue;
            }
        }
        out[w] = cur;
        w += 1;
    }
    out.truncate(w);
}

/// Extends rectangles above `out[cur..]` (the current tile row) downwards with rectangles of the
/// current row that continue them exactly (same x and width, touching).
fn merge_down(out: &mut Vec<Rect>, cur: usize) {
    let mut i = cur;
    while i < out.len() {
        let r = out[i];
        match (0..cur)
            .rev()
            .find(|&k| out[k].x == r.x && out[k].w == r.w && out[k].y + out[k].h == r.y)
        {
            Some(k) => {
                out[k].h += r.h;
                out.remove(i);
            }
            None => i += 1,
        }
    }
}

/// The viewer's copy of a remote monitor, BGRX.
#[derive(Debug, Default, Clone)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
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

    /// BGRX pixels, `width * 4` bytes per row.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Applies one update part. Returns whether the screen size changed (the whole buffer is then
    /// new). On error the buffer may hold part of the update but never reads or writes out of
    /// bounds.
    pub fn apply(&mut self, upd: &FrameUpdate) -> Result<bool, CodecError> {
        let (w, h) = (upd.width, upd.height);
        if u64::from(w) * u64::from(h) > MAX_PIXELS {
            return Err(CodecError::TooLarge {
                width: w,
                height: h,
            });
        }
        let mut expected: u64 = 0;
        for r in &upd.rects {
            if u64::from(r.x) + u64::from(r.w) > u64::from(w)
                || u64::from(r.y) + u64::from(r.h) > u64::from(h)
            {
                return Err(CodecError::OutOfBounds(*r));
            }
            expected += r.area() * 3;
        }
        // Parts never carry more than a part's worth plus one tile row band.
        let limit = (PART_RAW_BYTES as u64) * 2 + u64::from(w) * u64::from(TILE) * 3;
        if expected > limit {
            return Err(CodecError::DataLength {
                expected: expected as usize,
                got: 0,
            });
        }
        let expected = expected as usize;
        let raw = match upd.encoding {
            Encoding::Bgr24Zstd => zstd::bulk::decompress(&upd.data, expected)
                .map_err(|e| CodecError::Corrupt(e.to_string()))?,
        };
        if raw.len() != expected {
            return Err(CodecError::DataLength {
                expected,
                got: raw.len(),
            });
        }
        let resized = w != self.width || h != self.height;
        if resized {
            self.width = w;
            self.height = h;
            self.pixels = vec![0; w as usize * h as usize * 4];
        }
        let pitch = w as usize * 4;
        let mut src = raw.chunks_exact(3);
        for r in &upd.rects {
            for y in r.y..r.y + r.h {
                let off = y as usize * pitch + r.x as usize * 4;
                let row = &mut self.pixels[off..off + r.w as usize * 4];
                for (dst, s) in row.chunks_exact_mut(4).zip(&mut src) {
                    dst[..3].copy_from_slice(s);
                    dst[3] = 0;
                }
            }
        }
        Ok(resized)
    }

    /// RGBA bytes of a rectangle (for a texture upload); empty if it lies outside the buffer.
    pub fn region_rgba(&self, r: &Rect) -> Vec<u8> {
        if r.x + r.w > self.width || r.y + r.h > self.height {
            return Vec::new();
        }
        let pitch = self.width as usize * 4;
        let mut out = Vec::with_capacity(r.area() as usize * 4);
        for y in r.y..r.y + r.h {
            let off = y as usize * pitch + r.x as usize * 4;
            for px in self.pixels[off..off + r.w as usize * 4].chunks_exact(4) {
                out.extend_from_slice(&[px[2], px[1], px[0], 255]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(w: u32, h: u32, seed: u32) -> Vec<u8> {
        let mut v = vec![0u8; (w * h * 4) as usize];
        for (i, px) in v.chunks_exact_mut(4).enumerate() {
            let i = i as u32;
            px[0] = (i.wrapping_mul(31) ^ seed) as u8;
            px[1] = (i / w) as u8;
            px[2] = (i % w) as u8 ^ (seed as u8);
            px[3] = 0;
        }
        v
    }

    fn roundtrip(
        enc: &mut TileEncoder,
        fb: &mut Framebuffer,
        f: &FrameRef<'_>,
        seq: u64,
    ) -> Vec<Rect> {
        let rects = enc.diff(f, None).expect("diff");
        if rects.is_empty() {
            return rects;
        }
        for part in enc
            .encode(f, &rects, seq, Timing::default())
            .expect("encode")
        {
            let bytes = postcard::to_stdvec(&part).expect("ser");
            let part: FrameUpdate = postcard::from_bytes(&bytes).expect("de");
            fb.apply(&part).expect("apply");
        }
        rects
    }

    #[test]
    fn a_small_change_is_a_small_rectangle() {
        let (w, h) = (200, 100);
        let mut a = frame(w, h, 1);
        let mut enc = TileEncoder::new();
        let mut fb = Framebuffer::new();
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &a,
        };
        roundtrip(&mut enc, &mut fb, &f, 1);
        assert_eq!(fb.pixels(), &a[..]);
        // Change a 3x2 block at (40, 50).
        for y in 50..52 {
            for x in 40..43 {
                a[(y * w + x) as usize * 4] ^= 0xff;
            }
        }
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &a,
        };
        let rects = roundtrip(&mut enc, &mut fb, &f, 2);
        assert_eq!(
            rects,
            vec![Rect {
                x: 40,
                y: 50,
                w: 3,
                h: 2
            }]
        );
        assert_eq!(fb.pixels(), &a[..]);
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &a,
        };
        assert!(
            roundtrip(&mut enc, &mut fb, &f, 3).is_empty(),
            "no change, no rectangles"
        );
    }

    #[test]
    fn strided_frames_and_resizes_are_exact() {
        let mut enc = TileEncoder::new();
        let mut fb = Framebuffer::new();
        for (w, h) in [(33u32, 17u32), (64, 64), (1, 1), (100, 70)] {
            let stride = w as usize * 4 + 12;
            let packed = frame(w, h, w);
            let mut data = vec![0xaa; stride * h as usize];
            for y in 0..h as usize {
                data[y * stride..y * stride + w as usize * 4]
                    .copy_from_slice(&packed[y * w as usize * 4..(y + 1) * w as usize * 4]);
            }
            let f = FrameRef {
                width: w,
                height: h,
                stride,
                data: &data,
            };
            roundtrip(&mut enc, &mut fb, &f, 1);
            assert_eq!(fb.pixels(), &packed[..]);
        }
    }

    #[test]
    fn hostile_updates_are_refused() {
        let mut fb = Framebuffer::new();
        let base = FrameUpdate {
            seq: 1,
            part: 0,
            last: true,
            width: 10,
            height: 10,
            encoding: Encoding::Bgr24Zstd,
            rects: vec![Rect {
                x: 8,
                y: 0,
                w: 4,
                h: 1,
            }],
            data: zstd::bulk::compress(&[0u8; 12], 1).expect("zstd"),
            timing: Timing::default(),
        };
        assert!(matches!(fb.apply(&base), Err(CodecError::OutOfBounds(_))));
        let big = FrameUpdate {
            width: 100_000,
            height: 100_000,
            ..base.clone()
        };
        assert!(matches!(fb.apply(&big), Err(CodecError::TooLarge { .. })));
        let short = FrameUpdate {
            rects: vec![Rect {
                x: 0,
                y: 0,
                w: 5,
                h: 1,
            }],
            ..base.clone()
        };
        assert!(matches!(
            fb.apply(&short),
            Err(CodecError::DataLength { .. }) | Err(CodecError::Corrupt(_))
        ));
        let garbage = FrameUpdate {
            rects: vec![Rect {
                x: 0,
                y: 0,
                w: 4,
                h: 1,
            }],
            data: vec![1, 2, 3],
            ..base
        };
        assert!(matches!(fb.apply(&garbage), Err(CodecError::Corrupt(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn random_edits_converge(w in 1u32..90, h in 1u32..90, edits in prop::collection::vec((0u32..90, 0u32..90, 0u32..20, 0u32..20, any::<u8>()), 0..12)) {
            let mut cur = frame(w, h, 7);
            let mut enc = TileEncoder::new();
            let mut fb = Framebuffer::new();
            let f = FrameRef { width: w, height: h, stride: w as usize * 4, data: &cur };
            roundtrip(&mut enc, &mut fb, &f, 0);
            for (i, (x, y, ew, eh, v)) in edits.into_iter().enumerate() {
                for yy in y.min(h)..(y + eh).min(h) {
                    for xx in x.min(w)..(x + ew).min(w) {
                        cur[(yy * w + xx) as usize * 4 + 1] = v;
                    }
                }
                let f = FrameRef { width: w, height: h, stride: w as usize * 4, data: &cur };
                roundtrip(&mut enc, &mut fb, &f, i as u64 + 1);
                prop_assert_eq!(fb.pixels(), &cur[..]);
            }
        }
    }
}
