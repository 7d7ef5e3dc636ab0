//! Finding regions that moved (a scrolled terminal, document or page; a dragged window), so that
//! they go as copies of what the viewer already has plus their newly exposed lines.
//!
//! Within the span of rows and columns that changed, the columns are cut into strips of
//! [`STRIP`] pixels and every row of a strip is hashed, in the old frame and in the new. In a few
//! strips spread across the span, a changed new row whose hash appears exactly once in the old
//! strip, at another height, votes for that shift. The shift with the most votes wins; then every
//! strip is hashed, the runs of rows the shift explains in each become copies, and copies side by
//! side with the same rows are merged. A change that is no move costs only the voters' hashes. A
//! scroll bar or a sidebar that does not move only loses its own strips. When no shift wins the
//! vote, the encoder's last vertical shift is tried: a page scrolled by the same step again may
//! keep too few lines in view, or only lines that look like others, to win it.
//!
//! Failing a vertical move, a move in x (or in x and y: a dragged window) is looked for: in a
//! dozen rows spread over those of the span that show something where they changed, a piece of
//! what changed is searched for in the old frame nearby, and three pieces found at the same
//! shift decide it. The rows that shift explains, in
//! narrow strips, become copies, ordered so that none overwrites another's source.
//!
//! The hashes only find candidates. The encoder applies the copies to its mirror of the viewer's
//! picture and then compares that with the new frame as usual, so a collision costs bytes, never
//! a wrong pixel.

use std::collections::HashMap;

use super::encoder::{first_diff, last_diff, merge_row};
use super::glyphs::GlyphOp;
use super::wire::{FrameRef, Rect};

/// Width of the column strips hashed separately.
const STRIP: u32 = 64;
/// Fewest changed rows worth a search (a keystroke changes fewer).
const MIN_ROWS: u32 = 16;
/// Shortest run of rows sent as a copy.
const MIN_RUN: u32 = 4;
/// Strips that vote on the shift, at most.
const VOTING_STRIPS: usize = 6;
/// Fewest votes for a shift to be taken.
const MIN_VOTES: u32 = 4;
/// Most copies in one frame; the rest is sent as pixels.
pub(super) const MAX_COPIES: usize = 256;

/// A hash of a row of pixels (FxHash over 8-byte words).
pub(super) fn hash_row(px: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = px.len() as u64;
    let mut words = px.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().unwrap_or_default());
        h = (h.rotate_left(5) ^ v).wrapping_mul(K);
    }
    for &b in words.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h
}

/// The bounding box of what differs between `old` and `new` inside `within` (which lies inside
/// both frames, of equal size), if anything does.
fn changed_box(old: &FrameRef<'_>, new: &FrameRef<'_>, within: &Rect) -> Option<Rect> {
    let (mut x0, mut x1, mut y0, mut y1) = (u32::MAX, 0, u32::MAX, 0);
    for y in within.y..within.y + within.h {
        let (a, b) = (
            old.row(y, within.x, within.x + within.w),
            new.row(y, within.x, within.x + within.w),
        );
        if a == b {
            continue;
        }
        x0 = x0.min(within.x + first_diff(a, b));
        x1 = x1.max(within.x + last_diff(a, b) + 1);
        y0 = y0.min(y);
        y1 = y + 1;
    }
    (y1 > 0).then(|| Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    })
}

/// What [`find_moves`] found.
#[derive(Debug, Default)]
pub(super) struct Moves {
    /// Copies in the order they must be applied (see [`GlyphOp::Copy`]).
    pub(super) copies: Vec<GlyphOp>,
    /// The shift (old row minus new) of a vertical move, to try again on the next frame.
    pub(super) dy: Option<i64>,
    /// The shift (old minus new, in x and y) of a move across, to try again on the next frame.
    pub(super) across: Option<(i64, i64)>,
    /// The bounding box of what changed, when it was large enough to search.
    pub(super) span: Option<Rect>,
}

