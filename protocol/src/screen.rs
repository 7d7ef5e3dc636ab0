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
/// Largest width or height of a remote screen (and of a texture most GPUs take).
pub const MAX_SIDE: u32 = 16384;
/// Most decoded pixel bytes one update part may carry (the encoder sends at most
/// [`PART_RAW_BYTES`] plus one band of tiles).
pub const MAX_PART_DECODED: usize = 4 << 20;
/// Most rectangles in one update part.
pub const MAX_PART_RECTS: usize = 8192;
/// zstd level for screen data.
const ZSTD_LEVEL: i32 = 1;
/// JPEG quality of lossy rectangles.
const JPEG_QUALITY: u8 = 70;
/// A tile that changed this many times, each within [`MOTION_GAP_MS`] of the last, is in motion.
const MOTION_CHANGES: u8 = 2;
/// See [`MOTION_CHANGES`].
const MOTION_GAP_MS: u64 = 150;
/// A lossy tile unchanged for this long is sent again losslessly.
pub const SETTLE_MS: u64 = 250;
/// Smallest change sent lossy in [`Quality::Smooth`] (a keystroke stays lossless).
const SMOOTH_MIN_AREA: u64 = 64 * 64;
/// Smallest change sent lossy in [`Quality::Auto`].
const AUTO_MIN_AREA: u64 = 32 * 32 * 2;
/// Largest lossy rectangle a viewer decodes.
const MAX_JPEG_BYTES: usize = 4 << 20;

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

