//! What travels on a screen stream, and the limits every decoder checks.

use serde::{Deserialize, Serialize};

/// Tile edge in pixels.
pub const TILE: u32 = 32;
/// Uncompressed pixel bytes per update part.
pub const PART_RAW_BYTES: usize = 1 << 20;
/// Largest screen a viewer accepts (8K UHD).
pub const MAX_PIXELS: u64 = 7680 * 4320;
/// Largest width or height of a remote screen (and of a texture most GPUs take).
pub const MAX_SIDE: u32 = 16384;
/// Most decoded pixel bytes one update part may carry (the encoder sends at most
/// [`PART_RAW_BYTES`] plus one band of tiles).
pub const MAX_PART_DECODED: usize = 4 << 20;
/// Most rectangles in one update part.
pub const MAX_PART_RECTS: usize = 8192;
/// Largest lossy rectangle (a JPEG, or one picture of video) a viewer decodes.
pub const MAX_LOSSY_BYTES: usize = 4 << 20;
/// Widest and tallest video picture (H.264 level 5.2, which every decoder takes): a region
/// larger than this goes as JPEG.
pub const MAX_VIDEO_SIDES: (u32, u32) = (3840, 2160);

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

    /// The part of the rectangle at (`x`, `y`) of `w` x `h` (which may lie partly at negative
    /// coordinates) inside `bounds`, if any.
    pub fn clipped(x: i64, y: i64, w: u64, h: u64, bounds: &Rect) -> Option<Rect> {
        let (bx0, by0) = (i64::from(bounds.x), i64::from(bounds.y));
        let (bx1, by1) = (bx0 + i64::from(bounds.w), by0 + i64::from(bounds.h));
        let x0 = x.max(bx0);
        let y0 = y.max(by0);
        let x1 = x.saturating_add(w.min(i64::MAX as u64) as i64).min(bx1);
        let y1 = y.saturating_add(h.min(i64::MAX as u64) as i64).min(by1);
        (x1 > x0 && y1 > y0).then(|| Rect {
            x: x0 as u32,
            y: y0 as u32,
            w: (x1 - x0) as u32,
            h: (y1 - y0) as u32,
        })
    }

    /// The part of this rectangle inside `o`, if any.
    pub fn intersect(&self, o: &Rect) -> Option<Rect> {
        Rect::clipped(
            i64::from(self.x),
            i64::from(self.y),
            u64::from(self.w),
            u64::from(self.h),
            o,
        )
    }

    /// This rectangle without `o`: at most four pieces (above, below, left and right of it).
    pub fn minus(&self, o: &Rect) -> Vec<Rect> {
        let Some(i) = self.intersect(o) else {
            return vec![*self];
        };
        let (x1, y1) = (self.x + self.w, self.y + self.h);
        let (ix1, iy1) = (i.x + i.w, i.y + i.h);
        [
            Rect {
                h: i.y - self.y,
                ..*self
            },
            Rect {
                y: iy1,
                h: y1 - iy1,
                ..*self
            },
            Rect {
                x: self.x,
                w: i.x - self.x,
                ..i
            },
            Rect {
                x: ix1,
                w: x1 - ix1,
                ..i
            },
        ]
        .into_iter()
        .filter(|r| r.w > 0 && r.h > 0)
        .collect()
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
    /// As [`Encoding::Bgr24Zstd`], but not compressed: for data too small or too random for
    /// zstd to shrink (a frame of zstd costs 9 bytes before any content).
    Bgr24,
    /// The rectangles' pixels as BGR rows (or palette indices, or predicted BGR residuals, as
    /// the part says per rectangle), concatenated, compressed with zstd.
    Bgr24Zstd,
    /// The part's rectangles, palettes, prediction flags, pixels (as [`Encoding::Bgr24`]) and
    /// glyph operations, packed into `data` by the stream's long-lived zstd context, which refers
    /// back to what earlier parts on the same stream carried (see [`super::StreamWriter`]). Only a
    /// [`super::StreamReader`] unpacks it; nothing else accepts it.
    Packed,
}

/// How a viewer wants its screen encoded.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Quality {
    /// Lossless, except regions that keep changing, which go lossy and are made exact again once
    /// they settle.
    #[default]
    Auto,
    /// Always lossless.
    Sharp,
    /// Lossy for every sizeable change (made exact again once it settles): least bandwidth.
    Smooth,
}

