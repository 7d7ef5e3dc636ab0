//! A screen stream's model of glyph operations, which codes them in a fraction of their bytes.
//!
//! A page of text the viewer holds the characters of is a list of draws, one for each glyph: a
//! slot and a position. zstd matches the runs of them that repeat (a word seen before) but codes
//! the rest a byte at a time, and on a browser's page that was a third of the bytes. Here the
//! stream codes every operation bit by bit with a binary arithmetic coder, each bit with the
//! probability that the operations before it give it, as the PAQ family of compressors does:
//!
//! - a slot from the one, two and three glyphs drawn before it: text is words, and words repeat;
//! - a position's left as its distance from where the glyph before it ended (the width of every
//!   slot is known from its store), from the pair of glyphs: the same two letters are the same
//!   distance apart wherever they are, so a line of text costs little more than its letters;
//! - its top from the top of the line and where the glyph last sat in its line;
//! - a store's slot from the one stored before it (the encoder's clock hand moves one slot on);
//! - fills, copies, keeps, recalls and a store's size from their own earlier values.
//!
//! Each bit's probability mixes the predictions of four contexts (for a slot: none, and the
//! one, two and three glyphs before) with weights learned as the stream goes (logistic mixing).
//! The counters of up to 16 decisions that follow one another share a cache line, and the
//! coders ask for the lines of decisions to come before they need them (the host for the whole
//! way down a slot's tree, the viewer for the four groups its next two decisions choose from;
//! both, once a slot is known, for its position and the next glyph's), so that the tables'
//! misses overlap instead of following one another. A context seen for the first time
//! predicts nothing and leaves the others to decide. Both sides see the same operations in the
//! same order (a QUIC stream is reliable and ordered) and update the same integer-only model, so
//! they stay in step without the model ever being sent.
//!
//! The viewer treats a modelled list as hostile: it reads at most [`DECISIONS`] binary decisions
//! and [`MAX_MODELLED_OPS`] operations, numbers no longer than positions can be, and refuses
//! positions that do not fit; the operations then go through [`super::decode_ops`]' checks as
//! any others do. The host codes a list only if it fits those bounds, and sends it as it is
//! otherwise. Its time is paid for by bytes: no decision is coded surer than [`SUREST`] allows,
//! and the viewer refuses a list that reads more than [`PAST_END`] bytes past its end, so a
//! few bytes cannot make it take millions of decisions.

use super::glyphs::{GLYPH_SLOTS, GlyphOp, MAX_GLYPH_OPS_BYTES};
use super::wire::{CodecError, Rect};

/// First byte of a modelled list of operations (those of [`super::encode_ops`] are 0 and 1).
pub(super) const MODELLED: u8 = 2;
/// Most binary decisions the viewer reads for one part's operations: a screen of small text
/// takes under a million.
pub(super) const DECISIONS: u64 = 1 << 22;
/// Most operations in one modelled part: as many as fit in [`MAX_GLYPH_OPS_BYTES`].
pub(super) const MAX_MODELLED_OPS: usize = MAX_GLYPH_OPS_BYTES / 3;

/// No decision is coded surer than 1 - SUREST/4096, so that each costs at least 1/180 of a bit
/// and a byte of input can hold at most about 1,400 decisions (a page's take 15 a byte).
const SUREST: i32 = 16;
/// Bytes the viewer may read past the end of a list: the host's last byte and the coder's
/// first four bytes of lookahead. Reading more means the input ran out early.
const PAST_END: u32 = 3;

/// Contexts whose predictions each decision mixes.
const INPUTS: usize = 4;
/// Counters of each context's table, as a power of two.
const TABLE_BITS: u32 = 19;
/// Longest number in bits: a position's distance from another, at most 2^33.
const MAX_BITS: u32 = 34;
/// Most decisions an operation takes: its kind, then at most six numbers (a copy's).
const MAX_OP_DECISIONS: u64 = END as u64 + 6 * (1 + 2 * MAX_BITS as u64);
/// A counter adapts as an average of its first this many decisions, then as a moving one.
const LIMIT: u16 = 15;
/// How far a counter moves towards a decision (16 bits): by 1 / (n + 1.5) after n decisions.
const RATE: [i32; 16] = {
    let mut r = [0; 16];
    let mut n = 0;
    while n < 16 {
        r[n] = (1 << 17) / (2 * n as i32 + 3);
        n += 1;
    }
    r
};
/// Bits of a glyph's slot.
const SLOT_BITS: u32 = GLYPH_SLOTS.trailing_zeros();