/// A rectangle sent as a JPEG image.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct JpegRect {
    /// Where it goes.
    pub rect: Rect,
    /// The JPEG file, exactly `rect.w` x `rect.h`.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Host clock readings for one frame, microseconds since the Unix epoch.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// When the pixels were captured.
    pub captured_us: u64,
    /// When encoding finished.
    pub encoded_us: u64,
    /// When the host started writing the frame to the network.
    pub sent_us: u64,
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
    /// Per rectangle of `rects`: empty for BGR pixels, or up to 16 colours (BGR) whose indices
    /// the data holds instead, packed 0 (one colour), 1, 2 or 4 bits per pixel, rows padded to a
    /// byte. Text and UI compress far better this way.
    pub palettes: Vec<Vec<[u8; 3]>>,
    /// Encoded pixels.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Rectangles sent lossy, applied after `rects`.
    pub lossy: Vec<JpegRect>,
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
    quality: Quality,
    /// Per tile: consecutive quick changes, time of the last change (ms), and whether the viewer
    /// holds a lossy version of it.
    heat: Vec<u8>,
    changed_at: Vec<u64>,
    lossy: Vec<bool>,
    /// The link is slow (frames take long to be acknowledged): in Auto, any sizeable photo-like
    /// change goes lossy at once instead of waiting to be seen moving.
    congested: bool,
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

    /// Sets the quality mode; lossy tiles already sent are still refined.
    pub fn set_quality(&mut self, q: Quality) {
        self.quality = q;
    }

    /// Tells the encoder whether the link is slow.
    pub fn set_congested(&mut self, congested: bool) {
        self.congested = congested;
    }

    /// The quality mode.
    pub fn quality(&self) -> Quality {
        self.quality
    }

    fn tiles_w(&self) -> u32 {
        self.width.div_ceil(TILE)
    }

    fn tiles_of(&self, r: &Rect) -> impl Iterator<Item = usize> + '_ {
        let tw = self.tiles_w();
        let (tx0, tx1) = (r.x / TILE, (r.x + r.w.max(1) - 1) / TILE);
        let (ty0, ty1) = (r.y / TILE, (r.y + r.h.max(1) - 1) / TILE);
        (ty0..=ty1).flat_map(move |ty| (tx0..=tx1).map(move |tx| (ty * tw + tx) as usize))
    }

    /// Whether any tile is waiting to be refined.
    pub fn has_lossy(&self) -> bool {
        self.lossy.iter().any(|l| *l)
    }

    /// Splits changed rectangles into lossless and lossy ones, per the quality mode and the
    /// tiles' motion, and remembers which tiles the viewer gets lossy.
    ///
    /// Content with few colours (text, UI) stays lossless in every mode: its palette encoding is
    /// smaller than JPEG and exact.
    fn classify(&mut self, frame: &FrameRef<'_>, rects: &[Rect]) -> (Vec<Rect>, Vec<Rect>) {
        let (mut sharp, mut soft) = (Vec::new(), Vec::new());
        for r in rects {
            let candidate = match self.quality {
                Quality::Sharp => false,
                Quality::Smooth => r.area() >= SMOOTH_MIN_AREA,
                Quality::Auto => {
                    r.area() >= AUTO_MIN_AREA
                        && (self.congested
                            || self
                                .tiles_of(r)
                                .all(|t| self.heat.get(t).is_some_and(|h| *h >= MOTION_CHANGES)))
                }
            };
            let lossy = candidate && palette_of(frame, r).is_none();
            if lossy {
                let tiles: Vec<usize> = self.tiles_of(r).collect();
                for t in tiles {
                    if let Some(l) = self.lossy.get_mut(t) {
                        *l = true;
                    }
                }
                soft.push(*r);
            } else {
                sharp.push(*r);
            }
        }
        (sharp, soft)
    }

    /// Lossy tiles that have not changed for [`SETTLE_MS`], encoded losslessly from what was
    /// captured last (which is what the screen still shows). `None` if none is due.
    pub fn refine(
        &mut self,
        now_ms: u64,
        seq: u64,
        timing: Timing,
    ) -> Result<Option<Vec<FrameUpdate>>, CodecError> {
        if !self.has_prev {
            return Ok(None);
        }
        let tw = self.tiles_w();
        let th = self.height.div_ceil(TILE);
        let mut rects = Vec::new();
        for ty in 0..th {
            let row_start = rects.len();
            for tx in 0..tw {
                let t = (ty * tw + tx) as usize;
                if self.lossy[t] && now_ms.saturating_sub(self.changed_at[t]) >= SETTLE_MS {
                    self.lossy[t] = false;
                    let (x, y) = (tx * TILE, ty * TILE);
                    rects.push(Rect {
                        x,
                        y,
                        w: TILE.min(self.width - x),
                        h: TILE.min(self.height - y),
                    });
                }
            }
            merge_row(&mut rects, row_start);
            merge_down(&mut rects, row_start);
        }
        if rects.is_empty() {
            return Ok(None);
        }
        let frame = FrameRef {
            width: self.width,
            height: self.height,
            stride: self.width as usize * 4,
            data: &self.prev,
        };
        encode_parts(&frame, &rects, &[], seq, timing).map(Some)
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
        now_ms: u64,
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
            let tiles = (w.div_ceil(TILE) * h.div_ceil(TILE)) as usize;
            self.heat = vec![0; tiles];
            self.changed_at = vec![now_ms; tiles];
            self.lossy = vec![false; tiles];
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
                if let Some(m) = &mask
                    && !m[(ty * tw + tx) as usize]
                {
                    continue;
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
                    let t = (ty * tw + tx) as usize;
                    let quick = now_ms.saturating_sub(self.changed_at[t]) <= MOTION_GAP_MS;
                    self.heat[t] = if quick {
                        self.heat[t].saturating_add(1)
                    } else {
                        1
                    };
                    self.changed_at[t] = now_ms;
                }
            }
            merge_row(&mut out, row_start);
            merge_down(&mut out, row_start);
        }
        Ok(out)
    }

    /// Encodes the given rectangles of `frame` as update parts with sequence number `seq`, each
    /// lossless or lossy as the quality mode and the motion of its tiles decide.
    pub fn encode(
        &mut self,
        frame: &FrameRef<'_>,
        rects: &[Rect],
        seq: u64,
        timing: Timing,
    ) -> Result<Vec<FrameUpdate>, CodecError> {
        if !frame.is_valid() {
            return Err(CodecError::BadFrame);
        }
        let (sharp, soft) = self.classify(frame, rects);
        encode_parts(frame, &sharp, &soft, seq, timing)
    }
}

/// Most colours a palette rectangle has.
const MAX_PALETTE: usize = 16;

/// Bits per pixel index for a palette of `n` colours.
fn index_bits(n: usize) -> usize {
    match n {
        0 | 1 => 0,
        2 => 1,
        3 | 4 => 2,
        _ => 4,
    }
}

/// Bytes a rectangle takes in the (uncompressed) data: BGR, or packed palette indices.
fn encoded_len(r: &Rect, colours: usize) -> usize {
    if colours == 0 {
        r.area() as usize * 3
    } else {
        (r.w as usize * index_bits(colours)).div_ceil(8) * r.h as usize
    }
}