/// Copies that turn `old` into much of `new` inside `within` by moving rows up or down, or
/// failing that sideways or across. Nothing if nothing there moved.
///
/// `last_dy` is the shift of the last vertical move: a page scrolled by the same step again
/// (Page Down, a wheel's notch) may keep too few lines in view, or only lines that look like
/// others (a code block's closing braces), to win the vote. That shift is then tried, and taken
/// if the copies it makes (runs of rows it explains, each holding a changed row) hold at least
/// [`MIN_VOTES`] rows that are not of one colour. `last_across` is likewise the shift of the last
/// move across (a window dragged on), tried when the probes of a move across find no shift.
pub(super) fn find_moves(
    old: &FrameRef<'_>,
    new: &FrameRef<'_>,
    within: &Rect,
    last_dy: Option<i64>,
    last_across: Option<(i64, i64)>,
) -> Moves {
    let screen = Rect {
        x: 0,
        y: 0,
        w: new.width,
        h: new.height,
    };
    if (old.width, old.height) != (new.width, new.height) {
        return Moves::default();
    }
    let Some(within) = within.intersect(&screen) else {
        return Moves::default();
    };
    if within.h < MIN_ROWS {
        return Moves::default();
    }
    let Some(span) = changed_box(old, new, &within) else {
        return Moves::default();
    };
    if span.h < MIN_ROWS || span.w < STRIP / 2 {
        return Moves::default();
    }
    Moves {
        span: Some(span),
        ..moves_in(old, new, &span, last_dy, last_across)
    }
}

/// The moves of [`find_moves`] inside `span`, the bounding box of what changed.
fn moves_in(
    old: &FrameRef<'_>,
    new: &FrameRef<'_>,
    span: &Rect,
    last_dy: Option<i64>,
    last_across: Option<(i64, i64)>,
) -> Moves {
    let span = *span;
    // The strip at a left edge, hashed.
    let strip = |sx: u32| {
        let sw = STRIP.min(span.x + span.w - sx);
        let hashes = |f: &FrameRef<'_>| -> Vec<u64> {
            (span.y..span.y + span.h)
                .map(|y| hash_row(f.row(y, sx, sx + sw)))
                .collect()
        };
        (sx, sw, hashes(old), hashes(new))
    };
    let lefts: Vec<u32> = (span.x..span.x + span.w).step_by(STRIP as usize).collect();
    // A few strips spread across the span vote first, so that a change that is no move (a new
    // picture, a page of new text) costs only their hashes.
    let every = lefts.len().div_ceil(VOTING_STRIPS);
    let voters: Vec<_> = lefts.iter().step_by(every).map(|&sx| strip(sx)).collect();
    let voted = vote(&voters);
    // The area of the destinations of `copies`.
    // The copies of a move across: by the shift voted for, else by that of the last move across
    // if they explain half the span (a drag goes on at the same pace, and its probes may all
    // land on text that repeats or on one colour; text that repeats here and there is no drag).
    let across_shift = || {
        if let Some(d) = vote_shift(old, new, &span) {
            return Some((d, shifted_copies(old, new, &span, d.0, d.1)));
        }
        let d = last_across.filter(|&(dx, dy)| {
            dx.unsigned_abs() < u64::from(span.w) && dy.unsigned_abs() < u64::from(span.h)
        })?;
        let copies = shifted_copies(old, new, &span, d.0, d.1);
        (2 * copied_area(&copies) >= span.area()).then_some((d, copies))
    };
    if let Some(dy) = voted {
        let copies = vertical_copies(&voters, &lefts, every, &strip, &span, dy);
        // A window dragged down and across can win the vote in many strips (rows of a rule or
        // a bar, and the blank rows of short lines, alike along the drag): while a drag goes
        // on, a move across that explains more wins.
        if !copies.is_empty() && last_across.is_some() {
            let across = across_shift()
                .filter(|((dx, _), c)| *dx != 0 && copied_area(c) > copied_area(&copies));
            if let Some((d, copies)) = across {
                return Moves {
                    copies,
                    across: Some(d),
                    ..Moves::default()
                };
            }
        }
        if !copies.is_empty() {
            return Moves {
                copies,
                dy: Some(dy),
                ..Moves::default()
            };
        }
    }
    if let Some(dy) =
        last_dy.filter(|&dy| voted != Some(dy) && dy != 0 && dy.unsigned_abs() < u64::from(span.h))
    {
        let copies = vertical_copies(&voters, &lefts, every, &strip, &span, dy);
        if inked_rows(new, &copies, MIN_VOTES) >= MIN_VOTES {
            return Moves {
                copies,
                dy: Some(dy),
                ..Moves::default()
            };
        }
    }
    // No vertical move: perhaps a window dragged sideways or across.
    match across_shift() {
        Some((d, copies)) => Moves {
            copies,
            across: Some(d),
            ..Moves::default()
        },
        None => Moves::default(),
    }
}