impl Quality {
    /// Name for menus and overlays.
    pub fn label(self) -> &'static str {
        match self {
            Quality::Auto => "Auto",
            Quality::Sharp => "Sharp",
            Quality::Smooth => "Smooth",
        }
    }
}

/// How a lossy rectangle is coded.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossyCodec {
    /// A JPEG file, exactly the rectangle's size: a picture on its own.
    Jpeg,
    /// One picture of the stream's H.264 video (an access unit of the Annex B byte stream),
    /// exactly the rectangle's size. Each picture may depend on the video's earlier ones: the
    /// video restarts with a key picture whenever its rectangle changes, and a stream carries
    /// one video at a time.
    H264,
}

/// A rectangle sent lossy.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LossyRect {
    /// Where it goes.
    pub rect: Rect,
    /// How `data` is coded.
    pub codec: LossyCodec,
    /// The coded picture.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// The host's clock reading for one frame, from which the viewer tells how old what it shows is.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// When the pixels were captured, microseconds since the Unix epoch. On the wire, the gap
    /// since the previous part's capture on the same stream (see [`super::StreamWriter`]): a
    /// byte to three instead of eight.
    pub captured_us: u64,
}

impl Timing {
    /// Timing of a frame captured at `captured_us`.
    pub fn captured(captured_us: u64) -> Self {
        Timing { captured_us }
    }
}

/// A rectangle's palette: up to 256 colours, which its data indexes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Colours {
    /// Colours given in full (BGR), indices 0 and up.
    pub full: Vec<[u8; 3]>,
    /// Colours given as a blend of `full[0]` and `full[1]` (the anti-aliased shades between a
    /// text colour and its background), a byte each instead of three: see [`Colours::blend`].
    /// Their indices follow the full colours'.
    ///
    /// With exactly two full colours, the single blend 0 (which would repeat `full[0]`) means
    /// every index is itself a weight: the palette is all 256 blends of its two colours (see
    /// [`Colours::alpha`]).
    #[serde(with = "serde_bytes")]
    pub blends: Vec<u8>,
}

impl Colours {
    /// Colours given in full only.
    pub fn full(full: Vec<[u8; 3]>) -> Self {
        Colours {
            full,
            blends: Vec::new(),
        }
    }

    /// The 256 blends of `c0` into `c1`, index `a` being [`Colours::blend`]`(c0, c1, a)`: a
    /// rectangle of anti-aliased text in more shades than four bits index, whose palette then
    /// costs 9 bytes however many shades it has.
    pub fn alpha(c0: [u8; 3], c1: [u8; 3]) -> Self {
        Colours {
            full: vec![c0, c1],
            blends: vec![0],
        }
    }

    /// Whether this is an [`Colours::alpha`] palette.
    pub fn is_alpha(&self) -> bool {
        self.full.len() == 2 && self.blends == [0]
    }

    /// How many colours.
    pub fn len(&self) -> usize {
        if self.is_alpha() {
            256
        } else {
            self.full.len() + self.blends.len()
        }
    }

    /// Whether there are none (the rectangle is BGR).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Weight `a` of `c1` against `c0`, per channel: `(c0 * (255 - a) + c1 * a + 127) / 255`.
    pub fn blend(c0: [u8; 3], c1: [u8; 3], a: u8) -> [u8; 3] {
        let a = u32::from(a);
        std::array::from_fn(|k| {
            ((u32::from(c0[k]) * (255 - a) + u32::from(c1[k]) * a + 127) / 255) as u8
        })
    }

    /// Whether blends, if any, have their two full colours.
    pub fn is_complete(&self) -> bool {
        self.blends.is_empty() || self.full.len() >= 2
    }

    /// Every colour in index order, or `None` if blends lack their two full colours.
    pub fn table(&self) -> Option<Vec<[u8; 3]>> {
        if self.is_alpha() {
            let (c0, c1) = (self.full[0], self.full[1]);
            return Some((0..=255).map(|a| Colours::blend(c0, c1, a)).collect());
        }
        let mut out = self.full.clone();
        if !self.blends.is_empty() {
            let (c0, c1) = (*self.full.first()?, *self.full.get(1)?);
            out.extend(self.blends.iter().map(|&a| Colours::blend(c0, c1, a)));
        }
        Some(out)
    }
}