/// What a decision codes; each has its own mixing weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Kind,
    Slot,
    Dx,
    Dy,
    StoreSlot,
    W,
    H,
    Colour,
    Source,
}

const FIELDS: usize = 9;

/// `1 / (1 + e^-x)` in 12 bits at x = -8, -7.5, ... 8.
const SQUASH: [i32; 33] = [
    1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048, 2550, 2994, 3349,
    3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095,
];

/// The probability (12 bits) of a logit `d` (8 fractional bits), interpolated in [`SQUASH`].
const fn squash(d: i32) -> i32 {
    if d > 2047 {
        return 4095;
    }
    if d < -2047 {
        return 1;
    }
    let w = d & 127;
    let i = ((d >> 7) + 16) as usize;
    (SQUASH[i] * (128 - w) + SQUASH[i + 1] * w + 64) >> 7
}

/// The logit of every 12-bit probability: the inverse of [`squash`].
const STRETCH: [i16; 4096] = {
    let mut t = [0i16; 4096];
    let mut from = 0usize;
    let mut d = -2047;
    while d <= 2047 {
        let p = squash(d) as usize;
        while from <= p {
            t[from] = d as i16;
            from += 1;
        }
        d += 1;
    }
    while from < 4096 {
        t[from] = 2047;
        from += 1;
    }
    t
};

fn hash(a: u32, b: u32) -> u32 {
    (a.wrapping_mul(0x9E37_79B1) ^ b.rotate_left(16))
        .wrapping_mul(0x85EB_CA6B)
        .rotate_left(13)
        ^ b
}

/// A decision's contexts before its step (which bit of the field) is hashed in.
type Contexts = [u32; INPUTS];

/// Which bit of a field a decision is: a group of up to 16 decisions that follow one another
/// (the four levels of a symbol's tree under one prefix, the first steps of a number), whose
/// counters share a cache line in each table, and the decision's place in it (below 16).
#[derive(Clone, Copy)]
struct Step {
    group: u32,
    at: u32,
}

const fn step(group: u32, at: u32) -> Step {
    Step { group, at }
}

/// The probabilities: a table of counters for each context, and the mixing weights.
struct Probs {
    /// The probability of a 1 in the top 12 bits (flipped at 0x800, so that a zeroed counter,
    /// which the allocator gives untouched, is an even chance) and in the low 4 how many
    /// decisions it has seen, up to [`LIMIT`].
    counters: Vec<u16>,
    weights: Vec<i32>,
    /// The group of counters in each table of the last decision's field, contexts and group
    /// (a decision in the same ones, as most are, finds its counters without hashing).
    group: (Field, Contexts, u32, [usize; INPUTS]),
    /// The decision being coded: its counters, their logits and its weights.
    at: [usize; INPUTS],
    logits: [i32; INPUTS + 1],
    mixer: usize,
    p: i32,
}

impl Probs {
    fn new() -> Self {
        Probs {
            counters: vec![0; INPUTS << TABLE_BITS],
            weights: (0..FIELDS * 4 * (INPUTS + 1))
                .map(|i| {
                    if i % (INPUTS + 1) == INPUTS {
                        0
                    } else {
                        26_000
                    }
                })
                .collect(),
            group: (Field::Kind, [u32::MAX; INPUTS], u32::MAX, [0; INPUTS]),
            at: [0; INPUTS],
            logits: [0; INPUTS + 1],
            mixer: 0,
            p: 2048,
        }
    }

    /// Where the counters of `group` of `field` in context `c` start in table `i`.
    fn group_at(i: usize, field: Field, c: u32, group: u32) -> usize {
        let mask = (1usize << (TABLE_BITS - 4)) - 1;
        let h = hash(hash(c, field as u32), group) as usize & mask;
        (i << (TABLE_BITS - 4) | h) << 4
    }

