//! Turning changed rectangles into update parts: palette indices or BGR rows compressed with
//! zstd, photo-like bands as JPEG. Gathering pixels runs in order; compressing runs as
//! independent jobs on the caller's [`Executor`].

use super::predict;
use super::wire::*;

/// zstd level for screen data.
const ZSTD_LEVEL: i32 = 1;
/// Data up to this long goes uncompressed: zstd's frame costs more than it could save.
const MIN_COMPRESS: usize = 16;
/// JPEG quality of lossy rectangles.
const JPEG_QUALITY: u8 = 70;

/// Most colours a palette rectangle has. Anti-aliased text has dozens of shades in a glyph cell;
/// it stays exact and small as 8-bit indices.
pub(super) const MAX_PALETTE: usize = 256;

/// One independent piece of encoding work: compressing a part's pixels, or a band as JPEG.
#[derive(Debug, Clone, Copy)]
pub enum Job<'a> {
    /// zstd over a part's gathered pixel bytes.
    Compress(&'a [u8]),
    /// A band of the frame as JPEG.
    Jpeg(Rect),
}

impl Job<'_> {
    /// Does the work on `frame`.
    pub fn run(&self, frame: &FrameRef<'_>) -> Result<Vec<u8>, CodecError> {
        match self {
            Job::Compress([]) => Ok(Vec::new()),
            Job::Compress(raw) => zstd::bulk::compress(raw, ZSTD_LEVEL)
                .map_err(|e| CodecError::Corrupt(e.to_string())),
            Job::Jpeg(r) => {
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
                .map_err(|e| CodecError::Corrupt(e.to_string()))?;
                Ok(data)
            }
        }
    }
}

/// Runs a batch of independent [`Job`]s and returns their results in order. The host runs them
/// on all its cores; [`InOrder`] runs them one after another.
pub trait Executor: Sync {
    /// Runs every job on `frame`.
    fn run(&self, frame: &FrameRef<'_>, jobs: &[Job<'_>]) -> Vec<Result<Vec<u8>, CodecError>>;
}

/// Runs jobs one after another on the calling thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct InOrder;

impl Executor for InOrder {
    fn run(&self, frame: &FrameRef<'_>, jobs: &[Job<'_>]) -> Vec<Result<Vec<u8>, CodecError>> {
        jobs.iter().map(|j| j.run(frame)).collect()
    }
}

/// Bits per pixel index for a palette of `n` colours.
pub(super) fn index_bits(n: usize) -> usize {
    match n {
        0 | 1 => 0,
        2 => 1,
        3 | 4 => 2,
        5..=16 => 4,
        _ => 8,
    }
}

/// Bytes a rectangle takes in the (uncompressed) data: BGR, or packed palette indices.
pub(super) fn encoded_len(r: &Rect, colours: usize) -> usize {
    if colours == 0 {
        r.area() as usize * 3
    } else {
        (r.w as usize * index_bits(colours)).div_ceil(8) * r.h as usize
    }
}

/// Slots of a [`Palette`]'s colour table: four times [`MAX_PALETTE`], so probes stay short.
const SLOTS: usize = 1024;

/// A rectangle's colours, in order of first appearance, with a hash table from colour to index.
pub(super) struct Palette {
    pub(super) colours: Vec<[u8; 3]>,
    /// Per slot: 0 when empty, else the colour as `1 << 24 | b << 16 | g << 8 | r`.
    keys: Box<[u32; SLOTS]>,
    /// Per slot: the colour's index.
    index: Box<[u8; SLOTS]>,
}

impl Palette {
    fn new() -> Self {
        Palette {
            colours: Vec::new(),
            keys: Box::new([0; SLOTS]),
            index: Box::new([0; SLOTS]),
        }
    }

    fn key(c: [u8; 3]) -> u32 {
        1 << 24 | u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2])
    }

    /// The slot that holds `c`, or the empty slot where it would go.
    fn slot(&self, key: u32) -> usize {
        let mut i = (key.wrapping_mul(0x9e37_79b1) >> 22) as usize % SLOTS;
        while self.keys[i] != 0 && self.keys[i] != key {
            i = (i + 1) % SLOTS;
        }
        i
    }

    /// Adds `c` if it is new; false if the palette is full.
    fn add(&mut self, c: [u8; 3]) -> bool {
        let key = Self::key(c);
        let i = self.slot(key);
        if self.keys[i] == key {
            return true;
        }
        if self.colours.len() == MAX_PALETTE {
            return false;
        }
        self.keys[i] = key;
        self.index[i] = self.colours.len() as u8;
        self.colours.push(c);
        true
    }

    /// The index of `c`, which the palette holds.
    fn index_of(&self, c: [u8; 3]) -> usize {
        usize::from(self.index[self.slot(Self::key(c))])
    }
}

/// The colours of a rectangle, if it has at most [`MAX_PALETTE`].
pub(super) fn palette_of(frame: &FrameRef<'_>, r: &Rect) -> Option<Palette> {
    let mut pal = Palette::new();
    let mut last = None;
    for y in r.y..r.y + r.h {
        for px in frame.row(y, r.x, r.x + r.w).chunks_exact(4) {
            let c = [px[0], px[1], px[2]];
            if last == Some(c) {
                continue;
            }
            last = Some(c);
            if !pal.add(c) {
                return None;
            }
        }
    }
    Some(pal)
}

/// Appends a rectangle's packed palette indices.
fn pack_indices(frame: &FrameRef<'_>, r: &Rect, pal: &Palette, out: &mut Vec<u8>) {
    let bits = index_bits(pal.colours.len());
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
                let i = pal.index_of(c);
                last = (c, i);
                i
            };
            out[start + x * bits / 8] |= (idx as u8) << (8 - bits - (x * bits) % 8);
        }
    }
}