/// A monitor's size in pixels.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScreenSize {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// One part of a frame update. A frame is presented when its `last` part has been applied.
///
/// On the wire (see [`FrameUpdate`]'s `Serialize`), a flag byte says which fields follow: the
/// two booleans, the encoding and whether the size, the pixels, the prediction flags, the lossy
/// rectangles and the glyph operations are there; a keystroke's update, which has no pixels of
/// its own, is then a few bytes of header and its glyph operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameUpdate {
    /// Frame sequence number; all parts of a frame share it (they follow each other on the
    /// stream). On the wire, the difference from the stream's previous part (see
    /// [`super::StreamWriter`]).
    pub seq: u64,
    /// Whether this is the frame's last part.
    pub last: bool,
    /// On a last part: the host asks the viewer to acknowledge the frame at once (its window of
    /// frames in flight is full). Without it, the viewer acknowledges with the next frame that
    /// asks, which covers every frame before it.
    pub ack: bool,
    /// The monitor's size; a change resets the viewer's framebuffer. On the wire, only when it
    /// differs from the stream's previous part (see [`super::StreamWriter`]).
    pub size: Option<ScreenSize>,
    /// Data encoding.
    pub encoding: Encoding,
    /// Rectangles whose pixels `data` holds, in order.
    pub rects: Vec<Rect>,
    /// Per rectangle of `rects`: empty for BGR pixels, or up to 256 colours whose indices the
    /// data holds instead, packed 0 (one colour), 1, 2, 4 or 8 bits per pixel (for 2, 4, 16 and
    /// 256 colours at most), rows padded to a byte. Text and UI, anti-aliased or not, compress
    /// far better this way.
    pub palettes: Vec<Colours>,
    /// Per rectangle of `rects` (or empty when none is): whether its BGR pixels are stored
    /// predicted, as residuals of the median edge detector with the green residual subtracted
    /// from blue and red (see the `predict` module). Photo-like rectangles are; a rectangle with
    /// a palette never is.
    pub predicted: Vec<bool>,
    /// Encoded pixels.
    pub data: Vec<u8>,
    /// Rectangles sent lossy, applied after `rects`.
    pub lossy: Vec<LossyRect>,
    /// Glyph cache operations, applied after the pixels (see [`super::GlyphOp`] and
    /// [`super::encode_ops`]); empty when there are none.
    pub glyphs: Vec<u8>,
    /// When the frame was captured and encoded.
    pub timing: Timing,
}

/// Bits of [`FrameUpdate`]'s flag byte on the wire.
mod flag {
    pub(super) const LAST: u8 = 1;
    pub(super) const ACK: u8 = 1 << 1;
    pub(super) const SIZE: u8 = 1 << 2;
    pub(super) const ZSTD: u8 = 1 << 3;
    pub(super) const PIXELS: u8 = 1 << 4;
    pub(super) const PREDICTED: u8 = 1 << 5;
    pub(super) const LOSSY: u8 = 1 << 6;
    pub(super) const GLYPHS: u8 = 1 << 7;
}

impl FrameUpdate {
    fn has_pixels(&self) -> bool {
        !(self.rects.is_empty() && self.palettes.is_empty() && self.data.is_empty())
    }

    fn flags(&self) -> u8 {
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        bit(self.last, flag::LAST)
            | bit(self.ack, flag::ACK)
            | bit(self.size.is_some(), flag::SIZE)
            | bit(
                self.encoding == Encoding::Packed
                    || (self.encoding == Encoding::Bgr24Zstd && self.has_pixels()),
                flag::ZSTD,
            )
            | bit(
                self.encoding != Encoding::Packed && self.has_pixels(),
                flag::PIXELS,
            )
            | bit(!self.predicted.is_empty(), flag::PREDICTED)
            | bit(!self.lossy.is_empty(), flag::LOSSY)
            | bit(!self.glyphs.is_empty(), flag::GLYPHS)
    }
}