    /// Asks the memory for the counters of `group` of `field` in `cx`, which decisions to come
    /// will need: a table's counters are in the last level cache at best, and a decision can
    /// only ask for its own once the one before has been taken.
    fn prefetch(&self, field: Field, cx: &Contexts, group: u32) {
        for (i, c) in cx.iter().enumerate() {
            let at = Self::group_at(i, field, *c, group);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE is part of the x86_64 baseline, and a prefetch reads nothing (the
            // address is inside the table all the same).
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T0>(self.counters[at..].as_ptr().cast());
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = at;
        }
    }

    /// The probability (12 bits, [`SUREST`] to 4096 - [`SUREST`]) that the decision of `field`
    /// in `cx` at `step` is 1.
    fn predict(&mut self, field: Field, cx: &Contexts, step: Step) -> u32 {
        let (f, c, g, groups) = &mut self.group;
        if *f != field || c != cx || *g != step.group {
            for (i, (group, c)) in groups.iter_mut().zip(cx).enumerate() {
                *group = Self::group_at(i, field, *c, step.group);
            }
            (*f, *c, *g) = (field, *cx, step.group);
        }
        for (i, group) in groups.iter().enumerate() {
            self.at[i] = group | step.at as usize;
            self.logits[i] =
                i32::from(STRETCH[usize::from(self.counters[self.at[i]] >> 4 ^ 0x800)]);
        }
        self.logits[INPUTS] = 256;
        let class = match field {
            // A symbol's group is its prefix: the nibble of the tree.
            Field::Slot | Field::Colour => (31 - step.group.leading_zeros()) as usize / 4,
            _ => match (step.group, step.at) {
                (0, 0) => 0,
                (0, 1) => 1,
                (0..64, _) => 2,
                _ => 3,
            },
        };
        self.mixer = (field as usize * 4 + class.min(3)) * (INPUTS + 1);
        let w = &self.weights[self.mixer..self.mixer + INPUTS + 1];
        let dot: i64 = (w.iter().zip(&self.logits))
            .map(|(w, l)| i64::from(*w) * i64::from(*l))
            .sum();
        self.p = squash((dot >> 16).clamp(-2047, 2047) as i32).clamp(SUREST, 4096 - SUREST);
        self.p as u32
    }

    /// Learns the decision just predicted.
    fn update(&mut self, bit: bool) {
        let err = ((i32::from(bit) << 12) - self.p) * 6;
        for (w, l) in
            (self.weights[self.mixer..self.mixer + INPUTS + 1].iter_mut()).zip(&self.logits)
        {
            *w = w.saturating_add((l * err) >> 13);
        }
        for &at in &self.at {
            let c = self.counters[at];
            let (p, n) = (i32::from(c >> 4 ^ 0x800), c & 15);
            let target = if bit { 4095 } else { 0 };
            let p = p + (((target - p) * RATE[usize::from(n)]) >> 16);
            self.counters[at] = (p as u16 ^ 0x800) << 4 | (n + 1).min(LIMIT);
        }
    }
}

/// One side of the coding of decisions: the host's writes them, the viewer's reads them.
trait Coder {
    /// Codes `bit` (ignored when reading) of `field` in `cx` at `step`; returns the decision.
    fn bit(
        &mut self,
        field: Field,
        cx: &Contexts,
        step: Step,
        bit: bool,
    ) -> Result<bool, CodecError>;

    /// Asks for the counters of `group` of `field` in `cx`, which decisions to come will need.
    fn prefetch(&self, _field: Field, _cx: &Contexts, _group: u32) {}

    /// Whether the decisions are known before they are coded (the host's are).
    fn writes(&self) -> bool {
        false
    }
}

/// The interval of an arithmetic coder, the same on both sides: a 1 takes the lower part of it,
/// as large as the 1's probability.
struct Interval {
    lo: u32,
    hi: u32,
}

impl Interval {
    const WHOLE: Interval = Interval {
        lo: 0,
        hi: u32::MAX,
    };

    /// The top of a 1's part for a 12-bit probability `p` (1 to 4095).
    fn split(&self, p: u32) -> u32 {
        self.lo + ((u64::from(self.hi - self.lo) * u64::from(p)) >> 12) as u32
    }