/// The area the copies among `copies` paint.
pub(super) fn copied_area(copies: &[GlyphOp]) -> u64 {
    copies
        .iter()
        .map(|c| match c {
            GlyphOp::Copy { src, .. } => src.area(),
            _ => 0,
        })
        .sum()
}

/// How many rows of the destinations of `copies` in `frame` are not of one colour, counted up
/// to `enough`.
fn inked_rows(frame: &FrameRef<'_>, copies: &[GlyphOp], enough: u32) -> u32 {
    let mut n = 0;
    for op in copies {
        let GlyphOp::Copy { src, x, y } = op else {
            continue;
        };
        for row in *y..*y + src.h {
            let px = frame.row(row, *x, *x + src.w);
            if px.chunks_exact(4).any(|p| p[..3] != px[..3]) {
                n += 1;
                if n >= enough {
                    return n;
                }
            }
        }
    }
    n
}

/// A column strip: its left edge and width, and its rows' hashes in the old and the new frame.
type Strip = (u32, u32, Vec<u64>, Vec<u64>);

/// The copies that move rows of `span` by `dy` (old row minus new), from the hashed strips
/// (`voters` are those of every `every`th left edge of `lefts`, hashed already).
fn vertical_copies(
    voters: &[Strip],
    lefts: &[u32],
    every: usize,
    strip: &dyn Fn(u32) -> Strip,
    span: &Rect,
    dy: i64,
) -> Vec<GlyphOp> {
    let mut voters = voters.iter();
    let strips: Vec<_> = lefts
        .iter()
        .enumerate()
        .map(|(i, &sx)| match i % every {
            0 => voters.next().cloned().unwrap_or_else(|| strip(sx)),
            _ => strip(sx),
        })
        .collect();
    let n = span.h as i64;
    let mut dests = Vec::new();
    for (sx, sw, old_h, new_h) in &strips {
        for (start, len) in moved_runs(
            span.h,
            |i| {
                let from = i64::from(i) + dy;
                (0..n).contains(&from) && old_h[from as usize] == new_h[i as usize]
            },
            |i| old_h[i as usize] != new_h[i as usize],
        ) {
            dests.push(Rect {
                x: *sx,
                y: span.y + start,
                w: *sw,
                h: len,
            });
        }
    }
    dests.sort_by_key(|r| (r.y, r.h, r.x));
    merge_row(&mut dests, 0);
    // Content moving up (sources below destinations) is copied top first, down bottom first,
    // so that no copy overwrites a later one's source before it is read.
    if dy < 0 {
        dests.reverse();
    }
    dests.truncate(MAX_COPIES);
    dests
        .into_iter()
        .map(|d| GlyphOp::Copy {
            src: Rect {
                y: (i64::from(d.y) + dy) as u32,
                ..d
            },
            x: d.x,
            y: d.y,
        })
        .collect()
}

/// The runs of rows `0..n` that a move explains (`explained`), at least [`MIN_RUN`] long and
/// holding a row that changed (`changed`; copying rows onto themselves is no use), as (first
/// row, length).
fn moved_runs(
    n: u32,
    explained: impl Fn(u32) -> bool,
    changed: impl Fn(u32) -> bool,
) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut run: Option<(u32, bool)> = None;
    for i in 0..=n {
        match (i < n && explained(i), run) {
            (true, None) => run = Some((i, changed(i))),
            (true, Some((start, any))) => run = Some((start, any || changed(i))),
            (false, Some((start, any))) => {
                if any && i - start >= MIN_RUN {
                    out.push((start, i - start));
                }
                run = None;
            }
            (false, None) => {}
        }
    }
    out
}