/// The colours of a rectangle, if it has at most [`MAX_PALETTE`].
fn palette_of(frame: &FrameRef<'_>, r: &Rect) -> Option<Vec<[u8; 3]>> {
    let mut pal: Vec<[u8; 3]> = Vec::new();
    let mut last = None;
    for y in r.y..r.y + r.h {
        for px in frame.row(y, r.x, r.x + r.w).chunks_exact(4) {
            let c = [px[0], px[1], px[2]];
            if last == Some(c) {
                continue;
            }
            last = Some(c);
            if !pal.contains(&c) {
                if pal.len() == MAX_PALETTE {
                    return None;
                }
                pal.push(c);
            }
        }
    }
    Some(pal)
}

/// Appends a rectangle's packed palette indices.
fn pack_indices(frame: &FrameRef<'_>, r: &Rect, pal: &[[u8; 3]], out: &mut Vec<u8>) {
    let bits = index_bits(pal.len());
    if bits == 0 {
        return;
    }
    let row_bytes = (r.w as usize * bits).div_ceil(8);
    let mut last = ([0u8; 3], 0usize);
    for y in r.y..r.y + r.h {
        let start = out.len();
        out.resize(start + row_bytes, 0);
        for (x, px) in frame.row(y, r.x, r.x + r.w).chunks_exact(4).enumerate() {
            let c = [px[0], px[1], px[2]];
            let idx = if c == last.0 {
                last.1
            } else {
                let i = pal.iter().position(|p| *p == c).unwrap_or(0);
                last = (c, i);
                i
            };
            out[start + x * bits / 8] |= (idx as u8) << (8 - bits - (x * bits) % 8);
        }
    }
}

/// Rows of JPEG bands; a multiple of 16 so 4:2:0 blocks never straddle two bands.
const JPEG_BAND_ROWS: u32 = 256;

/// Runs `f` on every item, on up to as many threads as the machine has cores.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    items
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, it)| (i, f(it)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            if let Ok(done) = h.join() {
                for (i, r) in done {
                    out[i] = Some(r);
                }
            }
        }
    });
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| f(&items[0])))
        .collect()
}

/// Splits `r` into bands of at most `rows` rows.
fn bands(r: Rect, rows: u32) -> impl Iterator<Item = Rect> {
    let rows = rows.max(1);
    (r.y..r.y + r.h).step_by(rows as usize).map(move |y| Rect {
        x: r.x,
        y,
        w: r.w,
        h: rows.min(r.y + r.h - y),
    })
}