    /// Keeps the part of `bit`; then, while both ends agree on their top byte, shifts it out
    /// and passes it to `shifted`.
    fn narrow(&mut self, bit: bool, mid: u32, mut shifted: impl FnMut(u8)) {
        if bit {
            self.hi = mid;
        } else {
            self.lo = mid + 1;
        }
        while (self.lo ^ self.hi) >> 24 == 0 {
            shifted((self.hi >> 24) as u8);
            self.lo <<= 8;
            self.hi = self.hi << 8 | 255;
        }
    }
}

/// The host's arithmetic coder.
struct Encoder<'a> {
    probs: &'a mut Probs,
    at: Interval,
    out: Vec<u8>,
}

impl Coder for Encoder<'_> {
    fn prefetch(&self, f: Field, cx: &Contexts, group: u32) {
        self.probs.prefetch(f, cx, group);
    }

    fn writes(&self) -> bool {
        true
    }

    fn bit(&mut self, f: Field, cx: &Contexts, step: Step, bit: bool) -> Result<bool, CodecError> {
        let mid = self.at.split(self.probs.predict(f, cx, step));
        self.at.narrow(bit, mid, |b| self.out.push(b));
        self.probs.update(bit);
        Ok(bit)
    }
}

/// The viewer's arithmetic decoder, which reads at most [`DECISIONS`] decisions. Past its input
/// it reads 0xff, which ends the host's last interval (see [`OpsModel::encode`]), and at most
/// [`PAST_END`] bytes of it.
struct Decoder<'a> {
    probs: &'a mut Probs,
    at: Interval,
    /// The 32 bits of input under the interval.
    x: u32,
    input: std::slice::Iter<'a, u8>,
    /// Bytes read past the end of the input, as 0xff.
    past: u32,
    left: u64,
}

impl Decoder<'_> {
    /// The next byte of input: 0xff past its end, up to [`PAST_END`] of them.
    fn next_byte(input: &mut std::slice::Iter<'_, u8>, past: &mut u32) -> u8 {
        input.next().copied().unwrap_or_else(|| {
            *past += 1;
            0xff
        })
    }
}

impl Coder for Decoder<'_> {
    fn prefetch(&self, f: Field, cx: &Contexts, group: u32) {
        self.probs.prefetch(f, cx, group);
    }

    fn bit(&mut self, f: Field, cx: &Contexts, step: Step, _: bool) -> Result<bool, CodecError> {
        self.left = (self.left.checked_sub(1)).ok_or_else(|| corrupt("too many decisions"))?;
        let mid = self.at.split(self.probs.predict(f, cx, step));
        let bit = self.x <= mid;
        let (x, input, past) = (&mut self.x, &mut self.input, &mut self.past);
        self.at.narrow(bit, mid, |_| {
            *x = *x << 8 | u32::from(Self::next_byte(input, past));
        });
        if self.past > PAST_END {
            return Err(corrupt("decisions past the end of the input"));
        }
        self.probs.update(bit);
        Ok(bit)
    }
}

/// Counts the decisions a list takes, without coding them.
struct Counter(u64);

impl Coder for Counter {
    fn bit(&mut self, _: Field, _: &Contexts, _: Step, bit: bool) -> Result<bool, CodecError> {
        self.0 += 1;
        Ok(bit)
    }
}

/// The group of the bits of a number of `n` bits below its top one: a short number's (up to 5
/// bits) in the context of those before them, a longer one's by their place.
const fn number_bits(n: u32) -> u32 {
    if n <= 5 { 64 | n } else { 128 | n }
}

/// Codes a signed number: whether it is 0, its sign, its length in bits (in unary) and its bits
/// below the top one, those of a short number in the context of the ones before them.
fn number(c: &mut impl Coder, f: Field, cx: &Contexts, v: i64) -> Result<i64, CodecError> {
    if c.bit(f, cx, step(0, 0), v == 0)? {
        return Ok(0);
    }
    let negative = c.bit(f, cx, step(0, 1), v < 0)?;
    let m = v.unsigned_abs();
    let len = 64 - m.leading_zeros();
    let mut n = 1;
    while c.bit(f, cx, step((n + 1) >> 4, (n + 1) & 15), len > n)? {
        n += 1;
        if n > MAX_BITS {
            return Err(corrupt("a number too long"));
        }
    }
    let mut r = 1u64;
    for i in (0..n - 1).rev() {
        // Below 2^5, r (the bits so far) is under 16.
        let s = step(number_bits(n), if n <= 5 { r as u32 } else { i & 15 });
        r = r << 1 | u64::from(c.bit(f, cx, s, m >> i & 1 == 1)?);
    }
    // At most 2^34: it fits.
    Ok(if negative { -(r as i64) } else { r as i64 })
}

