//! Finding what changed for one viewer, and deciding what goes lossy.

use super::attic::Shelf;
use super::glyphs::{GlyphCache, GlyphOp, copy_rect, encode_ops};
use super::pack::{Executor, encode_parts, palette_of};
use super::predict;
use super::scroll::{copied_area, find_moves};
use super::under::{Beneath, SAVE_AGE_MS, SAVE_MIN_AREA};
use super::video::{VideoEncoder, video_rect};
use super::wire::*;
use crate::msg::ScreenMsg;

/// One viewer's screen encoder, as the host's screen loop drives it. [`TileEncoder`] is the
/// changed-tile codec; a video codec can implement the same.
pub trait ScreenEncoder: Send {
    /// Sets the quality mode.
    fn set_quality(&mut self, q: Quality);
    /// Says whether the link is slow (frames take long to be acknowledged).
    fn set_congested(&mut self, congested: bool);
    /// Forgets what the viewer has: the next update is the whole picture.
    fn reset(&mut self);
    /// Whether something already sent waits to be made exact, so the loop must look again soon
    /// even if the screen does not change.
    fn wants_refinement(&self) -> bool;
    /// What changed in `frame` since the last update, as messages for the viewer (none if nothing
    /// did). With `hints`, only those regions may have changed.
    fn update(
        &mut self,
        frame: &FrameRef<'_>,
        hints: Option<&[Rect]>,
        now_ms: u64,
        seq: u64,
        timing: Timing,
        exec: &dyn Executor,
    ) -> Result<Vec<ScreenMsg>, CodecError>;
    /// With no change on screen: what is due to be sent again exactly (none if nothing is).
    fn refine(
        &mut self,
        now_ms: u64,
        seq: u64,
        timing: Timing,
        exec: &dyn Executor,
    ) -> Result<Vec<ScreenMsg>, CodecError>;
}

/// A tile that changed this many times, each within [`MOTION_GAP_MS`] of the last, is in motion.
const MOTION_CHANGES: u8 = 2;
/// See [`MOTION_CHANGES`].
const MOTION_GAP_MS: u64 = 150;
/// A lossy tile is sent again losslessly once it has not changed for one and a half times the
/// gap between its last two changes (it stopped moving at the rhythm it moved at), at least this
/// long…
pub const MIN_SETTLE_MS: u64 = 20;
/// …and at most this long.
pub const SETTLE_MS: u64 = 250;
/// How long the shift of a vertical move is tried again on frames whose own rows do not vote for
/// one (see [`find_moves`]): a reader paging through a document.
const SHIFT_MEMORY_MS: u64 = 5000;
/// Fewest pixels across and down of what a move across must span for what it covers to be
/// saved (see [`TileEncoder::saves_under`]).
const MIN_WINDOW: u32 = 64;
/// How long the shift of a move across is tried again on frames whose probes find none (see
/// [`find_moves`]): a window dragged on at the same pace.
const ACROSS_MEMORY_MS: u64 = 500;
/// Smallest change sent lossy in [`Quality::Smooth`] (a keystroke stays lossless).
const SMOOTH_MIN_AREA: u64 = 64 * 64;
/// Smallest change sent lossy in [`Quality::Auto`].
const AUTO_MIN_AREA: u64 = 32 * 32 * 2;
/// Least area of a frame's lossy rectangles that starts a video (a 256x256 picture): smaller
/// moving pictures go as JPEG.
pub const VIDEO_MIN_AREA: u64 = 256 * 256;

/// The region a viewer gets as video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clip {
    /// Where the video's pictures go (see [`video_rect`]).
    rect: Rect,
    /// When its last picture was sent (ms)…
    last_ms: u64,
    /// …and the time between its last two pictures.
    gap_ms: u64,
    /// How many of its last pictures in a row the encoder coded whole as scene cuts.
    cuts: u8,
    /// Pictures sent since its key picture.
    pictures: u32,
}

/// In Auto, a video whose encoder saw a scene cut in this many pictures in a row shows content
/// that jumps from one picture to an unrelated one (slides flipped, photographs swapped): a
/// video codec codes each of them whole, on one core, where JPEG's bands use them all. The video
/// then ends and the region goes as JPEG for [`VIDEO_BACKOFF_MS`].
const VIDEO_CUTS: u8 = 2;
/// How long Auto sends JPEG, not video, after scene cuts.
const VIDEO_BACKOFF_MS: u64 = 3000;

/// A video ends once its region has not changed for this long at least: ending costs its
/// region's exact pixels and, if the motion goes on, a key picture, so a host that fell behind
/// for a frame or two must not end it.
const VIDEO_SETTLE_MS: u64 = 150;

/// A video younger than this many pictures may end sooner than [`VIDEO_SETTLE_MS`]: it was a
/// burst of changes (a picture redrawn in two passes, a page of pictures scrolled on a slow
/// link), and ending it costs little.
const VIDEO_YOUNG_PICTURES: u32 = 3;