/// The flag byte, the sequence number and the capture time, then only the fields the flags name,
/// in declaration order. A packed part ([`Encoding::Packed`]) has the zstd flag without the
/// pixels flag, and one field of packed bytes where the rectangles, palettes and pixels would be.
impl Serialize for FrameUpdate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let f = self.flags();
        let has = |b: u8| f & b != 0;
        let fields = 3
            + usize::from(has(flag::SIZE))
            + 3 * usize::from(has(flag::PIXELS))
            + usize::from(self.encoding == Encoding::Packed)
            + usize::from(has(flag::PREDICTED))
            + usize::from(has(flag::LOSSY))
            + usize::from(has(flag::GLYPHS));
        let mut t = s.serialize_tuple(fields)?;
        t.serialize_element(&f)?;
        t.serialize_element(&self.seq)?;
        t.serialize_element(&self.timing.captured_us)?;
        if let Some(size) = &self.size {
            t.serialize_element(size)?;
        }
        if has(flag::PIXELS) {
            t.serialize_element(&self.rects)?;
            t.serialize_element(&self.palettes)?;
            t.serialize_element(serde_bytes::Bytes::new(&self.data))?;
        } else if self.encoding == Encoding::Packed {
            t.serialize_element(serde_bytes::Bytes::new(&self.data))?;
        }
        if has(flag::PREDICTED) {
            t.serialize_element(&self.predicted)?;
        }
        if has(flag::LOSSY) {
            t.serialize_element(&self.lossy)?;
        }
        if has(flag::GLYPHS) {
            t.serialize_element(serde_bytes::Bytes::new(&self.glyphs))?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for FrameUpdate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = FrameUpdate;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a frame update")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FrameUpdate, A::Error> {
                let mut n = 0;
                macro_rules! field {
                    () => {{
                        n += 1;
                        seq.next_element()?
                            .ok_or_else(|| serde::de::Error::invalid_length(n - 1, &self))?
                    }};
                }
                let f: u8 = field!();
                let has = |b: u8| f & b != 0;
                let seq_no: u64 = field!();
                let captured_us: u64 = field!();
                let size = if has(flag::SIZE) {
                    Some(field!())
                } else {
                    None
                };
                let packed = has(flag::ZSTD) && !has(flag::PIXELS);
                let (rects, palettes, data) = if has(flag::PIXELS) {
                    let (rects, palettes) = (field!(), field!());
                    let data: serde_bytes::ByteBuf = field!();
                    (rects, palettes, data.into_vec())
                } else if packed {
                    let data: serde_bytes::ByteBuf = field!();
                    (Vec::new(), Vec::new(), data.into_vec())
                } else {
                    Default::default()
                };
                let predicted = if has(flag::PREDICTED) {
                    field!()
                } else {
                    Vec::new()
                };
                let lossy = if has(flag::LOSSY) {
                    field!()
                } else {
                    Vec::new()
                };
                let glyphs = if has(flag::GLYPHS) {
                    let g: serde_bytes::ByteBuf = field!();
                    g.into_vec()
                } else {
                    Vec::new()
                };
                Ok(FrameUpdate {
                    seq: seq_no,
                    last: has(flag::LAST),
                    ack: has(flag::ACK),
                    size,
                    encoding: match (has(flag::ZSTD), packed) {
                        (_, true) => Encoding::Packed,
                        (true, false) => Encoding::Bgr24Zstd,
                        (false, false) => Encoding::Bgr24,
                    },
                    rects,
                    palettes,
                    predicted,
                    data,
                    lossy,
                    glyphs,
                    timing: Timing { captured_us },
                })
            }
        }
        // The largest number of fields; postcard reads only those the flags name.
        d.deserialize_tuple(10, Visit)
    }
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
    pub(super) fn row(&self, y: u32, x0: u32, x1: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start + x0 as usize * 4..start + x1 as usize * 4]
    }

    pub(super) fn is_valid(&self) -> bool {
        self.stride >= self.width as usize * 4
            && self.data.len() >= self.stride * self.height as usize
    }
}

/// Why an update could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The stream's first part does not say the screen's size.
    #[error("the screen size was never given")]
    NoSize,
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
    /// A part carries video, and this viewer has no video decoder.
    #[error("video arrived and this viewer has no video decoder")]
    NoVideoDecoder,
    /// The video codec failed.
    #[error("video: {0}")]
    Video(String),
}