/// Codes a number of `bits` bits as a path down a binary tree, four levels to a group.
fn symbol(
    c: &mut impl Coder,
    f: Field,
    cx: &Contexts,
    bits: u32,
    v: u32,
) -> Result<u32, CodecError> {
    if c.writes() {
        // The host knows the way down: it asks for every group on it at once.
        for depth in (4..bits).step_by(4) {
            c.prefetch(f, cx, 1 << depth | v >> (bits - depth));
        }
    }
    let mut node = 1u32;
    for i in (0..bits).rev() {
        let depth = bits - 1 - i;
        let below = depth % 4;
        if below == 2 && depth + 2 < bits && !c.writes() {
            // The viewer's next group is one of four: it asks for them all while it reads the
            // two decisions that choose.
            for k in 0..4 {
                c.prefetch(f, cx, node << 2 | k);
            }
        }
        let s = step(node >> below, node & ((1 << below) - 1) | 1 << below);
        node = node << 1 | u32::from(c.bit(f, cx, s, v >> i & 1 == 1)?);
    }
    Ok(node - (1 << bits))
}

/// What the model remembers of the operations before: the same on both sides.
#[derive(Clone)]
struct History {
    /// Every slot's width, from its last store.
    widths: Vec<u32>,
    /// Every slot's top relative to the top of its line, as last seen.
    rel: Vec<Option<i64>>,
    /// The top of the current line.
    line: i64,
    /// The three glyphs before, the last one last (slot + 1; 0 for none).
    glyphs: [u32; 3],
    /// Where the operation before ended: its right edge and its top.
    end: (i64, i64),
    /// The kind of the operation before.
    kind: u32,
    /// The slot stored last.
    stored: u32,
    /// The colour filled last.
    colour: [u8; 3],
}

impl Default for History {
    fn default() -> Self {
        History {
            widths: vec![0; GLYPH_SLOTS],
            rel: vec![None; GLYPH_SLOTS],
            line: 0,
            glyphs: [0; 3],
            end: (0, 0),
            kind: 0,
            stored: GLYPH_SLOTS as u32 - 1,
            colour: [0; 3],
        }
    }
}

const DRAW: u32 = 0;
const STORE: u32 = 1;
const FILL: u32 = 2;
const COPY: u32 = 3;
const KEEP: u32 = 4;
const RECALL: u32 = 5;
const SAVE: u32 = 6;
const RESTORE: u32 = 7;
const END: u32 = 8;

/// What a position is the top-left corner of.
#[derive(Clone, Copy)]
enum Piece {
    /// A glyph drawn from this slot.
    Drawn(u32),
    /// A new glyph, to be stored in this slot.
    Stored(u32),
    /// A fill or a copy.
    Other,
}

impl Piece {
    /// The piece as a context: a drawn glyph is its slot + 1.
    fn context(self) -> u32 {
        match self {
            Piece::Drawn(s) => s + 1,
            Piece::Stored(_) | Piece::Other => GLYPH_SLOTS as u32 + 1,
        }
    }
}

fn coordinate(v: i64) -> Result<u32, CodecError> {
    u32::try_from(v).map_err(|_| corrupt("a position out of range"))
}

fn size(v: i64) -> Result<u32, CodecError> {
    u32::try_from(v).map_err(|_| corrupt("a size out of range"))
}