/// Encodes rectangles of `frame`: `sharp` losslessly, `soft` as JPEG. Big rectangles are cut
/// into bands so that no part exceeds [`PART_RAW_BYTES`] by more than a band, and parts and bands
/// are compressed on all cores.
fn encode_parts(
    frame: &FrameRef<'_>,
    sharp: &[Rect],
    soft: &[Rect],
    seq: u64,
    timing: Timing,
) -> Result<Vec<FrameUpdate>, CodecError> {
    if !frame.is_valid() {
        return Err(CodecError::BadFrame);
    }
    for r in sharp.iter().chain(soft) {
        if r.x + r.w > frame.width || r.y + r.h > frame.height || r.w > u32::from(u16::MAX) {
            return Err(CodecError::OutOfBounds(*r));
        }
    }
    // Lossless: gather parts of raw BGR.
    type Chunk = (Vec<Rect>, Vec<Vec<[u8; 3]>>, Vec<u8>);
    let mut chunks: Vec<Chunk> = Vec::new();
    let (mut rects, mut pals, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for r in sharp {
        let rows = (PART_RAW_BYTES / (r.w as usize * 3).max(1)).max(1) as u32;
        for band in bands(*r, rows) {
            match palette_of(frame, &band) {
                Some(pal) => {
                    pack_indices(frame, &band, &pal, &mut raw);
                    pals.push(pal);
                }
                None => {
                    for y in band.y..band.y + band.h {
                        for px in frame.row(y, band.x, band.x + band.w).chunks_exact(4) {
                            raw.extend_from_slice(&px[..3]);
                        }
                    }
                    pals.push(Vec::new());
                }
            }
            rects.push(band);
            if raw.len() >= PART_RAW_BYTES || rects.len() >= MAX_PART_RECTS {
                chunks.push((
                    std::mem::take(&mut rects),
                    std::mem::take(&mut pals),
                    std::mem::take(&mut raw),
                ));
            }
        }
    }
    if !rects.is_empty() {
        chunks.push((rects, pals, raw));
    }
    let compressed = parallel_map(&chunks, |(_, _, raw)| zstd::bulk::compress(raw, ZSTD_LEVEL));
    // Lossy: JPEG bands.
    let jpeg_bands: Vec<Rect> = soft
        .iter()
        .flat_map(|r| bands(*r, JPEG_BAND_ROWS))
        .collect();
    let jpegs = parallel_map(&jpeg_bands, |r| {
        let mut pixels = Vec::with_capacity(r.area() as usize * 4);
        for y in r.y..r.y + r.h {
            pixels.extend_from_slice(frame.row(y, r.x, r.x + r.w));
        }
        let mut data = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut data, JPEG_QUALITY);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        enc.encode(
            &pixels,
            r.w as u16,
            r.h as u16,
            jpeg_encoder::ColorType::Bgra,
        )
        .map(|()| data)
    });

    let new_part = |index: usize| FrameUpdate {
        seq,
        part: u32::try_from(index).unwrap_or(u32::MAX),
        last: false,
        width: frame.width,
        height: frame.height,
        encoding: Encoding::Bgr24Zstd,
        rects: Vec::new(),
        palettes: Vec::new(),
        data: Vec::new(),
        lossy: Vec::new(),
        timing,
    };
    let mut parts = Vec::new();
    for ((rects, palettes, _), data) in chunks.into_iter().zip(compressed) {
        let mut p = new_part(parts.len());
        p.rects = rects;
        p.palettes = palettes;
        p.data = data.map_err(|e| CodecError::Corrupt(e.to_string()))?;
        parts.push(p);
    }
    let mut cur = new_part(parts.len());
    let mut jpeg_bytes = 0;
    for (rect, data) in jpeg_bands.into_iter().zip(jpegs) {
        let data = data.map_err(|e| CodecError::Corrupt(e.to_string()))?;
        jpeg_bytes += data.len();
        cur.lossy.push(JpegRect { rect, data });
        if jpeg_bytes >= PART_RAW_BYTES || cur.lossy.len() >= MAX_PART_RECTS {
            jpeg_bytes = 0;
            parts.push(std::mem::replace(&mut cur, new_part(parts.len() + 1)));
        }
    }
    if !cur.lossy.is_empty() || parts.is_empty() {
        parts.push(cur);
    }
    if let Some(p) = parts.last_mut() {
        p.last = true;
    }
    Ok(parts)
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
        let mut expected: u64 = 0;
        // Every pixel costs work to paint, even a one-colour one that costs no bytes: the
        // rectangles of a part cover the screen at most twice (lossless, then lossy).
        let mut area: u64 = 0;
        let screen = u64::from(w) * u64::from(h);
        if !upd.palettes.is_empty() && upd.palettes.len() != upd.rects.len() {
            return Err(CodecError::Corrupt(
                "palette list does not match the rectangles".into(),
            ));
        }
        let inside = |r: &Rect| {
            r.w > 0
                && r.h > 0
                && u64::from(r.x) + u64::from(r.w) <= u64::from(w)
                && u64::from(r.y) + u64::from(r.h) <= u64::from(h)
        };
        for (i, r) in upd.rects.iter().enumerate() {
            if !inside(r) {
                return Err(CodecError::OutOfBounds(*r));
            }
            let colours = upd.palettes.get(i).map_or(0, Vec::len);
            if colours > MAX_PALETTE {
                return Err(CodecError::Corrupt(format!("palette of {colours} colours")));
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
        let expected = expected as usize;
        for j in &upd.lossy {
            let r = j.rect;
            if !inside(&r) {
                return Err(CodecError::OutOfBounds(r));
            }
            area += r.area();
            if j.data.len() > MAX_JPEG_BYTES {
                return Err(CodecError::Corrupt(format!(
                    "lossy rectangle of {} bytes",
                    j.data.len()
                )));
            }
        }
        if area > screen * 2 {
            return Err(CodecError::Corrupt(format!(
                "rectangles cover {area} pixels of a {w}x{h} screen"
            )));
        }
        let raw = if upd.rects.is_empty() {
            Vec::new()
        } else {
            match upd.encoding {
                Encoding::Bgr24Zstd => zstd::bulk::decompress(&upd.data, expected)
                    .map_err(|e| CodecError::Corrupt(e.to_string()))?,
            }
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
        let mut at = 0usize;
        for (i, r) in upd.rects.iter().enumerate() {
            let palette = upd.palettes.get(i).filter(|p| !p.is_empty());
            let len = encoded_len(r, palette.map_or(0, Vec::len));
            let src = &raw[at..at + len];
            at += len;
            match palette {
                None => {
                    let mut px = src.chunks_exact(3);
                    for y in r.y..r.y + r.h {
                        let off = y as usize * pitch + r.x as usize * 4;
                        let row = &mut self.pixels[off..off + r.w as usize * 4];
                        for (dst, s) in row.chunks_exact_mut(4).zip(&mut px) {
                            dst[..3].copy_from_slice(s);
                            dst[3] = 0;
                        }
                    }
                }
                Some(pal) => {
                    let bits = index_bits(pal.len());
                    let row_bytes = (r.w as usize * bits).div_ceil(8);
                    for (yy, y) in (r.y..r.y + r.h).enumerate() {
                        let off = y as usize * pitch + r.x as usize * 4;
                        let row = &mut self.pixels[off..off + r.w as usize * 4];
                        let line = &src[yy * row_bytes..(yy + 1) * row_bytes];
                        for (x, dst) in row.chunks_exact_mut(4).enumerate() {
                            let idx = if bits == 0 {
                                0
                            } else {
                                (line[x * bits / 8] >> (8 - bits - (x * bits) % 8)) as usize
                                    & ((1 << bits) - 1)
                            };
                            let c = pal.get(idx).copied().unwrap_or([0, 0, 0]);
                            dst.copy_from_slice(&[c[0], c[1], c[2], 0]);
                        }
                    }
                }
            }
        }
        for j in &upd.lossy {
            let r = j.rect;
            let rgb = decode_jpeg(&j.data, r.w as usize, r.h as usize)?;
            for y in 0..r.h as usize {
                let off = (r.y as usize + y) * pitch + r.x as usize * 4;
                let row = &mut self.pixels[off..off + r.w as usize * 4];
                let line = &rgb[y * r.w as usize * 3..(y + 1) * r.w as usize * 3];
                for (dst, s) in row.chunks_exact_mut(4).zip(line.chunks_exact(3)) {
                    dst.copy_from_slice(&[s[2], s[1], s[0], 0]);
                }
            }
        }
        Ok(resized)
    }

    /// RGBA bytes of a rectangle (for a texture upload); empty if it is empty or lies outside
    /// the buffer.
    pub fn region_rgba(&self, r: &Rect) -> Vec<u8> {
        if r.w == 0
            || r.h == 0
            || u64::from(r.x) + u64::from(r.w) > u64::from(self.width)
            || u64::from(r.y) + u64::from(r.h) > u64::from(self.height)
        {
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
    use crate::msg::ScreenMsg;
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
        let rects = enc.diff(f, None, seq * 1000).expect("diff");
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
            palettes: Vec::new(),
            lossy: Vec::new(),
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

    fn empty_update(width: u32, height: u32) -> FrameUpdate {
        FrameUpdate {
            seq: 1,
            part: 0,
            last: true,
            width,
            height,
            encoding: Encoding::Bgr24Zstd,
            rects: Vec::new(),
            palettes: Vec::new(),
            data: Vec::new(),
            lossy: Vec::new(),
            timing: Timing::default(),
        }
    }

    #[test]
    fn a_screen_wider_than_any_texture_is_refused() {
        let mut fb = Framebuffer::new();
        // 1,000,000 x 1 has few pixels but no GPU takes such a texture.
        assert!(matches!(
            fb.apply(&empty_update(1_000_000, 1)),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(fb.apply(&empty_update(MAX_SIDE, 1)).is_ok());
        assert!(matches!(
            fb.apply(&empty_update(1, MAX_SIDE + 1)),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_rectangles_are_refused() {
        let mut fb = Framebuffer::new();
        let mut upd = empty_update(100, 100);
        upd.rects = vec![Rect {
            x: 0,
            y: 0,
            w: 0,
            h: 10,
        }];
        upd.palettes = vec![vec![[1, 2, 3]]];
        assert!(matches!(fb.apply(&upd), Err(CodecError::OutOfBounds(_))));
        assert!(
            fb.region_rgba(&Rect {
                x: 0,
                y: 0,
                w: 0,
                h: 5
            })
            .is_empty()
        );
    }

    #[test]
    fn a_part_cannot_inflate_past_a_constant_cap() {
        // 97 kB of zstd announcing a 16384 x 16384 BGR rectangle: refused before inflating.
        let mut fb = Framebuffer::new();
        let mut upd = empty_update(MAX_SIDE, 2000);
        upd.rects = vec![Rect {
            x: 0,
            y: 0,
            w: MAX_SIDE,
            h: 2000,
        }];
        upd.data = zstd::bulk::compress(&vec![0u8; 8 << 20], 19).expect("zstd");
        assert!(matches!(fb.apply(&upd), Err(CodecError::DataLength { .. })));
    }

    #[test]
    fn free_one_colour_rectangles_cannot_pile_up() {
        let mut fb = Framebuffer::new();
        let full = Rect {
            x: 0,
            y: 0,
            w: 1920,
            h: 1080,
        };
        // A million one-colour full-screen rectangles cost no bytes but a lot of painting.
        let mut upd = empty_update(1920, 1080);
        upd.rects = vec![full; MAX_PART_RECTS + 1];
        upd.palettes = vec![vec![[9, 9, 9]]; MAX_PART_RECTS + 1];
        assert!(matches!(fb.apply(&upd), Err(CodecError::Corrupt(_))));
        // Three times the screen in one part is refused too.
        upd.rects = vec![full; 3];
        upd.palettes = vec![vec![[9, 9, 9]]; 3];
        assert!(matches!(fb.apply(&upd), Err(CodecError::Corrupt(m)) if m.contains("cover")));
        upd.rects = vec![full; 1];
        upd.palettes = vec![vec![[9, 9, 9]]; 1];
        assert!(fb.apply(&upd).is_ok());
    }

    #[test]
    fn many_small_one_colour_tiles_are_split_into_acceptable_parts() {
        // A screen of one-colour tiles that do not merge: the encoder keeps parts within the
        // viewer's rectangle cap.
        let (w, h) = (4096u32, 2176u32);
        let mut px = vec![0u8; (w * h * 4) as usize];
        for (i, p) in px.chunks_exact_mut(4).enumerate() {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let v = (((x / TILE) + (y / TILE)) % 2) as u8 * 200;
            p.copy_from_slice(&[v, v, v, 0]);
        }
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &px,
        };
        let tiles: Vec<Rect> = (0..h / TILE)
            .flat_map(|ty| {
                (0..w / TILE).map(move |tx| Rect {
                    x: tx * TILE,
                    y: ty * TILE,
                    w: TILE,
                    h: TILE,
                })
            })
            .collect();
        assert!(tiles.len() > MAX_PART_RECTS);
        let parts = encode_parts(&f, &tiles, &[], 1, Timing::default()).expect("encode");
        assert!(parts.len() >= 2);
        let mut fb = Framebuffer::new();
        for p in &parts {
            assert!(p.rects.len() <= MAX_PART_RECTS);
            fb.apply(p).expect("apply");
        }
        assert_eq!(fb.pixels(), &px[..]);
    }

    #[test]
    fn few_colour_rectangles_travel_as_palettes_exactly() {
        let (w, h) = (100u32, 40u32);
        for colours in [1u32, 2, 3, 4, 5, 16, 17] {
            let mut a = vec![0u8; (w * h * 4) as usize];
            for (i, px) in a.chunks_exact_mut(4).enumerate() {
                let c = (i as u32 * 7 + i as u32 / 13) % colours;
                px.copy_from_slice(&[(c * 15) as u8, 255 - (c * 9) as u8, (c * 3) as u8, 0]);
            }
            let mut enc = TileEncoder::new();
            enc.set_quality(Quality::Sharp);
            let f = FrameRef {
                width: w,
                height: h,
                stride: w as usize * 4,
                data: &a,
            };
            let rects = enc.diff(&f, None, 0).expect("diff");
            let parts = enc
                .encode(&f, &rects, 1, Timing::default())
                .expect("encode");
            let used_palette = parts
                .iter()
                .any(|p| p.palettes.iter().any(|q| !q.is_empty()));
            assert_eq!(used_palette, colours <= 16, "{colours} colours");
            let mut fb = Framebuffer::new();
            for p in &parts {
                fb.apply(p).expect("apply");
            }
            assert_eq!(fb.pixels(), &a[..], "{colours} colours");
        }
    }

    #[test]
    fn a_whole_1080p_change_is_cut_into_parts_the_viewer_accepts() {
        let (w, h) = (1920u32, 1080u32);
        let mut enc = TileEncoder::new();
        enc.set_quality(Quality::Sharp);
        let mut fb = Framebuffer::new();
        let a = frame(w, h, 1);
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &a,
        };
        roundtrip(&mut enc, &mut fb, &f, 1);
        let b = frame(w, h, 2);
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &b,
        };
        let rects = enc.diff(&f, None, 5).expect("diff");
        let parts = enc
            .encode(&f, &rects, 2, Timing::default())
            .expect("encode");
        assert!(parts.len() > 2, "{} parts", parts.len());
        for p in &parts {
            let bytes = postcard::to_stdvec(&ScreenMsg::Update(p.clone())).expect("ser");
            assert!(bytes.len() < crate::frame::MEDIA_MAX_FRAME);
            fb.apply(p).expect("apply");
        }
        assert_eq!(fb.pixels(), &b[..]);
    }

    #[test]
    fn motion_goes_lossy_then_settles_back_to_exact() {
        let (w, h) = (256u32, 128u32);
        let mut enc = TileEncoder::new();
        let mut fb = Framebuffer::new();
        let mut t = 0u64;
        let mut lossy_seen = false;
        for i in 0..8u32 {
            let cur = frame(w, h, i * 7919);
            let f = FrameRef {
                width: w,
                height: h,
                stride: w as usize * 4,
                data: &cur,
            };
            let rects = enc.diff(&f, None, t).expect("diff");
            for part in enc
                .encode(&f, &rects, u64::from(i), Timing::default())
                .expect("encode")
            {
                lossy_seen |= !part.lossy.is_empty();
                fb.apply(&part).expect("apply");
            }
            t += 33;
        }
        assert!(
            lossy_seen,
            "a screen that keeps changing goes lossy in Auto"
        );
        assert!(enc.has_lossy());
        let last = frame(w, h, 7 * 7919);
        assert_ne!(fb.pixels(), &last[..], "lossy pixels are approximate");
        assert!(
            enc.refine(t, 99, Timing::default())
                .expect("refine")
                .is_none(),
            "not settled yet"
        );
        let parts = enc
            .refine(t + SETTLE_MS, 100, Timing::default())
            .expect("refine")
            .expect("due");
        for p in &parts {
            assert!(p.lossy.is_empty());
            fb.apply(p).expect("apply");
        }
        assert_eq!(fb.pixels(), &last[..], "refined back to exact");
        assert!(!enc.has_lossy());
    }

    #[test]
    fn a_slow_link_makes_auto_go_lossy_at_once() {
        let (w, h) = (256u32, 128u32);
        let mut enc = TileEncoder::new();
        let mut fb = Framebuffer::new();
        let a = frame(w, h, 1);
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &a,
        };
        roundtrip(&mut enc, &mut fb, &f, 1);
        enc.set_congested(true);
        let b = frame(w, h, 2);
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &b,
        };
        let rects = enc.diff(&f, None, 5000).expect("diff");
        let parts = enc
            .encode(&f, &rects, 2, Timing::default())
            .expect("encode");
        assert!(
            parts.iter().any(|p| !p.lossy.is_empty()),
            "a single change goes lossy on a slow link"
        );
    }

    #[test]
    fn sharp_never_goes_lossy_and_smooth_does_at_once() {
        let (w, h) = (256u32, 128u32);
        for (q, want_lossy) in [(Quality::Sharp, false), (Quality::Smooth, true)] {
            let mut enc = TileEncoder::new();
            enc.set_quality(q);
            let mut any = false;
            for i in 0..6u32 {
                let cur = frame(w, h, i * 31);
                let f = FrameRef {
                    width: w,
                    height: h,
                    stride: w as usize * 4,
                    data: &cur,
                };
                let rects = enc.diff(&f, None, u64::from(i) * 20).expect("diff");
                for part in enc
                    .encode(&f, &rects, u64::from(i), Timing::default())
                    .expect("encode")
                {
                    any |= !part.lossy.is_empty();
                }
            }
            assert_eq!(any, want_lossy, "{q:?}");
        }
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