impl Clip {
    /// Whether the region has stopped changing: for three of its gaps between pictures, between
    /// [`VIDEO_SETTLE_MS`] and [`SETTLE_MS`], or, while the video is young, between
    /// [`MIN_SETTLE_MS`] and [`VIDEO_SETTLE_MS`]. The video then ends and the region is refined
    /// exactly.
    fn settled(&self, now_ms: u64) -> bool {
        let wait = if self.pictures < VIDEO_YOUNG_PICTURES {
            (self.gap_ms * 3).clamp(MIN_SETTLE_MS, VIDEO_SETTLE_MS)
        } else {
            (self.gap_ms * 3).clamp(VIDEO_SETTLE_MS, SETTLE_MS)
        };
        now_ms.saturating_sub(self.last_ms) >= wait
    }
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
    /// Per tile: the time a copy or a recall last painted into it (ms). What they brought is
    /// no still content, though the diff did not see it change.
    painted_at: Vec<u64>,
    /// Per tile: milliseconds between its last two changes.
    gap: Vec<u64>,
    lossy: Vec<bool>,
    /// The link is slow (frames take long to be acknowledged): in Auto, any sizeable photo-like
    /// change goes lossy at once instead of waiting to be seen moving.
    congested: bool,
    /// What the viewer's glyph cache holds.
    glyphs: GlyphCache,
    /// The frame's changed rectangles with the cached glyphs painted as background, when there
    /// are any (`width * 4` bytes a row).
    scratch: Vec<u8>,
    /// Copies found by the last [`Self::diff`] (regions that moved), already applied to `prev`;
    /// the next [`Self::encode`] sends them first.
    moves: Vec<GlyphOp>,
    /// The shift of the last vertical move and when it was found (ms), tried again while the
    /// screen keeps scrolling (see [`SHIFT_MEMORY_MS`]).
    shift: Option<(i64, u64)>,
    /// The shift of the last move across (a dragged window) and when it was found (ms), tried
    /// again while the drag goes on (see [`ACROSS_MEMORY_MS`]).
    across: Option<((i64, i64), u64)>,
    /// Rows scrolled out of view that the viewer keeps too, found again when they come back.
    shelf: Shelf,
    /// What windows covered, saved on both sides, found again when they uncover it.
    beneath: Beneath,
    /// The time the last [`Self::diff`] was given (ms), which the next [`Self::encode`] uses.
    now_ms: u64,
    /// The host's video codec, for regions that keep changing (none: they go as JPEG).
    video: Option<Box<dyn VideoEncoder>>,
    /// The region sent as video while it keeps changing.
    clip: Option<Clip>,
    /// No video starts in Auto before this time (ms): its last one was all scene cuts.
    video_after_ms: u64,
}

impl TileEncoder {
    /// A new encoder; its first frame is sent whole.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new encoder that sends regions that keep changing as video, in [`Quality::Auto`] and
    /// [`Quality::Smooth`].
    pub fn with_video(video: Box<dyn VideoEncoder>) -> Self {
        TileEncoder {
            video: Some(video),
            ..Self::default()
        }
    }