impl History {
    /// Codes one operation (`None`: the end of the list); when reading, `op` is ignored and the
    /// operation read is returned.
    fn op(
        &mut self,
        c: &mut impl Coder,
        op: Option<&GlyphOp>,
    ) -> Result<Option<GlyphOp>, CodecError> {
        let kind = match op {
            Some(GlyphOp::Draw { .. }) => DRAW,
            Some(GlyphOp::Store { .. }) => STORE,
            Some(GlyphOp::Fill { .. }) => FILL,
            Some(GlyphOp::Copy { .. }) => COPY,
            Some(GlyphOp::Keep { .. }) => KEEP,
            Some(GlyphOp::Recall { .. }) => RECALL,
            Some(GlyphOp::Save { .. }) => SAVE,
            Some(GlyphOp::Restore { .. }) => RESTORE,
            None => END,
        };
        let cx = kind_contexts(self.kind, self.glyphs[2]);
        let mut k = 0;
        while k < END && c.bit(Field::Kind, &cx, step(0, k), kind > k)? {
            k += 1;
        }
        let (x, y) = match op {
            Some(GlyphOp::Draw { x, y, .. } | GlyphOp::Copy { x, y, .. }) => (*x, *y),
            Some(
                GlyphOp::Store { rect, .. }
                | GlyphOp::Fill { rect, .. }
                | GlyphOp::Keep { rect }
                | GlyphOp::Recall { rect, .. }
                | GlyphOp::Save { rect }
                | GlyphOp::Restore { rect },
            ) => (rect.x, rect.y),
            None => (0, 0),
        };
        let out = match k {
            DRAW => {
                let slot = match op {
                    Some(GlyphOp::Draw { slot, .. }) => u32::from(*slot),
                    _ => 0,
                };
                let slot = symbol(c, Field::Slot, &slot_contexts(self.glyphs), SLOT_BITS, slot)?;
                self.ask_ahead(c, slot);
                let (x, y) = self.place(c, Piece::Drawn(slot), x, y)?;
                let [_, g1, g2] = self.glyphs;
                self.glyphs = [g1, g2, slot + 1];
                let w = self.widths[slot as usize];
                self.end = (i64::from(x) + i64::from(w), i64::from(y));
                Some(GlyphOp::Draw {
                    slot: slot as u16,
                    x,
                    y,
                })
            }
            STORE => {
                let (slot, w, h) = match op {
                    Some(GlyphOp::Store { slot, rect }) => (u32::from(*slot), rect.w, rect.h),
                    _ => (0, 0, 0),
                };
                // As the encoder's clock hand moves: mostly to the next slot.
                let slots = GLYPH_SLOTS as i64;
                let next = (i64::from(self.stored) + 1) % slots;
                let d = (i64::from(slot) - next).rem_euclid(slots);
                let d = number(c, Field::StoreSlot, &[0, 1, 2, 3], d)?;
                let slot = (next + d).rem_euclid(slots) as u32;
                let (x, y) = self.place(c, Piece::Stored(slot), x, y)?;
                let (w, h) = self.size(c, w, h)?;
                self.widths[slot as usize] = w;
                self.stored = slot;
                let [_, g1, g2] = self.glyphs;
                self.glyphs = [g1, g2, slot + 1];
                self.end = (i64::from(x) + i64::from(w), i64::from(y));
                let rect = Rect { x, y, w, h };
                Some(GlyphOp::Store {
                    slot: slot as u16,
                    rect,
                })
            }
            FILL => {
                let (w, h, colour) = match op {
                    Some(GlyphOp::Fill { rect, colour }) => (rect.w, rect.h, *colour),
                    _ => (0, 0, [0; 3]),
                };
                let (x, y) = self.place(c, Piece::Other, x, y)?;
                let (w, h) = self.size(c, w, h)?;
                let mut got = [0u8; 3];
                for (i, (g, v)) in got.iter_mut().zip(colour).enumerate() {
                    let cx = [i as u32, i as u32 | u32::from(self.colour[i]) << 8, 0, 1];
                    *g = symbol(c, Field::Colour, &cx, 8, u32::from(v))? as u8;
                }
                self.colour = got;
                self.glyphs = [0; 3];
                self.end = (i64::from(x) + i64::from(w), i64::from(y));
                let rect = Rect { x, y, w, h };
                Some(GlyphOp::Fill { rect, colour: got })
            }
            COPY => {
                let src = match op {
                    Some(GlyphOp::Copy { src, .. }) => *src,
                    _ => Rect {
                        x: 0,
                        y: 0,
                        w: 0,
                        h: 0,
                    },
                };
                let (x, y) = self.place(c, Piece::Other, x, y)?;
                let (w, h) = self.size(c, src.w, src.h)?;
                let cx = [0, 1, 2, 3];
                let sx = number(c, Field::Source, &cx, i64::from(src.x) - i64::from(x))?;
                let cx = [4, 5, sx.signum() as u32, 6];
                let sy = number(c, Field::Source, &cx, i64::from(src.y) - i64::from(y))?;
                let src = Rect {
                    x: coordinate(i64::from(x) + sx)?,
                    y: coordinate(i64::from(y) + sy)?,
                    w,
                    h,
                };
                self.glyphs = [0; 3];
                self.end = (i64::from(x) + i64::from(w), i64::from(y));
                Some(GlyphOp::Copy { src, x, y })
            }
            KEEP | RECALL | SAVE | RESTORE => {
                let (w, h, back) = match op {
                    Some(
                        GlyphOp::Keep { rect } | GlyphOp::Save { rect } | GlyphOp::Restore { rect },
                    ) => (rect.w, rect.h, 0),
                    Some(GlyphOp::Recall { back, rect }) => (rect.w, rect.h, *back),
                    _ => (0, 0, 0),
                };
                let (x, y) = self.place(c, Piece::Other, x, y)?;
                let (w, h) = self.size(c, w, h)?;
                let rect = Rect { x, y, w, h };
                self.glyphs = [0; 3];
                self.end = (i64::from(x) + i64::from(w), i64::from(y));
                match k {
                    KEEP => Some(GlyphOp::Keep { rect }),
                    SAVE => Some(GlyphOp::Save { rect }),
                    RESTORE => Some(GlyphOp::Restore { rect }),
                    _ => {
                        let back = number(c, Field::Source, &[7, 8, 9, 10], i64::from(back))?;
                        let back =
                            u32::try_from(back).map_err(|_| corrupt("a recall out of range"))?;
                        Some(GlyphOp::Recall { back, rect })
                    }
                }
            }
            _ => None,
        };
        self.kind = k;
        Ok(out)
    }