/// Width of a probe: a piece of a changed row looked for in the old frame.
const PROBE: u32 = 32;
/// How far (in x and in y) a probe is looked for: a window dragged 60 times a second moves
/// less than this between two frames.
const REACH: u32 = 128;
/// Rows probed, at most.
const PROBES: u32 = 12;
/// Fewest probes that must agree on a shift.
const MIN_PROBES: u32 = 3;
/// Width of the column strips a sideways move is checked in.
const FINE_STRIP: u32 = 16;

/// Rows tried for each probe: the probes are spread over those that can be probed.
const PROBE_TRIES: u32 = 8;
/// Fewest changes of colour along a probe: fewer show too little to be found in few places.
const PROBE_EDGES: usize = 3;
/// Most places one probe may be found at and still vote (text repeats, a picture rarely).
const PROBE_PLACES: usize = 16;
/// Shifts with the most votes that are then checked against whole rows.
const CANDIDATES: usize = 4;

/// The shift (old position minus new, in x and y, not both 0) of a region that moved sideways
/// or diagonally, if there is one: in [`PROBES`] rows spread over those of `span` that show
/// something where they changed, a piece of what changed is looked for in the old frame within
/// [`REACH`], and each place it is found votes for a shift. Of the shifts at least [`MIN_PROBES`] probes voted for, the one
/// that explains the most pixels of the probed rows wins (lines of text repeat, so a shift by a
/// line also gets votes).
fn vote_shift(old: &FrameRef<'_>, new: &FrameRef<'_>, span: &Rect) -> Option<(i64, i64)> {
    if span.w < PROBE || span.h < MIN_ROWS {
        return None;
    }
    let (w, h) = (new.width, new.height);
    let mut votes: HashMap<(i64, i64), u32> = HashMap::new();
    // Where row `y` is probed, if it changed: the piece nearest the middle of what changed there
    // that shows something, a few changes of colour along it (a terminal's short lines leave the
    // middle of its window blank, and the end of a line alone is found in too many places), away
    // from the ends of what changed (where a dragged window uncovers what it hid, found nowhere).
    let probe_at = |y: u32| -> Option<u32> {
        let (a, b) = (
            old.row(y, span.x, span.x + span.w),
            new.row(y, span.x, span.x + span.w),
        );
        if a == b {
            return None;
        }
        let (lo, hi) = (first_diff(a, b), last_diff(a, b));
        let (lo, hi) = if hi >= lo + 3 * PROBE {
            (lo + PROBE, hi - PROBE)
        } else {
            (lo, hi)
        };
        let mid = (lo + hi) / 2;
        (0..=(hi - lo) / (PROBE / 2) + 1)
            .flat_map(|k| [mid.checked_sub(k * PROBE / 2), Some(mid + k * PROBE / 2)])
            .flatten()
            .filter(|c| (lo..=hi).contains(c))
            .map(|c| {
                (span.x + c)
                    .saturating_sub(PROBE / 2)
                    .clamp(span.x, span.x + span.w - PROBE)
            })
            .find(|&x| {
                let px = new.row(y, x, x + PROBE).chunks_exact(4);
                px.clone().zip(px.skip(1)).filter(|(a, b)| a != b).count() >= PROBE_EDGES
            })
    };
    // Of the rows that can be probed, among a few per probe spread over the span, [`PROBES`]
    // spread over them: a window's text may fill only a few lines at its top.
    let fine = (span.h / PROBES / PROBE_TRIES).max(1) as usize;
    let probed: Vec<(u32, u32)> = (span.y..span.y + span.h)
        .step_by(fine)
        .filter_map(|y| probe_at(y).map(|x| (y, x)))
        .collect();
    let every = probed.len().div_ceil(PROBES as usize).max(1);
    let mut rows = Vec::new();
    for &(y, x) in probed.iter().step_by(every) {
        let probe = new.row(y, x, x + PROBE);
        rows.push(y);
        let (x0, x1) = (x.saturating_sub(REACH), (x + REACH + PROBE).min(w));
        let mut found = Vec::new();
        'rows: for oy in y.saturating_sub(REACH)..(y + REACH + 1).min(h) {
            let row = old.row(oy, x0, x1);
            for (i, at) in row.chunks_exact(4).enumerate() {
                if at != &probe[..4] || (i + PROBE as usize) * 4 > row.len() {
                    continue;
                }
                if row[i * 4..(i + PROBE as usize) * 4] == *probe {
                    found.push((
                        i64::from(x0) + i as i64 - i64::from(x),
                        i64::from(oy) - i64::from(y),
                    ));
                    if found.len() > PROBE_PLACES {
                        break 'rows;
                    }
                }
            }
        }
        if found.len() <= PROBE_PLACES {
            for shift in found.into_iter().filter(|s| *s != (0, 0)) {
                *votes.entry(shift).or_default() += 1;
            }
        }
    }
    let mut candidates: Vec<((i64, i64), u32)> = votes
        .into_iter()
        .filter(|(_, v)| *v >= MIN_PROBES)
        .collect();
    candidates.sort_by_key(|((dx, dy), v)| (std::cmp::Reverse(*v), dx.abs() + dy.abs()));
    candidates.truncate(CANDIDATES);
    // The pixels of the probed rows each shift explains.
    let explained = |(dx, dy): (i64, i64)| -> usize {
        let x0 = i64::from(span.x).max(-dx).max(0);
        let x1 = i64::from(span.x + span.w).min(i64::from(w) - dx);
        if x1 <= x0 {
            return 0;
        }
        rows.iter()
            .filter_map(|&y| {
                let oy = i64::from(y) + dy;
                (0..i64::from(h)).contains(&oy).then(|| {
                    let a = old.row(oy as u32, (x0 + dx) as u32, (x1 + dx) as u32);
                    let b = new.row(y, x0 as u32, x1 as u32);
                    a.chunks_exact(4)
                        .zip(b.chunks_exact(4))
                        .filter(|(p, q)| p == q)
                        .count()
                })
            })
            .sum()
    };
    candidates
        .into_iter()
        .map(|(shift, _)| (explained(shift), shift))
        .max_by_key(|(n, (dx, dy))| (*n, std::cmp::Reverse(dx.abs() + dy.abs())))
        .filter(|(n, _)| *n > 0)
        .map(|(_, shift)| shift)
}