/// Rows of JPEG bands; a multiple of 16 so 4:2:0 blocks never straddle two bands.
const JPEG_BAND_ROWS: u32 = 256;

/// Splits `r` into bands of at most `rows` rows.
pub(super) fn bands(r: Rect, rows: u32) -> impl Iterator<Item = Rect> {
    let rows = rows.max(1);
    (r.y..r.y + r.h).step_by(rows as usize).map(move |y| Rect {
        x: r.x,
        y,
        w: r.w,
        h: rows.min(r.y + r.h - y),
    })
}

/// Lossless rectangles gathered into one part before compression: the rectangles, their
/// palettes (empty for raw BGR) and the packed bytes.
#[derive(Default)]
struct Chunk {
    rects: Vec<Rect>,
    palettes: Vec<Vec<[u8; 3]>>,
    predicted: Vec<bool>,
    raw: Vec<u8>,
}

/// Encodes rectangles of `frame`: `sharp` losslessly, `soft` as JPEG. Big rectangles are cut
/// into bands so that no part exceeds [`PART_RAW_BYTES`] by more than a band; parts and bands are
/// compressed as independent jobs on `exec`.
pub(super) fn encode_parts(
    frame: &FrameRef<'_>,
    sharp: &[Rect],
    soft: &[Rect],
    seq: u64,
    timing: Timing,
    exec: &dyn Executor,
) -> Result<Vec<FrameUpdate>, CodecError> {
    if !frame.is_valid() {
        return Err(CodecError::BadFrame);
    }
    for r in sharp.iter().chain(soft) {
        if r.x + r.w > frame.width || r.y + r.h > frame.height || r.w > u32::from(u16::MAX) {
            return Err(CodecError::OutOfBounds(*r));
        }
    }
    let chunks = gather_lossless(frame, sharp);
    let jpeg_bands: Vec<Rect> = soft
        .iter()
        .flat_map(|r| bands(*r, JPEG_BAND_ROWS))
        .collect();
    let jobs: Vec<Job<'_>> = chunks
        .iter()
        .map(|c| {
            Job::Compress(if c.raw.len() > MIN_COMPRESS {
                &c.raw
            } else {
                &[]
            })
        })
        .chain(jpeg_bands.iter().map(|r| Job::Jpeg(*r)))
        .collect();
    let mut results = exec.run(frame, &jobs);
    if results.len() != jobs.len() {
        return Err(CodecError::Corrupt("the executor lost jobs".into()));
    }
    let jpegs = results.split_off(chunks.len());

    let new_part = |index: usize| FrameUpdate {
        seq,
        part: u32::try_from(index).unwrap_or(u32::MAX),
        last: false,
        ack: false,
        width: frame.width,
        height: frame.height,
        encoding: Encoding::Bgr24Zstd,
        rects: Vec::new(),
        palettes: Vec::new(),
        predicted: Vec::new(),
        data: Vec::new(),
        lossy: Vec::new(),
        glyphs: Vec::new(),
        timing,
    };
    let mut parts = Vec::new();
    for (chunk, data) in chunks.into_iter().zip(results) {
        let mut p = new_part(parts.len());
        p.rects = chunk.rects;
        p.palettes = chunk.palettes;
        if chunk.predicted.contains(&true) {
            p.predicted = chunk.predicted;
        }
        let data = data?;
        // Rectangles of one colour need no data at all; data zstd cannot shrink goes as it is.
        if chunk.raw.is_empty() {
        } else if chunk.raw.len() > MIN_COMPRESS && data.len() < chunk.raw.len() {
            p.data = data;
        } else {
            p.encoding = Encoding::Bgr24;
            p.data = chunk.raw;
        }
        parts.push(p);
    }
    let mut cur = new_part(parts.len());
    let mut jpeg_bytes = 0;
    for (rect, data) in jpeg_bands.into_iter().zip(jpegs) {
        let data = data?;
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

/// Appends the pixels of `r` as packed BGR.
pub(super) fn pack_bgr(frame: &FrameRef<'_>, r: &Rect, out: &mut Vec<u8>) {
    for y in r.y..r.y + r.h {
        for px in frame.row(y, r.x, r.x + r.w).chunks_exact(4) {
            out.extend_from_slice(&px[..3]);
        }
    }
}

/// Packs the lossless rectangles (as palette indices where few colours, predicted BGR where
/// photo-like, raw BGR otherwise) into
/// chunks of about [`PART_RAW_BYTES`], cutting big rectangles into bands.
fn gather_lossless(frame: &FrameRef<'_>, sharp: &[Rect]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut cur = Chunk::default();
    for r in sharp {
        let rows = (PART_RAW_BYTES / (r.w as usize * 3).max(1)).max(1) as u32;
        for band in bands(*r, rows) {
            match palette_of(frame, &band) {
                Some(pal) => {
                    pack_indices(frame, &band, &pal, &mut cur.raw);
                    cur.palettes.push(pal.colours);
                    cur.predicted.push(false);
                }
                None => {
                    let rows =
                        || (band.y..band.y + band.h).map(|y| frame.row(y, band.x, band.x + band.w));
                    let predicted = predict::worth_predicting(rows());
                    if predicted {
                        predict::residuals(rows(), &mut cur.raw);
                    } else {
                        pack_bgr(frame, &band, &mut cur.raw);
                    }
                    cur.palettes.push(Vec::new());
                    cur.predicted.push(predicted);
                }
            }
            cur.rects.push(band);
            if cur.raw.len() >= PART_RAW_BYTES || cur.rects.len() >= MAX_PART_RECTS {
                chunks.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.rects.is_empty() {
        chunks.push(cur);
    }
    chunks
}