    /// Codes the position of `piece`: left as its distance from where the operation before
    /// ended, top as its distance from where the line and the glyph's place in it put it (else
    /// from the top of the operation before), both in the context of the glyph before and of
    /// this one; then learns where the glyph sits in its line.
    fn place(
        &mut self,
        c: &mut impl Coder,
        piece: Piece,
        x: u32,
        y: u32,
    ) -> Result<(u32, u32), CodecError> {
        let (glyph, g1) = (piece.context(), self.glyphs[2]);
        let (ex, ey) = self.end;
        let dx = number(c, Field::Dx, &dx_contexts(g1, glyph), i64::from(x) - ex)?;
        // Back to the left is a new line.
        let line = dx.clamp(-3, 3) as u32;
        let rel = match piece {
            Piece::Drawn(s) => self.rel[s as usize],
            _ => None,
        };
        let py = match rel {
            Some(r) if dx >= -2 => self.line + r,
            _ => ey,
        };
        let cx = dy_contexts(g1, glyph, line, rel.is_some());
        let dy = number(c, Field::Dy, &cx, i64::from(y) - py)?;
        let (x, y) = (coordinate(ex + dx)?, coordinate(py + dy)?);
        if let Piece::Drawn(s) | Piece::Stored(s) = piece {
            let new_line = dx < -2 || (i64::from(y) - ey).abs() > 24;
            let s = s as usize;
            match rel {
                Some(r) if new_line => self.line = i64::from(y) - r,
                None if new_line => {
                    self.line = i64::from(y);
                    self.rel[s] = Some(0);
                }
                _ => self.rel[s] = Some(i64::from(y) - self.line),
            }
        }
        Ok((x, y))
    }

    /// After the slot of a glyph drawn, asks for the counters that its position will need
    /// (its left, and its top for the two likeliest gaps after the glyph before, 1 and 2
    /// pixels) and those of the next glyph's kind and slot, if one follows.
    fn ask_ahead(&self, c: &impl Coder, slot: u32) {
        let ([_, g1, g2], glyph) = (self.glyphs, slot + 1);
        let dx = dx_contexts(g2, glyph);
        c.prefetch(Field::Dx, &dx, 0);
        c.prefetch(Field::Dx, &dx, number_bits(2));
        let known = self.rel[slot as usize].is_some();
        for line in [1, 2] {
            c.prefetch(Field::Dy, &dy_contexts(g2, glyph, line, known), 0);
        }
        c.prefetch(Field::Kind, &kind_contexts(DRAW, glyph), 0);
        c.prefetch(Field::Slot, &slot_contexts([g1, g2, glyph]), 1);
    }