    /// Forgets what the viewer has, so that the next frame is sent whole (and a video starts
    /// again with a key picture).
    pub fn reset(&mut self) {
        self.has_prev = false;
        self.moves.clear();
        self.clip = None;
        self.video_after_ms = 0;
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

    /// The region sent as video, while it runs.
    fn running_clip(&self) -> Option<Rect> {
        self.clip
            .filter(|c| !c.settled(self.now_ms))
            .map(|c| c.rect)
    }

    /// Whether any tile is waiting to be refined.
    pub fn has_lossy(&self) -> bool {
        self.lossy.iter().any(|l| *l)
    }

    /// Splits changed rectangles into lossless and lossy ones, per the quality mode and the
    /// tiles' motion, and remembers which tiles the viewer gets lossy.
    ///
    /// Content with few colours, or whose pixels mostly repeat their left neighbour (text and UI,
    /// anti-aliased or not), stays lossless in every mode: it is smaller that way than as JPEG,
    /// and exact.
    fn classify(&mut self, frame: &FrameRef<'_>, rects: &[Rect]) -> (Vec<Rect>, Vec<Rect>) {
        let (mut sharp, mut soft) = (Vec::new(), Vec::new());
        let clip = self
            .running_clip()
            .filter(|_| self.quality != Quality::Sharp);
        for r in rects {
            // What changed under a running video goes in its next picture, whatever it is.
            if clip.is_some_and(|c| c.intersect(r) == Some(*r)) {
                soft.push(*r);
                continue;
            }
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
            // Text and UI stay exact even in motion: few colours, or (anti-aliased text in
            // many colours over a big rectangle) pixels that mostly repeat their neighbour.
            let lossy = candidate
                && palette_of(frame, r).is_none()
                && predict::worth_predicting(
                    (r.y..r.y + r.h).map(|y| frame.row(y, r.x, r.x + r.w)),
                );
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

    /// How long tile `t` must stay unchanged before it is refined: a tile in motion waits one
    /// and a half of its own gaps between changes (between [`MIN_SETTLE_MS`] and [`SETTLE_MS`]),
    /// a tile that changed once only [`MIN_SETTLE_MS`].
    fn settle_ms(&self, t: usize) -> u64 {
        if self.heat[t] >= MOTION_CHANGES {
            (self.gap[t] * 3 / 2).clamp(MIN_SETTLE_MS, SETTLE_MS)
        } else {
            MIN_SETTLE_MS
        }
    }

    /// Lossy tiles that have stopped changing (see [`Self::settle_ms`]), encoded losslessly from
    /// what was captured last (which is what the screen still shows). `None` if none is due.
    pub fn refine(
        &mut self,
        now_ms: u64,
        seq: u64,
        timing: Timing,
        exec: &dyn Executor,
    ) -> Result<Option<Vec<FrameUpdate>>, CodecError> {
        if !self.has_prev {
            return Ok(None);
        }
        if self.clip.is_some_and(|c| c.settled(now_ms)) {
            self.clip = None;
        }
        // Tiles under a running video wait for it to end: its next picture covers them anyway.
        let in_clip = self.clip.map(|c| {
            let last = |v: u32| (v - 1) / TILE;
            (
                c.rect.x / TILE,
                last(c.rect.x + c.rect.w),
                c.rect.y / TILE,
                last(c.rect.y + c.rect.h),
            )
        });
        let tw = self.tiles_w();
        let th = self.height.div_ceil(TILE);
        let mut rects = Vec::new();
        for ty in 0..th {
            let row_start = rects.len();
            for tx in 0..tw {
                let t = (ty * tw + tx) as usize;
                if in_clip.is_some_and(|(x0, x1, y0, y1)| {
                    (x0..=x1).contains(&tx) && (y0..=y1).contains(&ty)
                }) {
                    continue;
                }
                if self.lossy[t] && now_ms.saturating_sub(self.changed_at[t]) >= self.settle_ms(t) {
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
        encode_parts(&self.mirror(), &rects, &[], seq, timing, exec).map(Some)
    }

    /// Compares `frame` with the last encoded frame and returns the changed rectangles, which it
    /// then considers sent. A first frame, or one of another size, is returned whole.
    ///
    /// Regions that moved up or down are found first: they become copies (which the next
    /// [`Self::encode`] sends), and only what the copies do not explain is returned.
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
        self.moves.clear();
        self.now_ms = now_ms;
        if !self.has_prev || w != self.width || h != self.height {
            return Ok(self.start(frame, now_ms));
        }
        let within = changed_within(hints, w, h);
        if let Some(within) = within {
            self.find_moves(frame, &within, now_ms);
            self.recall(frame, &within);
        }
        // What a move exposes (the lines scrolled into view) is new content, not motion: it
        // does not heat its tiles.
        let moved = self
            .moves
            .iter()
            .filter_map(|m| match m {
                GlyphOp::Copy { src, x, y } => Some(src.union(&Rect {
                    x: *x,
                    y: *y,
                    ..*src
                })),
                _ => None,
            })
            .reduce(|a, b| a.union(&b));
        let (tw, th) = (w.div_ceil(TILE), h.div_ceil(TILE));
        let mask = hints.map(|hints| hint_mask(hints, w, h));
        // Tiles wholly under a running video are only checked for a change: it sends them
        // whole.
        let video_tiles = self.running_clip().map(|c| {
            (
                c.x.div_ceil(TILE),
                (c.x + c.w) / TILE,
                c.y.div_ceil(TILE),
                (c.y + c.h) / TILE,
            )
        });
        // Where this frame's copies and recalls paint (`brought`): the viewer's pixels there
        // are not yet what `prev` holds when its saves are applied, so nothing there is saved,
        // nor where the frame saves already.
        let mut brought = Vec::new();
        let mut painted = Vec::new();
        for m in &self.moves {
            match *m {
                GlyphOp::Copy { src, x, y } => brought.push(Rect { x, y, ..src }),
                GlyphOp::Recall { rect, .. } => brought.push(rect),
                GlyphOp::Save { rect } => painted.push(rect),
                _ => {}
            }
        }
        painted.extend_from_slice(&brought);
        let mut out = Vec::new();
        let mut restores: Vec<Rect> = Vec::new();
        let mut saves: Vec<Rect> = Vec::new();
        // Changed boxes whose new rows are still to be taken into `prev`.
        let mut taken: Vec<Rect> = Vec::new();
        for ty in 0..th {
            let (row_start, restore_start, save_start) = (out.len(), restores.len(), saves.len());
            for tx in 0..tw {
                let t = (ty * tw + tx) as usize;
                if mask.as_ref().is_some_and(|m| !m[t]) {
                    continue;
                }
                let whole = video_tiles.is_some_and(|(x0, x1, y0, y1)| {
                    (x0..x1).contains(&tx) && (y0..y1).contains(&ty)
                });
                let changed = if whole {
                    self.diff_tile_whole(frame, tx, ty)
                } else {
                    self.diff_tile(frame, tx, ty)
                };
                if let Some(r) = changed {
                    let since = now_ms.saturating_sub(self.changed_at[t]);
                    if whole {
                        out.push(r);
                    } else {
                        taken.push(r);
                        let (restored, rest) = self.beneath.split(frame, &r);
                        restores.extend(restored);
                        let still = since >= SAVE_AGE_MS
                            && now_ms.saturating_sub(self.painted_at[t]) >= SAVE_AGE_MS
                            && !self.lossy[t];
                        for r in rest.iter().filter_map(|r| self.changed_in(frame, r)) {
                            out.push(r);
                            // Saved if it covers still content, but not where a region
                            // moved in this frame (what a scroll exposes is new content, not
                            // something covering the old) nor where its operations paint or
                            // save.
                            let near_moves = moved.is_some_and(|m| m.intersect(&r).is_some());
                            if still && !near_moves {
                                let mut pieces = vec![r];
                                for p in &painted {
                                    cut_out(&mut pieces, p);
                                }
                                saves.extend(pieces);
                            }
                        }
                    }
                    self.gap[t] = since;
                    let exposed = moved.is_some_and(|m| m.intersect(&r).is_some());
                    let quick = since <= MOTION_GAP_MS && !exposed;
                    self.heat[t] = if quick {
                        self.heat[t].saturating_add(1)
                    } else {
                        1
                    };
                    self.changed_at[t] = now_ms;
                }
            }
            for (list, start) in [
                (&mut out, row_start),
                (&mut restores, restore_start),
                (&mut saves, save_start),
            ] {
                merge_row(list, start);
                merge_down(list, start);
            }
        }
        // A large change over still content (a window, a menu, a dialog) saves what it covers,
        // first (before the copies, as the viewer applies them); what matched what was saved
        // is restored, last.
        let mut ops = Vec::new();
        if saves.iter().map(Rect::area).sum::<u64>() >= SAVE_MIN_AREA {
            let mirror = packed_frame(&self.prev, self.width, self.height);
            for rect in saves {
                if one_colour(&mirror, &rect).is_none() {
                    self.beneath.save(&mirror, &rect);
                    ops.push(GlyphOp::Save { rect });
                }
            }
        }
        // What this frame's copies and recalls brought is not yet still content.
        for p in &brought {
            let tiles: Vec<usize> = self.tiles_of(p).collect();
            for t in tiles {
                self.painted_at[t] = now_ms;
            }
        }
        let pitch = w as usize * 4;
        for r in taken {
            for y in r.y..r.y + r.h {
                let o = y as usize * pitch + r.x as usize * 4;
                self.prev[o..o + r.w as usize * 4].copy_from_slice(frame.row(y, r.x, r.x + r.w));
            }
        }
        ops.append(&mut self.moves);
        ops.extend(restores.into_iter().map(|rect| GlyphOp::Restore { rect }));
        self.moves = ops;
        Ok(out)
    }

    /// Finds the regions of `frame` that moved inside `within`, keeps the rows they push out
    /// of view (see [`Self::keeps`]), applies their copies to `prev` as the viewer will, and
    /// keeps them for the next encode. A copy out of a tile the viewer holds lossy makes its
    /// destination's tiles lossy too.
    fn find_moves(&mut self, frame: &FrameRef<'_>, within: &Rect, now_ms: u64) {
        // Under a running video, nothing is worth a copy.
        if self
            .running_clip()
            .is_some_and(|c| c.intersect(within) == Some(*within))
        {
            return;
        }
        let last_dy = self
            .shift
            .filter(|(_, at)| now_ms.saturating_sub(*at) <= SHIFT_MEMORY_MS)
            .map(|(dy, _)| dy);
        let last_across = self
            .across
            .filter(|(_, at)| now_ms.saturating_sub(*at) <= ACROSS_MEMORY_MS)
            .map(|(d, _)| d);
        let found = find_moves(&self.mirror(), frame, within, last_dy, last_across);
        if let Some(dy) = found.dy {
            self.shift = Some((dy, now_ms));
        }
        if let Some(d) = found.across.filter(|_| !found.copies.is_empty()) {
            self.across = Some((d, now_ms));
        }
        let moves = found.copies;
        let sudden = found
            .span
            .filter(|span| self.is_sudden(&moves, span, now_ms));
        let mut ops = match sudden {
            Some(span) => self.saves_over(&span),
            None => self.saves_under(&moves),
        };
        ops.extend(self.keeps(&moves));
        for op in &moves {
            let GlyphOp::Copy { src, x, y } = *op else {
                continue;
            };
            copy_rect(&mut self.prev, self.width, &src, x, y);
            if self.tiles_of(&src).any(|t| self.lossy[t]) {
                let dest: Vec<usize> = self.tiles_of(&Rect { x, y, ..src }).collect();
                for t in dest {
                    self.lossy[t] = true;
                    self.changed_at[t] = now_ms;
                }
            }
        }
        ops.extend(moves);
        self.moves = ops;
    }

    /// Saves what `copies` that move sideways (a dragged window) cover, as the viewer will: for
    /// each shift whose copies span [`MIN_WINDOW`] pixels each way, the part of their destination
    /// outside their source, in bands of a tile's height where the viewer holds it exactly.
    /// Returns the saves, to be sent before the copies.
    fn saves_under(&mut self, copies: &[GlyphOp]) -> Vec<GlyphOp> {
        let mut shifts: Vec<((i64, i64), Rect, Rect)> = Vec::new();
        for op in copies {
            let GlyphOp::Copy { src, x, y } = *op else {
                continue;
            };
            if x == src.x {
                continue;
            }
            let d = (
                i64::from(x) - i64::from(src.x),
                i64::from(y) - i64::from(src.y),
            );
            let dst = Rect { x, y, ..src };
            match shifts.iter_mut().find(|(s, _, _)| *s == d) {
                Some((_, a, b)) => (*a, *b) = (a.union(&src), b.union(&dst)),
                None => shifts.push((d, src, dst)),
            }
        }
        let mut out = Vec::new();
        let (w, h) = (self.width, self.height);
        // A window's worth: glyphs copied from elsewhere on a line are no window.
        shifts.retain(|(_, _, dst)| dst.w >= MIN_WINDOW && dst.h >= MIN_WINDOW);
        for (_, src, dst) in shifts {
            // A window that hangs off an edge of the screen brings its hidden part in along that
            // edge: what appears there is its own, not something it covers. (Where its edge
            // reaches the screen's in this very move, the strip it covers is not saved either:
            // the copies cannot tell the two apart.)
            let (mut x0, mut y0) = (src.x, src.y);
            let (mut x1, mut y1) = (src.x + src.w, src.y + src.h);
            if dst.x == 0 {
                x0 = 0;
            }
            if dst.y == 0 {
                y0 = 0;
            }
            if dst.x + dst.w == w {
                x1 = w;
            }
            if dst.y + dst.h == h {
                y1 = h;
            }
            let own = Rect {
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
            };
            for part in dst.minus(&own) {
                for rect in self.exact_bands(&part) {
                    // One colour is never restored (see `under.rs`): not worth a save.
                    let mirror = packed_frame(&self.prev, self.width, self.height);
                    if one_colour(&mirror, &rect).is_none() {
                        self.beneath.save(&mirror, &rect);
                        out.push(GlyphOp::Save { rect });
                    }
                }
            }
        }
        out
    }

    /// Whether `copies` found in a change spanning `span` are sudden: the change is large
    /// ([`SAVE_MIN_AREA`]), they explain less than half of it, and all of it had been still for
    /// [`SAVE_AGE_MS`]. A scroll or a drag explains most of what changes, or goes on.
    fn is_sudden(&self, copies: &[GlyphOp], span: &Rect, now_ms: u64) -> bool {
        let moved = copied_area(copies);
        moved > 0
            && span.area() >= SAVE_MIN_AREA
            && 2 * moved < span.area()
            && self.tiles_of(span).all(|t| {
                let at = self.changed_at[t].max(self.painted_at[t]);
                now_ms.saturating_sub(at) >= SAVE_AGE_MS
            })
    }

    /// Saves all of `span`, the change in which sudden copies were found (see
    /// [`Self::is_sudden`]), as the viewer will, where it holds it exactly: what the copies paint
    /// over and what the rest of the change covers, in a save or two rather than one a copy.
    /// Returns the saves, to be sent before the copies.
    fn saves_over(&mut self, span: &Rect) -> Vec<GlyphOp> {
        let mut out = Vec::new();
        for rect in self.exact_bands(span) {
            let mirror = packed_frame(&self.prev, self.width, self.height);
            if one_colour(&mirror, &rect).is_none() {
                self.beneath.save(&mirror, &rect);
                out.push(GlyphOp::Save { rect });
            }
        }
        out
    }

    /// `r` cut into bands of a tile's height, those whose tiles the viewer holds exactly, bands
    /// that touch merged.
    fn exact_bands(&self, r: &Rect) -> Vec<Rect> {
        let tw = self.tiles_w();
        let (tx0, tx1) = (r.x / TILE, (r.x + r.w - 1) / TILE);
        let mut out: Vec<Rect> = Vec::new();
        let mut y = r.y;
        while y < r.y + r.h {
            let ty = y / TILE;
            let end = ((ty + 1) * TILE).min(r.y + r.h);
            if (tx0..=tx1).all(|tx| !self.lossy[(ty * tw + tx) as usize]) {
                match out.last_mut() {
                    Some(b) if b.y + b.h == y => b.h = end - b.y,
                    _ => out.push(Rect {
                        y,
                        h: end - y,
                        ..*r
                    }),
                }
            }
            y = end;
        }
        out
    }

    /// Keeps the rows that `copies` push out of view in the attic, as the viewer will: for each
    /// shift up or down, the rows at the end of the region the copies span that the shift takes
    /// out of it, where the viewer holds them exactly. Returns the keeps, to be sent before the
    /// copies.
    fn keeps(&mut self, copies: &[GlyphOp]) -> Vec<GlyphOp> {
        let mut regions: Vec<(i64, Rect)> = Vec::new();
        for op in copies {
            let GlyphOp::Copy { src, x, y } = *op else {
                continue;
            };
            if x != src.x || y == src.y {
                continue;
            }
            let dy = i64::from(y) - i64::from(src.y);
            let spans = src.union(&Rect { x, y, ..src });
            match regions.iter_mut().find(|(d, _)| *d == dy) {
                Some((_, r)) => *r = r.union(&spans),
                None => regions.push((dy, spans)),
            }
        }
        let tw = self.tiles_w();
        let mut out = Vec::new();
        for (dy, r) in regions {
            let n = (dy.unsigned_abs() as u32).min(r.h);
            let band = if dy < 0 {
                r.y..r.y + n
            } else {
                r.y + r.h - n..r.y + r.h
            };
            let (tx0, tx1) = (r.x / TILE, (r.x + r.w - 1) / TILE);
            let exact = |y: u32| (tx0..=tx1).all(|tx| !self.lossy[((y / TILE) * tw + tx) as usize]);
            let mut y = band.start;
            while y < band.end {
                if !exact(y) {
                    y += 1;
                    continue;
                }
                let start = y;
                while y < band.end && exact(y) {
                    y += 1;
                }
                let rect = Rect {
                    y: start,
                    h: y - start,
                    ..r
                };
                let mirror = packed_frame(&self.prev, self.width, self.height);
                out.push(self.shelf.keep(&mirror, &rect));
            }
        }
        out
    }

    /// Finds rows of `frame` inside `within` that the attic holds (rows scrolled back into
    /// view), paints them into `prev` as the viewer will, and adds their recalls to the moves.
    fn recall(&mut self, frame: &FrameRef<'_>, within: &Rect) {
        if self
            .running_clip()
            .is_some_and(|c| c.intersect(within) == Some(*within))
        {
            return;
        }
        let mirror = packed_frame(&self.prev, self.width, self.height);
        let recalls = self.shelf.recall(&mirror, frame, within);
        let pitch = self.width as usize * 4;
        for op in &recalls {
            let GlyphOp::Recall { rect, .. } = op else {
                continue;
            };
            for y in rect.y..rect.y + rect.h {
                let o = y as usize * pitch + rect.x as usize * 4;
                self.prev[o..o + rect.w as usize * 4].copy_from_slice(frame.row(
                    y,
                    rect.x,
                    rect.x + rect.w,
                ));
            }
        }
        self.moves.extend(recalls);
    }

    /// What the viewer holds, as far as this encoder knows (exact but for lossy tiles).
    fn mirror(&self) -> FrameRef<'_> {
        packed_frame(&self.prev, self.width, self.height)
    }

    /// Takes `frame` as the first picture (or one of a new size): remembers it whole, resets
    /// the tiles' history and returns the whole screen in bands of a tile's height.
    fn start(&mut self, frame: &FrameRef<'_>, now_ms: u64) -> Vec<Rect> {
        let (w, h) = (frame.width, frame.height);
        self.width = w;
        self.height = h;
        self.prev.clear();
        self.prev.reserve(w as usize * h as usize * 4);
        for y in 0..h {
            self.prev.extend_from_slice(frame.row(y, 0, w));
        }
        self.has_prev = true;
        self.clip = None;
        self.shift = None;
        self.across = None;
        let tiles = (w.div_ceil(TILE) * h.div_ceil(TILE)) as usize;
        self.heat = vec![0; tiles];
        self.changed_at = vec![now_ms; tiles];
        self.painted_at = vec![now_ms; tiles];
        self.gap = vec![SETTLE_MS; tiles];
        self.lossy = vec![false; tiles];
        self.glyphs.clear();
        self.shelf.clear();
        self.beneath.clear();
        (0..h.div_ceil(TILE))
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
            .collect()
    }

    /// Compares tile (`tx`, `ty`) with the last frame and takes its new rows as sent; returns
    /// the whole tile if anything in it changed.
    fn diff_tile_whole(&mut self, frame: &FrameRef<'_>, tx: u32, ty: u32) -> Option<Rect> {
        let pitch = frame.width as usize * 4;
        let (x0, y0) = (tx * TILE, ty * TILE);
        let (x1, y1) = ((x0 + TILE).min(frame.width), (y0 + TILE).min(frame.height));
        let mut changed = false;
        for y in y0..y1 {
            let cur = frame.row(y, x0, x1);
            let off = y as usize * pitch + x0 as usize * 4;
            let prev = &mut self.prev[off..off + cur.len()];
            if cur != prev {
                prev.copy_from_slice(cur);
                changed = true;
            }
        }
        changed.then_some(Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        })
    }

    /// Compares tile (`tx`, `ty`) with the last frame and returns the bounding box of what
    /// changed in it (which [`Self::diff`] then takes into `prev`).
    fn diff_tile(&self, frame: &FrameRef<'_>, tx: u32, ty: u32) -> Option<Rect> {
        let (x, y) = (tx * TILE, ty * TILE);
        let tile = Rect {
            x,
            y,
            w: TILE.min(frame.width - x),
            h: TILE.min(frame.height - y),
        };
        self.changed_in(frame, &tile)
    }

    /// The bounding box of what differs between `frame` and the last frame inside `r`.
    fn changed_in(&self, frame: &FrameRef<'_>, r: &Rect) -> Option<Rect> {
        let pitch = frame.width as usize * 4;
        let (x0, y0) = (r.x, r.y);
        let (x1, y1) = (r.x + r.w, r.y + r.h);
        let mut bbox: Option<(u32, u32, u32, u32)> = None;
        for y in y0..y1 {
            let cur = frame.row(y, x0, x1);
            let off = y as usize * pitch + x0 as usize * 4;
            let prev = &self.prev[off..off + cur.len()];
            if cur == prev {
                continue;
            }
            let (fx, lx) = (x0 + first_diff(cur, prev), x0 + last_diff(cur, prev));
            bbox = Some(match bbox {
                None => (fx, y, lx, y),
                Some((a, b, c, _)) => (a.min(fx), b, c.max(lx), y),
            });
        }
        bbox.map(|(bx0, by0, bx1, by1)| Rect {
            x: bx0,
            y: by0,
            w: bx1 - bx0 + 1,
            h: by1 - by0 + 1,
        })
    }

    /// Encodes the given rectangles of `frame` as update parts with sequence number `seq`, each
    /// lossless or lossy as the quality mode and the motion of its tiles decide.
    pub fn encode(
        &mut self,
        frame: &FrameRef<'_>,
        rects: &[Rect],
        seq: u64,
        timing: Timing,
        exec: &dyn Executor,
    ) -> Result<Vec<FrameUpdate>, CodecError> {
        if !frame.is_valid() {
            return Err(CodecError::BadFrame);
        }
        let (mut sharp, mut soft) = self.classify(frame, rects);
        let video = self.video_pass(frame, &mut sharp, &mut soft)?;
        let screen = Rect {
            x: 0,
            y: 0,
            w: frame.width,
            h: frame.height,
        };
        let regions = match &video {
            // Text is looked for around the video, not across it.
            Some(v) => glyph_regions(&sharp, &[soft.as_slice(), &[v.rect]].concat(), &screen),
            None => glyph_regions(&sharp, &soft, &screen),
        };
        let (tw, lossy) = (self.tiles_w(), &self.lossy);
        // A blob may be stored only if the viewer holds it exactly once this frame is applied:
        // not if it touches a tile the viewer holds a lossy version of.
        let exact = |r: &Rect| {
            let (tx0, tx1) = (r.x / TILE, (r.x + r.w - 1) / TILE);
            let (ty0, ty1) = (r.y / TILE, (r.y + r.h - 1) / TILE);
            (ty0..=ty1).all(|ty| (tx0..=tx1).all(|tx| !lossy[(ty * tw + tx) as usize]))
        };
        let pass = self.glyphs.pass(frame, &regions, &sharp, exact);
        // What is left of a changed rectangle outside the regions painted whole.
        let uncovered = |r: Rect| {
            pass.covered.iter().fold(vec![r], |left, c| {
                left.iter().flat_map(|l| l.minus(c)).collect()
            })
        };
        let src = if pass.hits.is_empty() && pass.pixels.is_empty() {
            *frame
        } else {
            self.masked(
                frame,
                &[&sharp, &soft, &pass.pixels[..]].concat(),
                &pass.hits,
            )
        };
        // Rectangles of one colour (often all that is left around cached glyphs) are fills,
        // which the viewer paints before the pixels, as it does the fills of regions painted
        // whole; changed rectangles in such regions are not sent at all, but the glyphs there
        // the viewer does not hold are.
        let mut fills = pass.fills;
        let mut rest = pass.pixels;
        for r in sharp.into_iter().flat_map(uncovered) {
            match one_colour(&src, &r) {
                Some(colour) => fills.push(GlyphOp::Fill { rect: r, colour }),
                None => rest.push(r),
            }
        }
        let mut parts = encode_parts(&src, &rest, &soft, seq, timing, exec)?;
        if let Some(v) = video {
            add_lossy(&mut parts, v);
        }
        // Copies and fills go in the first part (the viewer applies them before its pixels),
        // the other operations in the last (after every part's pixels).
        let mut before = std::mem::take(&mut self.moves);
        before.extend(fills);
        match parts.as_mut_slice() {
            [] => {}
            [only] => {
                before.extend(pass.ops);
                only.glyphs = encode_ops(&before);
            }
            [first, .., last] => {
                first.glyphs = encode_ops(&before);
                last.glyphs = encode_ops(&pass.ops);
            }
        }
        Ok(parts)
    }

    /// Sends the region that keeps changing as video. A video starts (or grows, with a key
    /// picture) where this frame's lossy rectangles outside it cover at least
    /// [`VIDEO_MIN_AREA`]; while it runs, whatever changed under it is taken out of `sharp` and
    /// `soft` and goes as its next picture, which this returns. The video ends once its region
    /// settles (see [`Clip::settled`]), and its tiles are then refined exactly.
    fn video_pass(
        &mut self,
        frame: &FrameRef<'_>,
        sharp: &mut Vec<Rect>,
        soft: &mut Vec<Rect>,
    ) -> Result<Option<LossyRect>, CodecError> {
        let now = self.now_ms;
        // A region this frame changes has not settled, however late the frame comes (a host
        // slower than the motion).
        let settled = self.clip.is_some_and(|c| {
            c.settled(now)
                && !sharp
                    .iter()
                    .chain(soft.iter())
                    .any(|r| r.intersect(&c.rect).is_some())
        });
        if self.quality == Quality::Sharp || settled {
            self.clip = None;
        }
        if self.video.is_none()
            || self.quality == Quality::Sharp
            || (self.quality == Quality::Auto && now < self.video_after_ms)
        {
            return Ok(None);
        }
        let running = self.clip.map(|c| c.rect);
        let outside: Vec<Rect> = soft
            .iter()
            .filter(|r| running.is_none_or(|c| c.intersect(r) != Some(**r)))
            .copied()
            .collect();
        let mut key = false;
        if outside.iter().map(Rect::area).sum::<u64>() >= VIDEO_MIN_AREA {
            let want = outside
                .iter()
                .chain(&running)
                .copied()
                .reduce(|a, b| a.union(&b));
            if let Some(rect) = want.and_then(|r| video_rect(&r, self.width, self.height))
                && running != Some(rect)
            {
                // Until its pictures show a rhythm, the video changes at the rhythm its
                // region's tiles changed at.
                let gap_ms = self
                    .tiles_of(&rect)
                    .filter(|&t| self.heat[t] >= MOTION_CHANGES)
                    .map(|t| self.gap[t])
                    .max()
                    .unwrap_or(MOTION_GAP_MS);
                self.clip = Some(Clip {
                    rect,
                    last_ms: now,
                    gap_ms,
                    cuts: 0,
                    pictures: 0,
                });
                key = true;
            }
        }
        let Some(clip) = self.clip else {
            return Ok(None);
        };
        let touched = cut_out(sharp, &clip.rect) | cut_out(soft, &clip.rect);
        if !touched && !key {
            return Ok(None);
        }
        let Some(video) = self.video.as_mut() else {
            return Ok(None);
        };
        let data = video.encode(frame, &clip.rect, key)?;
        let cut = video.scene_cut();
        let tiles: Vec<usize> = self.tiles_of(&clip.rect).collect();
        for t in tiles {
            self.lossy[t] = true;
        }
        let next = if key {
            clip
        } else {
            Clip {
                last_ms: now,
                gap_ms: now - clip.last_ms,
                cuts: if cut { clip.cuts.saturating_add(1) } else { 0 },
                pictures: clip.pictures.saturating_add(1),
                ..clip
            }
        };
        self.clip = Some(next);
        if self.quality == Quality::Auto && next.cuts >= VIDEO_CUTS {
            // This picture is sent; the region's next changes go as JPEG, refined as usual.
            self.clip = None;
            self.video_after_ms = now + VIDEO_BACKOFF_MS;
        }
        Ok(Some(LossyRect {
            rect: clip.rect,
            codec: LossyCodec::H264,
            data,
        }))
    }

    /// A copy of `frame`'s rectangles `rects` in the scratch buffer, with the blobs `hits`
    /// painted in their background colour (the viewer draws them from its cache).
    fn masked(
        &mut self,
        frame: &FrameRef<'_>,
        rects: &[Rect],
        hits: &[(Rect, [u8; 3])],
    ) -> FrameRef<'_> {
        let pitch = frame.width as usize * 4;
        self.scratch.resize(pitch * frame.height as usize, 0);
        for r in rects {
            for y in r.y..r.y + r.h {
                let o = y as usize * pitch + r.x as usize * 4;
                self.scratch[o..o + r.w as usize * 4].copy_from_slice(frame.row(y, r.x, r.x + r.w));
            }
        }
        for (r, bg) in hits {
            let c = [bg[0], bg[1], bg[2], 0];
            for y in r.y..r.y + r.h {
                let o = y as usize * pitch + r.x as usize * 4;
                for p in self.scratch[o..o + r.w as usize * 4].chunks_exact_mut(4) {
                    p.copy_from_slice(&c);
                }
            }
        }
        FrameRef {
            width: frame.width,
            height: frame.height,
            stride: pitch,
            data: &self.scratch,
        }
    }
}

impl ScreenEncoder for TileEncoder {
    fn set_quality(&mut self, q: Quality) {
        TileEncoder::set_quality(self, q);
    }

    fn set_congested(&mut self, congested: bool) {
        TileEncoder::set_congested(self, congested);
    }

    fn reset(&mut self) {
        TileEncoder::reset(self);
    }

    fn wants_refinement(&self) -> bool {
        self.has_lossy()
    }

    fn update(
        &mut self,
        frame: &FrameRef<'_>,
        hints: Option<&[Rect]>,
        now_ms: u64,
        seq: u64,
        timing: Timing,
        exec: &dyn Executor,
    ) -> Result<Vec<ScreenMsg>, CodecError> {
        let rects = self.diff(frame, hints, now_ms)?;
        if rects.is_empty() && self.moves.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .encode(frame, &rects, seq, timing, exec)?
            .into_iter()
            .map(ScreenMsg::Update)
            .collect())
    }

    fn refine(
        &mut self,
        now_ms: u64,
        seq: u64,
        timing: Timing,
        exec: &dyn Executor,
    ) -> Result<Vec<ScreenMsg>, CodecError> {
        Ok(TileEncoder::refine(self, now_ms, seq, timing, exec)?
            .unwrap_or_default()
            .into_iter()
            .map(ScreenMsg::Update)
            .collect())
    }
}

/// Adds a lossy rectangle to the last of `parts`, or to a new last part if that one is full.
fn add_lossy(parts: &mut Vec<FrameUpdate>, v: LossyRect) {
    let Some(last) = parts.last_mut() else {
        return;
    };
    if last.rects.len() + last.lossy.len() < MAX_PART_RECTS {
        last.lossy.push(v);
        return;
    }
    last.last = false;
    let mut next = FrameUpdate {
        last: true,
        rects: Vec::new(),
        palettes: Vec::new(),
        predicted: Vec::new(),
        data: Vec::new(),
        lossy: vec![v],
        glyphs: Vec::new(),
        ..last.clone()
    };
    next.encoding = Encoding::Bgr24;
    parts.push(next);
}

/// Replaces the rectangles of `list` that overlap `hole` by their parts outside it (up to four
/// bands each). Returns whether any overlapped.
fn cut_out(list: &mut Vec<Rect>, hole: &Rect) -> bool {
    let mut touched = false;
    let mut out = Vec::with_capacity(list.len());
    for r in list.drain(..) {
        let Some(i) = r.intersect(hole) else {
            out.push(r);
            continue;
        };
        touched = true;
        let (rx1, ry1, ix1, iy1) = (r.x + r.w, r.y + r.h, i.x + i.w, i.y + i.h);
        let bands = [
            (r.x, r.y, r.w, i.y - r.y),
            (r.x, iy1, r.w, ry1 - iy1),
            (r.x, i.y, i.x - r.x, i.h),
            (ix1, i.y, rx1 - ix1, i.h),
        ];
        out.extend(
            bands
                .into_iter()
                .filter(|b| b.2 > 0 && b.3 > 0)
                .map(|(x, y, w, h)| Rect { x, y, w, h }),
        );
    }
    *list = out;
    touched
}

/// The colour of `r` in `frame` if it has only one.
fn one_colour(frame: &FrameRef<'_>, r: &Rect) -> Option<[u8; 3]> {
    let first = frame.row(r.y, r.x, r.x + 1);
    let c = [first[0], first[1], first[2]];
    (r.y..r.y + r.h)
        .all(|y| {
            frame
                .row(y, r.x, r.x + r.w)
                .chunks_exact(4)
                .all(|p| p[..3] == c)
        })
        .then_some(c)
}

pub(super) fn first_diff(a: &[u8], b: &[u8]) -> u32 {
    let i = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .position(|(p, q)| p != q)
        .unwrap_or(0);
    i as u32
}

pub(super) fn last_diff(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len() / 4;
    let i = a
        .chunks_exact(4)
        .rev()
        .zip(b.chunks_exact(4).rev())
        .position(|(p, q)| p != q);
    (n - 1 - i.unwrap_or(0)) as u32
}

/// Merges horizontally adjacent rectangles of equal rows in `out[start..]`.
pub(super) fn merge_row(out: &mut Vec<Rect>, start: usize) {
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
pub(super) fn merge_down(out: &mut Vec<Rect>, cur: usize) {
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

/// Columns and rows around a cluster of changes that the glyph pass looks at too.
const GLYPH_MARGIN: (u32, u32) = (16, 4);

/// Where to look for glyphs: the lossless rectangles gathered into clusters (rectangles at most
/// a tile apart), each looked at as its bounding box, in that box and a margin, so that text
/// cut by the tile grid or by the edge of what changed is found whole and a page's character
/// grid is seen at once; a cluster that a lossy rectangle crosses is looked at rectangle by
/// rectangle. Pairs of the region and where it is looked at.
fn glyph_regions(sharp: &[Rect], soft: &[Rect], screen: &Rect) -> Vec<(Rect, Rect)> {
    let near = |a: &Rect, b: &Rect| {
        let grown = Rect {
            x: a.x.saturating_sub(TILE),
            y: a.y.saturating_sub(TILE),
            w: a.w + 2 * TILE,
            h: a.h + 2 * TILE,
        };
        grown.intersect(b).is_some()
    };
    // Each cluster: its bounding box and its rectangles.
    let mut clusters: Vec<(Rect, Vec<Rect>)> = sharp.iter().map(|r| (*r, vec![*r])).collect();
    loop {
        let mut merged = false;
        let mut i = 0;
        while i < clusters.len() {
            let mut j = i + 1;
            while j < clusters.len() {
                if near(&clusters[i].0, &clusters[j].0) {
                    let (b, rs) = clusters.swap_remove(j);
                    clusters[i].0 = clusters[i].0.union(&b);
                    clusters[i].1.extend(rs);
                    merged = true;
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
        if !merged {
            break;
        }
    }
    let mut out = Vec::new();
    for (bbox, rects) in clusters {
        let apart = |r: &Rect| soft.iter().all(|s| s.intersect(r).is_none());
        // A glyph whose edge did not change reaches out of the changed pixels: the margin
        // keeps it whole (its pixels are the viewer's already).
        let grown = Rect::clipped(
            i64::from(bbox.x) - i64::from(GLYPH_MARGIN.0),
            i64::from(bbox.y) - i64::from(GLYPH_MARGIN.1),
            u64::from(bbox.w + 2 * GLYPH_MARGIN.0),
            u64::from(bbox.h + 2 * GLYPH_MARGIN.1),
            screen,
        );
        match grown {
            Some(g) if apart(&g) => out.push((bbox, g)),
            _ if apart(&bbox) => out.push((bbox, bbox)),
            _ => out.extend(rects.into_iter().map(|r| (r, r))),
        }
    }
    out
}

/// `data` as a frame of `w` x `h` pixels with no padding between rows (the mirror of what a
/// viewer holds). A free function, so that the mirror can be read while another field of the
/// encoder changes.
pub(super) fn packed_frame(data: &[u8], w: u32, h: u32) -> FrameRef<'_> {
    FrameRef {
        width: w,
        height: h,
        stride: w as usize * 4,
        data,
    }
}

/// The bounding box of `hints` on a `w` x `h` screen (the whole screen without hints); `None`
/// if they hold nothing.
fn changed_within(hints: Option<&[Rect]>, w: u32, h: u32) -> Option<Rect> {
    let screen = Rect { x: 0, y: 0, w, h };
    match hints {
        Some(hints) => hints
            .iter()
            .filter_map(|r| r.intersect(&screen))
            .reduce(|a, b| a.union(&b)),
        None => Some(screen),
    }
}

/// Which tiles of a `w` x `h` screen the `hints` touch.
fn hint_mask(hints: &[Rect], w: u32, h: u32) -> Vec<bool> {
    let tw = w.div_ceil(TILE);
    let mut m = vec![false; (tw * h.div_ceil(TILE)) as usize];
    let screen = Rect { x: 0, y: 0, w, h };
    for r in hints.iter().filter_map(|r| r.intersect(&screen)) {
        for ty in r.y / TILE..=(r.y + r.h - 1) / TILE {
            for tx in r.x / TILE..=(r.x + r.w - 1) / TILE {
                m[(ty * tw + tx) as usize] = true;
            }
        }
    }
    m
}
