//! Turning changed rectangles into update parts: palette indices or BGR rows compressed with
//! zstd, photo-like bands as JPEG. Gathering pixels runs in order; compressing runs as
//! independent jobs on the caller's [`Executor`].

use super::predict;
use super::wire::*;

/// zstd level for screen data.
const ZSTD_LEVEL: i32 = 1;
/// Parts with more raw bytes than this are compressed here, on every core, and so are parts with
/// photo-like (predicted) rectangles, which gain little from what came before. The others (text
/// and UI) are left raw for the stream's long-lived zstd context ([`super::StreamWriter`]), which
/// compresses them better with what earlier parts carried.
const COMPRESS_FROM: usize = PART_RAW_BYTES;
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
    /// Per colour: how many pixels have it.
    counts: Vec<u32>,
    /// Per slot: 0 when empty, else the colour as `1 << 24 | b << 16 | g << 8 | r`.
    keys: Box<[u32; SLOTS]>,
    /// Per slot: the colour's index.
    index: Box<[u8; SLOTS]>,
}

impl Palette {
    fn new() -> Self {
        Palette {
            colours: Vec::new(),
            counts: Vec::new(),
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

    /// Counts `n` pixels of colour `c`, adding it if it is new; false if the palette is full.
    fn add(&mut self, c: [u8; 3], n: u32) -> bool {
        let key = Self::key(c);
        let i = self.slot(key);
        if self.keys[i] == key {
            self.counts[usize::from(self.index[i])] += n;
            return true;
        }
        if self.colours.len() == MAX_PALETTE {
            return false;
        }
        self.keys[i] = key;
        self.index[i] = self.colours.len() as u8;
        self.colours.push(c);
        self.counts.push(n);
        true
    }

    /// The palette as it travels. Where most colours are blends of two of the most used ones
    /// (anti-aliased text on its background), those two go first and the blends as a byte
    /// each; the indices are renumbered to match.
    pub(super) fn order_for_wire(&mut self) -> Colours {
        let n = self.colours.len();
        if n < MIN_BLENDED {
            return Colours::full(self.colours.clone());
        }
        // The background is the most used colour; the text colour is among the next most used
        // or, where strokes are thin, among the farthest from the background.
        let mut by_count: Vec<usize> = (0..n).collect();
        by_count.sort_by_key(|&x| std::cmp::Reverse(self.counts[x]));
        let i = by_count[0];
        let far = |x: &usize| {
            let (a, b) = (self.colours[i], self.colours[*x]);
            (0..3).map(|k| u32::from(a[k].abs_diff(b[k]))).sum::<u32>()
        };
        let mut by_distance = by_count[1..].to_vec();
        by_distance.sort_by_key(|x| std::cmp::Reverse(far(x)));
        let mut ends: Vec<usize> = by_count[1..].iter().take(BLEND_ENDS).copied().collect();
        for &x in by_distance.iter().take(BLEND_FAR_ENDS) {
            if !ends.contains(&x) {
                ends.push(x);
            }
        }
        let mut best: Option<(usize, usize, Vec<Option<u8>>)> = None;
        let mut best_found = 0;
        for &j in &ends {
            let (c0, c1) = (self.colours[i], self.colours[j]);
            let weights: Vec<Option<u8>> = (0..n)
                .map(|x| (x != i && x != j).then(|| weight(c0, c1, self.colours[x]))?)
                .collect();
            let found = weights.iter().flatten().count();
            if found > best_found {
                best_found = found;
                best = Some((i, j, weights));
                if found == n - 2 {
                    break;
                }
            }
        }
        let Some((i, j, weights)) = best.filter(|b| b.2.iter().flatten().count() >= MIN_BLENDS)
        else {
            return Colours::full(self.colours.clone());
        };
        let alpha = n > 16 && weights.iter().filter(|w| w.is_none()).count() == 2;
        if alpha {
            // Every colour but the ends is a blend, and indices would take a byte each anyway:
            // each index is the colour's weight, and the palette is just the two ends.
            for (x, w) in weights.iter().enumerate() {
                let a = match x {
                    _ if x == i => 0,
                    _ if x == j => 255,
                    _ => w.unwrap_or_default(),
                };
                let slot = self.slot(Self::key(self.colours[x]));
                self.index[slot] = a;
            }
            return Colours::alpha(self.colours[i], self.colours[j]);
        }
        // New order: the two ends, the other full colours, then the blends.
        let mut order = vec![i, j];
        order.extend((0..n).filter(|&x| x != i && x != j && weights[x].is_none()));
        let full_len = order.len();
        order.extend((0..n).filter(|&x| weights[x].is_some()));
        let wire = Colours {
            full: order[..full_len].iter().map(|&x| self.colours[x]).collect(),
            blends: order[full_len..]
                .iter()
                .filter_map(|&x| weights[x])
                .collect(),
        };
        let colours: Vec<[u8; 3]> = order.iter().map(|&x| self.colours[x]).collect();
        let counts: Vec<u32> = order.iter().map(|&x| self.counts[x]).collect();
        for (new, c) in colours.iter().enumerate() {
            let slot = self.slot(Self::key(*c));
            self.index[slot] = new as u8;
        }
        self.colours = colours;
        self.counts = counts;
        wire
    }

    /// If the most used colour covers most of `r` and everything else lies in a box at most half
    /// its size: that colour and the box.
    fn sparse(&self, frame: &FrameRef<'_>, r: &Rect) -> Option<([u8; 3], Rect)> {
        let area = r.area();
        if self.colours.len() < 2 || !(SPARSE_MIN_AREA..=SPARSE_MAX_AREA).contains(&area) {
            return None;
        }
        let (bg, n) = self
            .colours
            .iter()
            .zip(&self.counts)
            .max_by_key(|(_, n)| **n)?;
        if u64::from(*n) * 2 < area {
            return None;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in r.y..r.y + r.h {
            let row = frame.row(y, r.x, r.x + r.w);
            let drawn = |p: &[u8]| p[..3] != bg[..];
            let Some(first) = row.chunks_exact(4).position(drawn) else {
                continue;
            };
            let last = row.chunks_exact(4).rposition(drawn).unwrap_or(first);
            x0 = x0.min(r.x + first as u32);
            x1 = x1.max(r.x + last as u32 + 1);
            y0 = y0.min(y);
            y1 = y + 1;
        }
        let ink = Rect {
            x: x0,
            y: y0,
            w: x1.checked_sub(x0)?,
            h: y1.checked_sub(y0)?,
        };
        (ink.area() * 2 <= area).then_some((*bg, ink))
    }

    /// The index of `c`, which the palette holds.
    fn index_of(&self, c: [u8; 3]) -> usize {
        usize::from(self.index[self.slot(Self::key(c))])
    }
}

/// Smallest rectangle whose background is split from what is drawn on it (a rectangle and a
/// palette cost about a dozen bytes).
const SPARSE_MIN_AREA: u64 = 64;
/// Largest: a few glyph cells. In bigger rectangles zstd squeezes runs of background well
/// enough, and the scan for the drawn box would cost every frame of a drag.
const SPARSE_MAX_AREA: u64 = 64 * 64;
/// How many times a rectangle's background is split from what is drawn on it.
const SPARSE_DEPTH: usize = 2;
/// Palettes of fewer colours are sent in full: blending would save little.
const MIN_BLENDED: usize = 6;
/// Blends are looked for between the most used colour and this many of the next most used...
const BLEND_ENDS: usize = 4;
/// ...and this many of the farthest from it (colours off the line may be farther still).
const BLEND_FAR_ENDS: usize = 8;
/// Fewest blends worth the two bytes they cost (the list's length, and a full colour moved).
const MIN_BLENDS: usize = 3;

/// The weight that blends `c0` and `c1` into exactly `c` (see [`Colours::blend`]), if any.
fn weight(c0: [u8; 3], c1: [u8; 3], c: [u8; 3]) -> Option<u8> {
    // The channel that differs most between the ends pins the weight down best.
    let k = (0..3).max_by_key(|&k| c0[k].abs_diff(c1[k]))?;
    let d = i32::from(c1[k]) - i32::from(c0[k]);
    if d == 0 {
        return None;
    }
    let num = (i32::from(c[k]) - i32::from(c0[k])) * 255;
    let a = (2 * num + d.signum() * d) / (2 * d);
    (a - 2..=a + 2)
        .filter_map(|a| u8::try_from(a).ok())
        .find(|&a| Colours::blend(c0, c1, a) == c)
}

/// The colours of a rectangle and how often each appears, if it has at most [`MAX_PALETTE`].
pub(super) fn palette_of(frame: &FrameRef<'_>, r: &Rect) -> Option<Palette> {
    let mut pal = Palette::new();
    let mut run: Option<([u8; 3], u32)> = None;
    for y in r.y..r.y + r.h {
        for px in frame.row(y, r.x, r.x + r.w).chunks_exact(4) {
            let c = [px[0], px[1], px[2]];
            match &mut run {
                Some((last, n)) if *last == c => *n += 1,
                _ => {
                    if let Some((last, n)) = run.replace((c, 1))
                        && !pal.add(last, n)
                    {
                        return None;
                    }
                }
            }
        }
    }
    if let Some((last, n)) = run
        && !pal.add(last, n)
    {
        return None;
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
    // Index 0 is not always the first pixel's colour: see `Palette::order_for_wire`.
    let mut last = ([0u8; 3], pal.index_of([0; 3]));
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
    palettes: Vec<Colours>,
    predicted: Vec<bool>,
    raw: Vec<u8>,
}

/// Whether `c`'s pixels are compressed here (see [`COMPRESS_FROM`]) rather than by the stream.
fn compress_here(c: &Chunk) -> bool {
    c.raw.len() > COMPRESS_FROM || (c.predicted.contains(&true) && !c.raw.is_empty())
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
        .map(|c| Job::Compress(if compress_here(c) { &c.raw } else { &[] }))
        .chain(jpeg_bands.iter().map(|r| Job::Jpeg(*r)))
        .collect();
    let mut results = exec.run(frame, &jobs);
    if results.len() != jobs.len() {
        return Err(CodecError::Corrupt("the executor lost jobs".into()));
    }
    let jpegs = results.split_off(chunks.len());

    let new_part = || FrameUpdate {
        seq,
        last: false,
        ack: false,
        size: Some(ScreenSize {
            width: frame.width,
            height: frame.height,
        }),
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
        let mut p = new_part();
        p.rects = chunk.rects;
        p.palettes = chunk.palettes;
        if chunk.predicted.contains(&true) {
            p.predicted = chunk.predicted;
        }
        let data = data?;
        // Rectangles of one colour need no data at all; data zstd cannot shrink goes as it is,
        // and so does data left for the stream.
        if chunk.raw.is_empty() {
        } else if !data.is_empty() && data.len() < chunk.raw.len() {
            p.data = data;
        } else {
            p.encoding = Encoding::Bgr24;
            p.data = chunk.raw;
        }
        parts.push(p);
    }
    let mut cur = new_part();
    let mut jpeg_bytes = 0;
    for (rect, data) in jpeg_bands.into_iter().zip(jpegs) {
        let data = data?;
        jpeg_bytes += data.len();
        cur.lossy.push(LossyRect {
            rect,
            codec: LossyCodec::Jpeg,
            data,
        });
        if jpeg_bytes >= PART_RAW_BYTES || cur.lossy.len() >= MAX_PART_RECTS {
            jpeg_bytes = 0;
            parts.push(std::mem::replace(&mut cur, new_part()));
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
        for mut band in bands(*r, rows) {
            match palette_of(frame, &band) {
                Some(mut pal) => {
                    // Mostly background: the rectangle in one colour, then what is drawn on it
                    // (a new glyph beside an emptied cell) as a rectangle of its own, and so on
                    // once more (the glyph's own background around its strokes).
                    for _ in 0..SPARSE_DEPTH {
                        let Some((bg, ink)) = pal.sparse(frame, &band) else {
                            break;
                        };
                        cur.rects.push(band);
                        cur.palettes.push(Colours::full(vec![bg]));
                        cur.predicted.push(false);
                        band = ink;
                        pal = palette_of(frame, &band).unwrap_or(pal);
                    }
                    let colours = pal.order_for_wire();
                    pack_indices(frame, &band, &pal, &mut cur.raw);
                    cur.palettes.push(colours);
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
                    cur.palettes.push(Colours::default());
                    cur.predicted.push(predicted);
                }
            }
            cur.rects.push(band);
            // A band may add up to `SPARSE_DEPTH` + 1 rectangles.
            if cur.raw.len() >= PART_RAW_BYTES
                || cur.rects.len() + SPARSE_DEPTH + 1 > MAX_PART_RECTS
            {
                chunks.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.rects.is_empty() {
        chunks.push(cur);
    }
    chunks
}