    /// Codes a rectangle's size.
    fn size(&self, c: &mut impl Coder, w: u32, h: u32) -> Result<(u32, u32), CodecError> {
        let w = number(c, Field::W, &[self.kind, 0, 0, 1], i64::from(w))?;
        let cw = w.min(64) as u32;
        let h = number(c, Field::H, &[cw, self.kind, 0, 1], i64::from(h))?;
        Ok((size(w)?, size(h)?))
    }
}

/// The contexts of an operation's kind: the kind before, and with the glyph before.
fn kind_contexts(kind: u32, g: u32) -> Contexts {
    [kind, kind << 13 | g, 0, 1]
}

/// The contexts of a glyph's slot: none, and the one, two and three glyphs before.
fn slot_contexts([g0, g1, g2]: [u32; 3]) -> Contexts {
    [0, g2, hash(g1, g2), hash(hash(g0, g1), g2)]
}

/// The contexts of a left: the glyph before and this one.
fn dx_contexts(g1: u32, glyph: u32) -> Contexts {
    [hash(g1, glyph), glyph, 0, g1 | 1 << 20]
}

/// The contexts of a top: the line (the left clamped) with the two glyphs, and whether the
/// glyph's place in its line is known.
fn dy_contexts(g1: u32, glyph: u32, line: u32, known: bool) -> Contexts {
    let known = u32::from(known) << 8;
    [
        hash(hash(g1, glyph), line) ^ known,
        hash(glyph, line),
        line | known,
        hash(g1, line),
    ]
}

/// One side's model of a stream's glyph operations.
pub(super) struct OpsModel {
    probs: Probs,
    history: History,
    /// Set if coding a list failed half way (it cannot: the operations come from
    /// [`super::decode_ops`]); the model is then out of step with the viewer's, and every list
    /// goes as it is from then on.
    broken: bool,
}

impl std::fmt::Debug for OpsModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpsModel")
    }
}

impl Default for OpsModel {
    fn default() -> Self {
        OpsModel {
            probs: Probs::new(),
            history: History::default(),
            broken: false,
        }
    }
}

impl OpsModel {
    /// `ops` coded with the model (led by [`MODELLED`]), which learns them; `None` (and the
    /// model untouched) if the viewer would refuse to read that many decisions or operations.
    pub(super) fn encode(&mut self, ops: &[GlyphOp]) -> Option<Vec<u8>> {
        if self.broken || ops.len() > MAX_MODELLED_OPS {
            return None;
        }
        // A list too long to be sure of the bound is counted first, on a copy of the history.
        if (ops.len() as u64 + 1) * MAX_OP_DECISIONS > DECISIONS {
            let mut counter = Counter(0);
            let mut dry = self.history.clone();
            for op in ops.iter().map(Some).chain([None]) {
                dry.op(&mut counter, op).ok()?;
            }
            if counter.0 > DECISIONS {
                return None;
            }
        }
        let mut e = Encoder {
            probs: &mut self.probs,
            at: Interval::WHOLE,
            out: vec![MODELLED],
        };
        for op in ops.iter().map(Some).chain([None]) {
            if self.history.op(&mut e, op).is_err() {
                self.broken = true;
                return None;
            }
        }
        // lo's top byte followed by 0xff (what the viewer reads past the end) is inside the
        // last interval, whose ends differ in their top byte.
        e.out.push((e.at.lo >> 24) as u8);
        Some(e.out)
    }

    /// The operations coded by [`OpsModel::encode`] in `data` (after its first byte).
    pub(super) fn decode(&mut self, data: &[u8]) -> Result<Vec<GlyphOp>, CodecError> {
        let (mut input, mut past) = (data.iter(), 0);
        let mut x = 0;
        for _ in 0..4 {
            x = x << 8 | u32::from(Decoder::next_byte(&mut input, &mut past));
        }
        let mut d = Decoder {
            probs: &mut self.probs,
            at: Interval::WHOLE,
            x,
            input,
            past,
            left: DECISIONS,
        };
        let mut ops = Vec::new();
        while let Some(op) = self.history.op(&mut d, None)? {
            if ops.len() == MAX_MODELLED_OPS {
                return Err(corrupt("too many operations"));
            }
            ops.push(op);
        }
        Ok(ops)
    }
}

fn corrupt(why: &str) -> CodecError {
    CodecError::Corrupt(format!("modelled glyph operations: {why}"))
}