/// The copies that move content by (`dx`, `dy`) (old position minus new) into the rows of
/// `span` that such a move explains, in column strips of [`FINE_STRIP`], ordered so that no copy
/// overwrites the source of a later one (copies caught in a cycle are left out).
fn shifted_copies(
    old: &FrameRef<'_>,
    new: &FrameRef<'_>,
    span: &Rect,
    dx: i64,
    dy: i64,
) -> Vec<GlyphOp> {
    // What the move uncovers (left of a window moved right, right of one moved left) is no
    // copy: the strips start and end at the moved content's edges, so that none straddles one.
    let x0 = span.x + (-dx).clamp(0, i64::from(span.w)) as u32;
    let x1 = span.x + span.w - dx.clamp(0, i64::from(span.x + span.w - x0)) as u32;
    let mut dests = Vec::new();
    for sx in (x0..x1).step_by(FINE_STRIP as usize) {
        let sw = FINE_STRIP.min(x1 - sx);
        let ox = i64::from(sx) + dx;
        if ox < 0 || ox + i64::from(sw) > i64::from(old.width) {
            continue;
        }
        let ox = ox as u32;
        let runs = moved_runs(
            span.h,
            |i| {
                let (y, oy) = (span.y + i, i64::from(span.y + i) + dy);
                (0..i64::from(old.height)).contains(&oy)
                    && old.row(oy as u32, ox, ox + sw) == new.row(y, sx, sx + sw)
            },
            |i| old.row(span.y + i, sx, sx + sw) != new.row(span.y + i, sx, sx + sw),
        );
        for (start, len) in runs {
            dests.push(Rect {
                x: sx,
                y: span.y + start,
                w: sw,
                h: len,
            });
        }
    }
    dests.sort_by_key(|r| (r.y, r.h, r.x));
    merge_row(&mut dests, 0);
    dests.truncate(MAX_COPIES);
    let src = |d: &Rect| Rect {
        x: (i64::from(d.x) + dx) as u32,
        y: (i64::from(d.y) + dy) as u32,
        ..*d
    };
    // Copy `i` must come before any copy whose destination covers part of its source.
    let n = dests.len();
    let mut blocked_by = vec![0usize; n];
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        let s = src(&dests[i]);
        for (j, d) in dests.iter().enumerate() {
            if i != j && d.intersect(&s).is_some() {
                before[i].push(j);
                blocked_by[j] += 1;
            }
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| blocked_by[i] == 0).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        let d = dests[i];
        out.push(GlyphOp::Copy {
            src: src(&d),
            x: d.x,
            y: d.y,
        });
        for &j in &before[i] {
            blocked_by[j] -= 1;
            if blocked_by[j] == 0 {
                ready.push(j);
            }
        }
    }
    out
}

