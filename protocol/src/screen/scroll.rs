//! Finding regions that moved up or down (a scrolled terminal, document or page), so that they go
//! as copies of what the viewer already has plus their newly exposed lines.
//!
//! Within the span of rows and columns that changed, the columns are cut into strips of
//! [`STRIP`] pixels and every row of a strip is hashed, in the old frame and in the new. In a few
//! strips spread across the span, a changed new row whose hash appears exactly once in the old
//! strip, at another height, votes for that shift. The shift with the most votes wins; then every
//! strip is hashed, the runs of rows the shift explains in each become copies, and copies side by
//! side with the same rows are merged. A change that is no move costs only the voters' hashes. A scroll bar or a
//! sidebar that does not move only loses its own strips.
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
fn hash_row(px: &[u8]) -> u64 {
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

/// Copies that turn `old` into much of `new` inside `within` by moving rows up or down, in the
/// order they must be applied (see [`GlyphOp::Copy`]). Empty if nothing there moved.
pub(super) fn find_moves(old: &FrameRef<'_>, new: &FrameRef<'_>, within: &Rect) -> Vec<GlyphOp> {
    let screen = Rect {
        x: 0,
        y: 0,
        w: new.width,
        h: new.height,
    };
    if (old.width, old.height) != (new.width, new.height) {
        return Vec::new();
    }
    let Some(within) = within.intersect(&screen) else {
        return Vec::new();
    };
    if within.h < MIN_ROWS {
        return Vec::new();
    }
    let Some(span) = changed_box(old, new, &within) else {
        return Vec::new();
    };
    if span.h < MIN_ROWS || span.w < STRIP / 2 {
        return Vec::new();
    }
    // Per strip: its left edge and width, and its rows' hashes in the old and the new frame.
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
    let Some(dy) = vote(&voters) else {
        return Vec::new();
    };
    let mut voters = voters.into_iter();
    let strips: Vec<_> = lefts
        .iter()
        .enumerate()
        .map(|(i, &sx)| match i % every {
            0 => voters.next().unwrap_or_else(|| strip(sx)),
            _ => strip(sx),
        })
        .collect();
    let n = span.h as i64;
    let mut dests = Vec::new();
    for (sx, sw, old_h, new_h) in &strips {
        let mut run: Option<(u32, bool)> = None;
        for i in 0..=n {
            let from = i + dy;
            let explained =
                i < n && (0..n).contains(&from) && old_h[from as usize] == new_h[i as usize];
            let changed = i < n && old_h[i as usize] != new_h[i as usize];
            match (explained, run) {
                (true, None) => run = Some((i as u32, changed)),
                (true, Some((start, any))) => run = Some((start, any || changed)),
                (false, Some((start, any))) => {
                    let len = i as u32 - start;
                    if any && len >= MIN_RUN {
                        dests.push(Rect {
                            x: *sx,
                            y: span.y + start,
                            w: *sw,
                            h: len,
                        });
                    }
                    run = None;
                }
                (false, None) => {}
            }
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

/// The shift (old row minus new row) that the most changed rows of `strips` vote for, if it has
/// at least [`MIN_VOTES`]; ties go to the smaller shift.
fn vote(strips: &[(u32, u32, Vec<u64>, Vec<u64>)]) -> Option<i64> {
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
        let all = Rect { x: 0, y: 0, w, h };
        let ops = find_moves(&frame(w, h, &old), &frame(w, h, &new), &all);
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
        let all = Rect { x: 0, y: 0, w, h };
        let ops = find_moves(&frame(w, h, &old), &frame(w, h, &new), &all);
        let mut mirror = old.clone();
        apply(&mut mirror, w, &ops);
        let pitch = (w * 4) as usize;
        for y in 20..h as usize {
            let text = y * pitch..y * pitch + 256 * 4;
            assert_eq!(mirror[text.clone()], new[text], "row {y}");
        }
    }

    #[test]
    fn unrelated_pictures_and_small_changes_are_not_moves() {
        let (w, h) = (200, 120);
        let all = Rect { x: 0, y: 0, w, h };
        let a = page(w, h, |y| y);
        let b = page(w, h, |y| y * 7 + 1000);
        assert!(find_moves(&frame(w, h, &a), &frame(w, h, &b), &all).is_empty());
        let mut c = a.clone();
        c[4 * (50 * w as usize + 10)] ^= 0xff;
        assert!(find_moves(&frame(w, h, &a), &frame(w, h, &c), &all).is_empty());
    }
}