/// The shift (old row minus new row) that the most changed rows of `strips` vote for, if it has
/// at least [`MIN_VOTES`]; ties go to the smaller shift.
fn vote(strips: &[Strip]) -> Option<i64> {
    let mut votes: HashMap<i64, u32> = HashMap::new();
    let mut index: HashMap<u64, Option<usize>> = HashMap::new();
    for (_, _, old_h, new_h) in strips {
        index.clear();
        for (y, h) in old_h.iter().enumerate() {
            index
                .entry(*h)
                .and_modify(|at| *at = None)
                .or_insert(Some(y));
        }
        for (y, h) in new_h.iter().enumerate() {
            if old_h[y] == *h {
                continue;
            }
            if let Some(Some(from)) = index.get(h)
                && *from != y
            {
                *votes.entry(*from as i64 - y as i64).or_default() += 1;
            }
        }
    }
    votes
        .into_iter()
        .filter(|(_, v)| *v >= MIN_VOTES)
        .max_by_key(|(dy, v)| (*v, std::cmp::Reverse(dy.abs())))
        .map(|(dy, _)| dy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w` x `h` frame of text-like rows: row `y` shows line `line(y)`.
    fn page(w: u32, h: u32, line: impl Fn(u32) -> u32) -> Vec<u8> {
        let mut px = vec![0u8; (w * h * 4) as usize];
        for y in 0..h {
            let l = line(y);
            for x in 0..w {
                let o = ((y * w + x) * 4) as usize;
                let v = (l.wrapping_mul(2_654_435_761) >> (x % 29)) as u8 ^ (x as u8);
                px[o..o + 3].copy_from_slice(&[v, v.wrapping_add(l as u8), 40]);
            }
        }
        px
    }

    fn frame(w: u32, h: u32, data: &[u8]) -> FrameRef<'_> {
        FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data,
        }
    }

    /// The moves from `old` to `new` (`w` x `h`) anywhere on the screen, with the last vertical
    /// shift `last_dy` and no move across before.
    fn moves(w: u32, h: u32, old: &[u8], new: &[u8], last_dy: Option<i64>) -> Moves {
        let all = Rect { x: 0, y: 0, w, h };
        find_moves(&frame(w, h, old), &frame(w, h, new), &all, last_dy, None)
    }

    fn apply(px: &mut [u8], w: u32, ops: &[GlyphOp]) {
        for op in ops {
            if let GlyphOp::Copy { src, x, y } = op {
                super::super::glyphs::copy_rect(px, w, src, *x, *y);
            }
        }
    }

    #[test]
    fn a_page_scrolled_up_is_copied_but_its_new_lines() {
        let (w, h) = (300, 200);
        let old = page(w, h, |y| y);
        let new = page(w, h, |y| y + 37);
        let ops = moves(w, h, &old, &new, None).copies;
        assert!(!ops.is_empty());
        let mut mirror = old.clone();
        apply(&mut mirror, w, &ops);
        let pitch = (w * 4) as usize;
        let same = (0..h as usize)
            .filter(|y| mirror[y * pitch..(y + 1) * pitch] == new[y * pitch..(y + 1) * pitch])
            .count();
        assert_eq!(
            same,
            (h - 37) as usize,
            "all but the exposed lines are right"
        );
    }

    #[test]
    fn a_page_scrolled_down_under_a_fixed_scroll_bar_is_copied() {
        let (w, h) = (300, 200);
        let bar = |px: &mut Vec<u8>, top: u32| {
            for y in 0..h {
                for x in 280..w {
                    let o = ((y * w + x) * 4) as usize;
                    let on = (top..top + 30).contains(&y);
                    px[o..o + 3].copy_from_slice(&if on { [9, 9, 9] } else { [200, 200, 200] });
                }
            }
        };
        let mut old = page(w, h, |y| y + 100);
        bar(&mut old, 100);
        let mut new = page(w, h, |y| y + 80);
        bar(&mut new, 90);
        let ops = moves(w, h, &old, &new, None).copies;
        let mut mirror = old.clone();
        apply(&mut mirror, w, &ops);
        let pitch = (w * 4) as usize;
        for y in 20..h as usize {
            let text = y * pitch..y * pitch + 256 * 4;
            assert_eq!(mirror[text.clone()], new[text], "row {y}");
        }
    }

    /// A desktop of one colour with a window of text-like rows at (`x`, `y`), which repeat
    /// every `period` rows (lines of text that look alike).
    fn desktop(w: u32, h: u32, (x, y): (u32, u32), period: u32) -> Vec<u8> {
        let win = page(260, 150, |row| row % period * 3 + 11);
        let mut px = vec![0u8; (w * h * 4) as usize];
        for (i, p) in px.chunks_exact_mut(4).enumerate() {
            let (px_x, px_y) = (i as u32 % w, i as u32 / w);
            if (x..x + 260).contains(&px_x) && (y..y + 150).contains(&px_y) {
                let o = (((px_y - y) * 260 + px_x - x) * 4) as usize;
                p.copy_from_slice(&win[o..o + 4]);
            } else {
                p.copy_from_slice(&[90, 60, 30, 0]);
            }
        }
        px
    }

    #[test]
    fn a_window_dragged_sideways_or_across_is_copied() {
        let (w, h) = (640, 400);
        for (from, to, period) in [
            ((100, 80), (137, 80), 1000),
            ((200, 150), (171, 163), 1000),
            ((60, 24), (70, 28), 13),
        ] {
            let old = desktop(w, h, from, period);
            let new = desktop(w, h, to, period);
            let ops = moves(w, h, &old, &new, None).copies;
            assert!(!ops.is_empty(), "{from:?} -> {to:?} was found");
            let mut mirror = old.clone();
            apply(&mut mirror, w, &ops);
            // Every pixel of the window in its new place is right but a strip at each side.
            let pitch = (w * 4) as usize;
            let mut right = 0;
            for y in to.1..to.1 + 150 {
                for x in to.0..to.0 + 260 {
                    let o = y as usize * pitch + x as usize * 4;
                    right += usize::from(mirror[o..o + 4] == new[o..o + 4]);
                }
            }
            assert!(
                right >= 230 * 150,
                "{from:?} -> {to:?}: {right} of the window's pixels copied right"
            );
        }
    }

    /// While a window is dragged, a vertical move that its shaded rows (each one colour across
    /// and unlike the others) explain, most of the change as it is, gives way to the move
    /// across that explains more.
    #[test]
    fn during_a_drag_a_move_across_that_explains_more_beats_a_vertical_one() {
        let (w, h, ww, wh) = (640u32, 400u32, 260u32, 150u32);
        let screen = |(wx, wy): (u32, u32)| {
            let mut px = page(w, h, |y| y * 7 + 3);
            for y in 0..wh {
                for x in 0..ww {
                    let o = (((wy + y) * w + wx + x) * 4) as usize;
                    let c = if x < 40 {
                        let v = (x * 31 + y * 17).wrapping_mul(2_654_435_761) >> 24;
                        [v as u8, (v >> 3) as u8, 90]
                    } else {
                        [200, y as u8, 60]
                    };
                    px[o..o + 3].copy_from_slice(&c);
                }
            }
            px
        };
        let (old, new) = (screen((200, 100)), screen((210, 104)));
        let all = Rect { x: 0, y: 0, w, h };
        let (old_f, new_f) = (frame(w, h, &old), frame(w, h, &new));
        let alone = find_moves(&old_f, &new_f, &all, None, None);
        assert!(alone.dy.is_some(), "the shaded rows vote for a move down");
        let dragged = find_moves(&old_f, &new_f, &all, None, Some((-10, -4)));
        assert_eq!(dragged.across, Some((-10, -4)), "{:?}", dragged.copies);
        let mut mirror = old.clone();
        apply(&mut mirror, w, &dragged.copies);
        let pitch = (w * 4) as usize;
        let right: usize = (104..104 + wh)
            .map(|y| {
                (210..210 + ww)
                    .filter(|&x| {
                        let o = y as usize * pitch + x as usize * 4;
                        mirror[o..o + 4] == new[o..o + 4]
                    })
                    .count()
            })
            .sum();
        assert!(
            right >= 240 * 150,
            "{right} of the window's pixels copied right"
        );
    }

    #[test]
    fn the_last_shift_finds_a_page_whose_kept_lines_look_like_others() {
        let (w, h) = (300, 200);
        // The last 80 rows of the old page are one line of 10 rows, eight times; the new page
        // keeps the last 40 in view at its top: no row of theirs is unique, so none votes.
        let line = |y: u32| {
            if (120..200).contains(&y) {
                5000 + y % 10
            } else {
                y
            }
        };
        let old = page(w, h, line);
        let new = page(w, h, |y| line(y + 160));
        let alone = moves(w, h, &old, &new, None);
        assert_eq!(alone.dy, None, "{alone:?}");
        let found = moves(w, h, &old, &new, Some(160));
        assert_eq!(found.dy, Some(160));
        let mut mirror = old.clone();
        apply(&mut mirror, w, &found.copies);
        let pitch = (w * 4) as usize;
        assert_eq!(
            mirror[..40 * pitch],
            new[..40 * pitch],
            "the kept lines are copied"
        );
    }

    #[test]
    fn rows_of_one_colour_do_not_confirm_the_last_shift() {
        let (w, h) = (300, 200);
        let blank = |px: &mut Vec<u8>, rows: std::ops::Range<u32>| {
            for y in rows {
                let o = (y * w * 4) as usize;
                px[o..o + (w * 4) as usize].fill(200);
            }
        };
        // Blank rows at the old page's foot and the new page's head, and nothing else in common
        // (a video's letterbox bars, or a new page).
        let mut old = page(w, h, |y| y);
        blank(&mut old, 160..200);
        let mut new = page(w, h, |y| y + 1000);
        blank(&mut new, 0..40);
        let found = moves(w, h, &old, &new, Some(160));
        assert!(found.copies.is_empty() && found.dy.is_none(), "{found:?}");
    }

    #[test]
    fn unrelated_pictures_and_small_changes_are_not_moves() {
        let (w, h) = (200, 120);
        let a = page(w, h, |y| y);
        let b = page(w, h, |y| y * 7 + 1000);
        for last_dy in [None, Some(37)] {
            assert!(moves(w, h, &a, &b, last_dy).copies.is_empty());
        }
        let mut c = a.clone();
        c[4 * (50 * w as usize + 10)] ^= 0xff;
        assert!(moves(w, h, &a, &c, None).copies.is_empty());
    }
}
