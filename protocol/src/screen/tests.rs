//! The screen codec's tests: exactness, bounds, hostile updates.

// Frames of `w` x `h` pixels with no padding between rows, under the names the tests use.
use super::encoder::{packed_frame as packed, packed_frame as whole};
use super::pack::encode_parts;
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

fn roundtrip(enc: &mut TileEncoder, fb: &mut Framebuffer, f: &FrameRef<'_>, seq: u64) -> Vec<Rect> {
    // Even with no changed rectangle, the frame may hold copies (as the screen loop knows).
    let rects = enc.diff(f, None, seq * 1000).expect("diff");
    for part in enc
        .encode(f, &rects, seq, Timing::default(), &InOrder)
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
    let f = whole(&a, w, h);
    roundtrip(&mut enc, &mut fb, &f, 1);
    assert_eq!(fb.pixels(), &a[..]);
    // Change a 3x2 block at (40, 50).
    for y in 50..52 {
        for x in 40..43 {
            a[(y * w + x) as usize * 4] ^= 0xff;
        }
    }
    let f = whole(&a, w, h);
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
    let f = whole(&a, w, h);
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
        last: true,
        ack: false,
        size: Some(ScreenSize {
            width: 10,
            height: 10,
        }),
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
        predicted: Vec::new(),
        glyphs: Vec::new(),
        timing: Timing::default(),
    };
    assert!(matches!(fb.apply(&base), Err(CodecError::OutOfBounds(_))));
    let big = FrameUpdate {
        size: Some(ScreenSize {
            width: 100_000,
            height: 100_000,
        }),
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

#[test]
fn rectangles_clip_to_their_bounds() {
    let b = Rect {
        x: 10,
        y: 10,
        w: 100,
        h: 50,
    };
    let r = |x, y, w, h| Rect { x, y, w, h };
    assert_eq!(r(0, 0, 20, 20).intersect(&b), Some(r(10, 10, 10, 10)));
    assert_eq!(r(200, 0, 20, 20).intersect(&b), None);
    assert_eq!(r(10, 10, 0, 5).intersect(&b), None);
    assert_eq!(Rect::clipped(-50, -50, 80, 70, &b), Some(r(10, 10, 20, 10)));
    assert_eq!(
        Rect::clipped(100, 50, u64::MAX, u64::MAX, &b),
        Some(r(100, 50, 10, 10))
    );
}

fn empty_update(width: u32, height: u32) -> FrameUpdate {
    FrameUpdate {
        seq: 1,
        last: true,
        ack: false,
        size: Some(ScreenSize { width, height }),
        encoding: Encoding::Bgr24Zstd,
        rects: Vec::new(),
        palettes: Vec::new(),
        data: Vec::new(),
        lossy: Vec::new(),
        predicted: Vec::new(),
        glyphs: Vec::new(),
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
    upd.palettes = vec![Colours::full(vec![[1, 2, 3]])];
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
    upd.palettes = vec![Colours::full(vec![[9, 9, 9]]); MAX_PART_RECTS + 1];
    assert!(matches!(fb.apply(&upd), Err(CodecError::Corrupt(_))));
    // Three times the screen in one part is refused too.
    upd.rects = vec![full; 3];
    upd.palettes = vec![Colours::full(vec![[9, 9, 9]]); 3];
    assert!(matches!(fb.apply(&upd), Err(CodecError::Corrupt(m)) if m.contains("cover")));
    upd.rects = vec![full; 1];
    upd.palettes = vec![Colours::full(vec![[9, 9, 9]]); 1];
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
    let f = whole(&px, w, h);
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
    let parts = encode_parts(&f, &tiles, &[], 1, Timing::default(), &InOrder).expect("encode");
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
    for colours in [1u32, 2, 3, 4, 5, 16, 17, 200, 256, 257] {
        let mut a = vec![0u8; (w * h * 4) as usize];
        for (i, px) in a.chunks_exact_mut(4).enumerate() {
            let c = (i as u32 * 7 + i as u32 / 13) % colours;
            px.copy_from_slice(&[c as u8, 255 - (c * 9) as u8, (c >> 8) as u8 * 40, 0]);
        }
        let mut enc = TileEncoder::new();
        enc.set_quality(Quality::Sharp);
        let f = whole(&a, w, h);
        let rects = enc.diff(&f, None, 0).expect("diff");
        let parts = enc
            .encode(&f, &rects, 1, Timing::default(), &InOrder)
            .expect("encode");
        let used_palette = parts
            .iter()
            .any(|p| p.palettes.iter().any(|q| !q.is_empty()));
        // One colour is a fill, without pixel data.
        assert_eq!(
            used_palette,
            (2..=256).contains(&colours),
            "{colours} colours"
        );
        let filled = parts.iter().any(|p| {
            decode_ops(&p.glyphs)
                .expect("ops")
                .iter()
                .any(|op| matches!(op, GlyphOp::Fill { .. }))
        });
        assert_eq!(filled, colours == 1, "{colours} colours");
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
    let f = whole(&a, w, h);
    roundtrip(&mut enc, &mut fb, &f, 1);
    let b = frame(w, h, 2);
    let f = whole(&b, w, h);
    let rects = enc.diff(&f, None, 5).expect("diff");
    let parts = enc
        .encode(&f, &rects, 2, Timing::default(), &InOrder)
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
        let f = whole(&cur, w, h);
        let rects = enc.diff(&f, None, t).expect("diff");
        for part in enc
            .encode(&f, &rects, u64::from(i), Timing::default(), &InOrder)
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
    // The tiles changed every 33 ms: one more such gap is not a stop yet; half a gap more is.
    let stopped = t - 33;
    assert!(
        enc.refine(stopped + 33, 99, Timing::default(), &InOrder)
            .expect("refine")
            .is_none(),
        "not settled yet"
    );
    let parts = enc
        .refine(stopped + 50, 100, Timing::default(), &InOrder)
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
    let f = whole(&a, w, h);
    roundtrip(&mut enc, &mut fb, &f, 1);
    enc.set_congested(true);
    let b = frame(w, h, 2);
    let f = whole(&b, w, h);
    let rects = enc.diff(&f, None, 5000).expect("diff");
    let parts = enc
        .encode(&f, &rects, 2, Timing::default(), &InOrder)
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
            let f = whole(&cur, w, h);
            let rects = enc.diff(&f, None, u64::from(i) * 20).expect("diff");
            for part in enc
                .encode(&f, &rects, u64::from(i), Timing::default(), &InOrder)
                .expect("encode")
            {
                any |= !part.lossy.is_empty();
            }
        }
        assert_eq!(any, want_lossy, "{q:?}");
    }
}

/// A photo-like picture: smooth gradients in every channel with fine grain.
fn photo(w: u32, h: u32) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut v = vec![0u8; (w * h * 4) as usize];
    for (i, px) in v.chunks_exact_mut(4).enumerate() {
        let (px_x, px_y) = (i as u32 % w, i as u32 / w);
        for (c, p) in px[..3].iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = (px_x * (c as u32 + 1) + px_y * (3 - c as u32)) / 3;
            *p = (base % 200) as u8 + (x % 6) as u8;
        }
    }
    v
}

#[test]
fn photos_travel_predicted_exactly_and_smaller_than_unpredicted() {
    let (w, h) = (256, 200);
    let pixels = photo(w, h);
    let f = packed(&pixels, w, h);
    let all = Rect { x: 0, y: 0, w, h };
    let parts = encode_parts(&f, &[all], &[], 1, Timing::default(), &InOrder).expect("encode");
    assert!(parts.iter().all(|p| p.predicted.iter().all(|x| *x)));
    assert!(parts.iter().any(|p| !p.predicted.is_empty()));
    // As on a stream: a picture this small is compressed by the stream's context.
    let (mut tx, mut rx) = (StreamWriter::new(), StreamReader::new());
    let mut fb = Framebuffer::new();
    let mut sent = 0;
    for mut p in parts {
        tx.compact(&mut p).expect("compact");
        sent += p.data.len();
        rx.expand(&mut p).expect("expand");
        fb.apply(&p).expect("apply");
    }
    assert_eq!(fb.pixels(), &pixels[..]);
    let mut raw = Vec::new();
    pack::pack_bgr(&f, &all, &mut raw);
    let unpredicted = zstd::bulk::compress(&raw, 3).expect("zstd").len();
    assert!(
        sent * 10 < unpredicted * 7,
        "predicted {sent} B, unpredicted {unpredicted} B"
    );
}

#[test]
fn predictions_that_do_not_match_the_rectangles_are_refused() {
    let (w, h) = (64, 32);
    let pixels = photo(w, h);
    let f = packed(&pixels, w, h);
    let all = Rect { x: 0, y: 0, w, h };
    let good = encode_parts(&f, &[all], &[], 1, Timing::default(), &InOrder).expect("encode");
    assert_eq!(good[0].predicted, vec![true]);
    let mut fb = Framebuffer::new();
    let mut short = good[0].clone();
    short.predicted = vec![true, false];
    assert!(matches!(fb.apply(&short), Err(CodecError::Corrupt(_))));
    let mut both = good[0].clone();
    both.palettes = vec![Colours::full(vec![[0, 0, 0], [1, 1, 1]])];
    assert!(matches!(fb.apply(&both), Err(CodecError::Corrupt(_))));
    assert_eq!(fb.width(), 0, "nothing was applied");
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Regions shifted up or down by random amounts, with random edits, in every quality mode:
    /// the copies and what they leave over always rebuild the frame exactly (once lossy tiles
    /// are refined).
    #[test]
    fn random_scrolls_converge(
        w in 40u32..200,
        h in 40u32..200,
        quality in 0u8..3,
        steps in prop::collection::vec((0u32..200, 0u32..200, -60i32..60, any::<u8>()), 1..8),
    ) {
        let (got, want) = scrolls(w, h, quality, &steps);
        prop_assert_eq!(got, want);
    }
}

/// Runs `steps` (rows `top..top+len` show what was `dy` rows further down, or a new line of
/// value `v`) through an encoder in quality mode `quality` and refines: what the viewer holds at
/// the end and what the screen shows.
fn scrolls(w: u32, h: u32, quality: u8, steps: &[(u32, u32, i32, u8)]) -> (Vec<u8>, Vec<u8>) {
    let mut cur = frame(w, h, 3);
    let mut enc = TileEncoder::new();
    enc.set_quality([Quality::Sharp, Quality::Auto, Quality::Smooth][usize::from(quality)]);
    let mut fb = Framebuffer::new();
    roundtrip(&mut enc, &mut fb, &whole(&cur, w, h), 0);
    let pitch = (w * 4) as usize;
    for (i, &(top, len, dy, v)) in steps.iter().enumerate() {
        let (top, len) = (top % h, len.max(1));
        let bottom = (top + len).min(h);
        let old = cur.clone();
        for y in top..bottom {
            let from = i64::from(y) + i64::from(dy);
            let row = &mut cur[y as usize * pitch..(y as usize + 1) * pitch];
            if (i64::from(top)..i64::from(bottom)).contains(&from) {
                let f = from as usize;
                row.copy_from_slice(&old[f * pitch..(f + 1) * pitch]);
            } else {
                row.iter_mut().step_by(4).for_each(|b| *b = v);
            }
        }
        roundtrip(&mut enc, &mut fb, &whole(&cur, w, h), i as u64 + 1);
    }
    let end = 1000 * 100;
    for p in enc
        .refine(end, 100, Timing::default(), &InOrder)
        .expect("refine")
        .unwrap_or_default()
    {
        fb.apply(&p).expect("apply");
    }
    (fb.pixels().to_vec(), cur)
}

/// Found by `random_scrolls_converge` in CI: a Sharp frame whose bottom rows scroll by 45 and
/// then partly again, then a one-row change.
#[test]
fn a_scroll_then_a_partial_scroll_then_a_line_converge() {
    let (got, want) = scrolls(
        40,
        102,
        0,
        &[(0, 102, 13, 45), (73, 16, 13, 45), (74, 0, 0, 0)],
    );
    assert!(got == want, "the viewer differs from the screen");
}

/// A terminal page of `rows` lines of text (9x16 cells) starting at line `first` of an endless
/// document.
fn text_page(w: u32, rows: u32, first: u32) -> Vec<u8> {
    let bg = [30, 30, 30];
    let mut buf = solid(w, rows * 16, bg);
    for row in 0..rows {
        let line = first + row;
        for col in 0..(line * 7 % 31 + 20).min(w / 9) {
            let g = ((line * 13 + col * 7) % 61) as u8;
            let fg = [[200, 200, 200], [90, 200, 120], [220, 120, 200]][(col / 5 % 3) as usize];
            paint_glyph(&mut buf, w, col, row, g, fg, bg);
        }
    }
    buf
}

#[test]
fn a_scrolled_page_goes_as_a_copy_and_its_new_lines() {
    let (w, rows) = (9 * 100, 40);
    let h = rows * 16;
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    let first = text_page(w, rows, 0);
    encoded_bytes(&mut enc, &mut fb, &whole(&first, w, h), 0);
    // Three lines scrolled in: the rest of the page moves up as one copy, and only the new
    // lines are compared and sent.
    let next = text_page(w, rows, 3);
    let f = whole(&next, w, h);
    let rects = enc.diff(&f, None, 1000).expect("diff");
    assert!(!rects.is_empty());
    for r in &rects {
        assert!(r.y >= h - 3 * 16, "{r:?} is above the new lines");
    }
    let mut copied = 0;
    for part in enc
        .encode(&f, &rects, 1, Timing::default(), &InOrder)
        .expect("encode")
    {
        for op in decode_ops(&part.glyphs).expect("ops") {
            if let GlyphOp::Copy { src, x, y } = op {
                assert_eq!((src.x, src.y - y), (x, 3 * 16), "moved up by three lines");
                copied += src.area();
            }
        }
        fb.apply(&part).expect("apply");
    }
    assert!(
        copied >= u64::from(w / 3 * (h - 3 * 16)),
        "{copied} pixels copied"
    );
    assert_eq!(fb.pixels(), &next[..]);
    assert!(
        fb.painted().iter().any(|r| r.h >= 16 * 30),
        "the viewer was told the moved region changed: {:?}",
        fb.painted()
    );
}

#[test]
fn a_scroll_under_a_lossy_picture_is_refined_to_exact() {
    // A photo-like band above text; both scroll up together while Auto sends the photo lossy.
    let (w, h) = (256u32, 256u32);
    let pic = photo(w, 512);
    let view = |top: u32| -> Vec<u8> {
        let mut v = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h {
            let src = (top + y) as usize % 512 * w as usize * 4;
            v.extend_from_slice(&pic[src..src + w as usize * 4]);
        }
        v
    };
    let mut enc = TileEncoder::new();
    enc.set_quality(Quality::Smooth);
    let mut fb = Framebuffer::new();
    let (mut t, mut last, mut copies) = (0, Vec::new(), 0);
    for step in 0..6 {
        last = view(step * 24);
        let f = whole(&last, w, h);
        let rects = enc.diff(&f, None, t).expect("diff");
        for part in enc
            .encode(&f, &rects, u64::from(step), Timing::default(), &InOrder)
            .expect("encode")
        {
            copies += decode_ops(&part.glyphs)
                .expect("ops")
                .iter()
                .filter(|op| matches!(op, GlyphOp::Copy { .. }))
                .count();
            fb.apply(&part).expect("apply");
        }
        t += 33;
    }
    assert!(copies > 0, "the scroll was found");
    assert!(enc.has_lossy());
    assert_ne!(fb.pixels(), &last[..], "the moved picture is still lossy");
    for p in enc
        .refine(t + SETTLE_MS, 99, Timing::default(), &InOrder)
        .expect("refine")
        .unwrap_or_default()
    {
        fb.apply(&p).expect("apply");
    }
    assert_eq!(fb.pixels(), &last[..], "refined back to exact");
}

/// Paints glyph `g` (a pseudo-random anti-aliased-looking 7x12 shape in colour `fg`) at cell
/// (`col`, `row`) of a terminal grid with 9x16 cells, on background `bg`.
fn paint_glyph(buf: &mut [u8], w: u32, col: u32, row: u32, g: u8, fg: [u8; 3], bg: [u8; 3]) {
    for dy in 0..16u32 {
        for dx in 0..9u32 {
            let (x, y) = (col * 9 + dx, row * 16 + dy);
            let o = ((y * w + x) * 4) as usize;
            let inside = (1..8).contains(&dx) && (2..14).contains(&dy);
            let v = (u32::from(g) * 7 + dx * 13 + dy * 29) % 11;
            let c = if inside && v < 5 {
                let k = (v + 1) as u16;
                [0, 1, 2].map(|i| ((u16::from(fg[i]) * k + u16::from(bg[i]) * (6 - k)) / 6) as u8)
            } else {
                bg
            };
            buf[o..o + 3].copy_from_slice(&c);
            buf[o + 3] = 0;
        }
    }
}

fn encoded_bytes(enc: &mut TileEncoder, fb: &mut Framebuffer, f: &FrameRef<'_>, seq: u64) -> usize {
    let rects = enc.diff(f, None, seq * 1000).expect("diff");
    let mut total = 0;
    for part in enc
        .encode(f, &rects, seq, Timing::default(), &InOrder)
        .expect("encode")
    {
        let bytes = postcard::to_stdvec(&part).expect("ser");
        total += bytes.len();
        let part: FrameUpdate = postcard::from_bytes(&bytes).expect("de");
        fb.apply(&part).expect("apply");
    }
    total
}

/// Diffs and encodes `f` at `now_ms` as frame `seq`, applies every part to `fb`, and returns the
/// parts.
fn sent(
    enc: &mut TileEncoder,
    fb: &mut Framebuffer,
    f: &FrameRef<'_>,
    now_ms: u64,
    seq: u64,
) -> Vec<FrameUpdate> {
    let rects = enc.diff(f, None, now_ms).expect("diff");
    let parts = enc
        .encode(f, &rects, seq, Timing::default(), &InOrder)
        .expect("encode");
    for part in &parts {
        fb.apply(part).expect("apply");
    }
    parts
}

/// The glyph operations of `parts`, in order.
fn ops_of(parts: &[FrameUpdate]) -> Vec<GlyphOp> {
    parts
        .iter()
        .flat_map(|p| decode_ops(&p.glyphs).expect("ops"))
        .collect()
}

/// A `w` x `h` BGRX frame of one colour.
fn solid(w: u32, h: u32, bg: [u8; 3]) -> Vec<u8> {
    let mut buf = vec![0u8; (w * h * 4) as usize];
    for px in buf.chunks_exact_mut(4) {
        px[..3].copy_from_slice(&bg);
    }
    buf
}

#[test]
fn a_rule_down_the_whole_region_does_not_hide_the_text_beside_it() {
    let (w, h) = (9 * 40, 16 * 10);
    let bg = [250, 250, 250];
    let fg = [[20, 20, 20], [40, 160, 60], [170, 40, 180]];
    let mut buf = solid(w, h, bg);
    let fr = |d: &[u8]| -> Vec<u8> { d.to_vec() };
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    let f0 = fr(&buf);
    encoded_bytes(&mut enc, &mut fb, &packed(&f0, w, h), 1);
    for col in 0..36 {
        let g = (col % 12) as u8;
        paint_glyph(&mut buf, w, col, 0, g, fg[(g % 3) as usize], bg);
    }
    let f1 = fr(&buf);
    let first = encoded_bytes(&mut enc, &mut fb, &packed(&f1, w, h), 2);
    // A page of the same glyphs, and a scroll bar drawn down the whole height beside it: every
    // row has ink, but the text is still found line by line.
    for row in 1..10 {
        for col in 0..36 {
            let g = ((col + row) % 12) as u8;
            paint_glyph(&mut buf, w, col, row, g, fg[(g % 3) as usize], bg);
        }
    }
    for y in 0..h {
        for x in w - 4..w {
            let o = ((y * w + x) * 4) as usize;
            buf[o..o + 3].copy_from_slice(&[120, 120, 120]);
        }
    }
    let f2 = fr(&buf);
    let page = encoded_bytes(&mut enc, &mut fb, &packed(&f2, w, h), 3);
    assert_eq!(fb.pixels(), &buf[..], "the page is exact");
    assert!(
        page < first * 3,
        "nine lines of known glyphs cost {page} B, the first line {first} B"
    );
}

#[test]
fn glyphs_seen_before_are_drawn_from_the_cache_exactly() {
    let (w, h) = (9 * 40, 16 * 10);
    let bg = [30, 30, 30];
    let fg = [[220, 220, 220], [80, 200, 120], [200, 90, 210]];
    let mut buf = solid(w, h, bg);
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    let f0 = buf.clone();
    fn fr(d: &[u8], w: u32, h: u32) -> FrameRef<'_> {
        FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: d,
        }
    }
    encoded_bytes(&mut enc, &mut fb, &fr(&f0, w, h), 1);
    // A first line of text: every glyph is new.
    for col in 0..36 {
        paint_glyph(
            &mut buf,
            w,
            col,
            0,
            (col % 12) as u8,
            fg[(col % 3) as usize],
            bg,
        );
    }
    let first = encoded_bytes(&mut enc, &mut fb, &fr(&buf, w, h), 2);
    assert_eq!(fb.pixels(), &buf[..]);
    // A page of the same glyphs: drawn from the cache.
    for row in 1..10 {
        for col in 0..36 {
            let g = ((col + row) % 12) as u8;
            paint_glyph(&mut buf, w, col, row, g, fg[(g % 3) as usize], bg);
        }
    }
    let page = encoded_bytes(&mut enc, &mut fb, &fr(&buf, w, h), 3);
    assert_eq!(fb.pixels(), &buf[..], "the page is exact");
    assert!(
        page < first * 3,
        "nine lines of known glyphs ({page} B) cost less than three new ones ({first} B)"
    );
    // One keystroke of a known glyph: a few dozen bytes.
    paint_glyph(&mut buf, w, 38, 9, 4, fg[1], bg);
    let key = encoded_bytes(&mut enc, &mut fb, &fr(&buf, w, h), 4);
    assert_eq!(fb.pixels(), &buf[..]);
    assert!(key < 80, "a known glyph costs {key} B");
    // After a reset the viewer's cache is not relied upon: a fresh viewer gets it all exactly.
    enc.reset();
    let mut fresh = Framebuffer::new();
    encoded_bytes(&mut enc, &mut fresh, &fr(&buf, w, h), 5);
    paint_glyph(&mut buf, w, 39, 9, 4, fg[1], bg);
    encoded_bytes(&mut enc, &mut fresh, &fr(&buf, w, h), 6);
    assert_eq!(fresh.pixels(), &buf[..]);
}

#[test]
fn hostile_glyph_operations_are_refused_before_anything_is_painted() {
    let mut fb = Framebuffer::new();
    fb.apply(&empty_update(100, 50)).expect("empty frame");
    let with = |ops: &[GlyphOp]| FrameUpdate {
        glyphs: encode_ops(ops),
        ..empty_update(100, 50)
    };
    let draw = GlyphOp::Draw {
        slot: 3,
        x: 0,
        y: 0,
    };
    assert!(
        matches!(fb.apply(&with(&[draw])), Err(CodecError::Corrupt(_))),
        "empty slot"
    );
    let big = Rect {
        x: 0,
        y: 0,
        w: MAX_GLYPH_W + 1,
        h: 4,
    };
    assert!(matches!(
        fb.apply(&with(&[GlyphOp::Store { slot: 0, rect: big }])),
        Err(CodecError::OutOfBounds(_))
    ));
    let store = GlyphOp::Store {
        slot: 3,
        rect: Rect {
            x: 0,
            y: 0,
            w: 10,
            h: 10,
        },
    };
    let outside = GlyphOp::Draw {
        slot: 3,
        x: 95,
        y: 0,
    };
    assert!(matches!(
        fb.apply(&with(&[store, outside])),
        Err(CodecError::OutOfBounds(_))
    ));
    assert!(fb.apply(&with(&[store, draw])).is_ok());
    // Fills stay inside the screen and paint at most eight times its area.
    let fill = |x, w| GlyphOp::Fill {
        rect: Rect { x, y: 0, w, h: 50 },
        colour: [1, 2, 3],
    };
    assert!(matches!(
        fb.apply(&with(&[fill(1, 100)])),
        Err(CodecError::OutOfBounds(_))
    ));
    let mut screens = vec![fill(0, 100); 8];
    assert!(fb.apply(&with(&screens)).is_ok());
    screens.push(fill(0, 1));
    assert!(fb.apply(&with(&screens)).is_err());
    fb.apply(&with(&[fill(10, 5)])).expect("fill");
    assert_eq!(
        fb.painted(),
        &[Rect {
            x: 10,
            y: 0,
            w: 5,
            h: 50
        }]
    );
    assert_eq!(&fb.pixels()[(10 * 4)..(10 * 4 + 4)], &[1, 2, 3, 0]);
    let mut bad = vec![0];
    bad.extend_from_slice(&[0xff; 12]);
    assert!(
        fb.apply(&FrameUpdate {
            glyphs: bad,
            ..empty_update(100, 50)
        })
        .is_err()
    );
    let bomb = {
        let mut v = vec![1];
        v.extend(zstd::bulk::compress(&vec![0u8; MAX_GLYPH_OPS_BYTES + 1], 3).expect("zstd"));
        v
    };
    assert!(
        fb.apply(&FrameUpdate {
            glyphs: bomb,
            ..empty_update(100, 50)
        })
        .is_err()
    );
    // Copies read and write inside the screen, and count towards the same area.
    let copy = |sy, y, h| GlyphOp::Copy {
        src: Rect {
            x: 0,
            y: sy,
            w: 100,
            h,
        },
        x: 0,
        y,
    };
    for bad in [copy(10, 0, 41), copy(0, 10, 41), copy(0, 0, 51)] {
        assert!(matches!(
            fb.apply(&with(&[bad])),
            Err(CodecError::OutOfBounds(_))
        ));
    }
    let mut screens = vec![copy(0, 0, 50); 8];
    screens.push(copy(0, 0, 1));
    assert!(fb.apply(&with(&screens)).is_err());
    let mut far_copy = vec![0];
    far_copy.extend_from_slice(&[3, 0, 0, 1, 1, 1, 0]);
    assert!(
        decode_ops(&far_copy).is_err(),
        "a source left of the screen"
    );
    // Slot numbers past the cache are refused by the decoder of the operations itself.
    let mut far = vec![0];
    far.extend_from_slice(&[0x80, 0x80, 0x01, 0, 0]);
    assert!(decode_ops(&far).is_err());
}

proptest! {
    #[test]
    fn glyph_operations_roundtrip(ops in prop::collection::vec((0u8..8, 0u16..4096, 0u32..20_000, 0u32..20_000, 1u32..64, 1u32..40, any::<[u8; 3]>()), 0..300)) {
        let ops: Vec<GlyphOp> = ops
            .into_iter()
            .map(|(kind, slot, x, y, w, h, colour)| match kind {
                0 => GlyphOp::Store { slot, rect: Rect { x, y, w, h } },
                1 => GlyphOp::Draw { slot, x, y },
                2 => GlyphOp::Fill { rect: Rect { x, y, w: w * 50, h: h * 30 }, colour },
                3 => GlyphOp::Keep { rect: Rect { x, y, w: w * 30, h: h * 20 } },
                4 => GlyphOp::Recall { back: u32::from(slot) * 7, rect: Rect { x, y, w: w * 30, h } },
                5 => GlyphOp::Save { rect: Rect { x, y, w: w * 30, h: h * 20 } },
                6 => GlyphOp::Restore { rect: Rect { x, y, w: w * 7, h } },
                _ => GlyphOp::Copy { src: Rect { x: y, y: x, w: w * 30, h: h * 50 }, x, y },
            })
            .collect();
        prop_assert_eq!(decode_ops(&encode_ops(&ops)).expect("decode"), ops);
    }

    #[test]
    fn glyph_operation_decoding_never_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_ops(&data);
    }
}

fn any_update() -> impl Strategy<Value = FrameUpdate> {
    let rect =
        (0u32..3000, 0u32..3000, 0u32..300, 0u32..300).prop_map(|(x, y, w, h)| Rect { x, y, w, h });
    let colours = (
        prop::collection::vec(any::<[u8; 3]>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(full, blends)| Colours { full, blends });
    (
        (
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            0u8..3,
            any::<u64>(),
        ),
        prop::option::of((0u32..9000, 0u32..9000)),
        prop::collection::vec(rect.clone(), 0..3),
        prop::collection::vec(colours, 0..3),
        prop::collection::vec(any::<bool>(), 0..3),
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec(
            (
                rect,
                any::<bool>(),
                prop::collection::vec(any::<u8>(), 0..9),
            ),
            0..2,
        ),
        prop::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(
            |(
                (seq, last, ack, zstd, at),
                size,
                rects,
                palettes,
                predicted,
                data,
                lossy,
                glyphs,
            )| {
                // A packed part's rectangles and palettes travel inside its data; the zstd flag
                // means something only for a part with pixels.
                let pixels = !(rects.is_empty() && palettes.is_empty() && data.is_empty());
                let encoding = match zstd {
                    0 => Encoding::Packed,
                    1 if pixels => Encoding::Bgr24Zstd,
                    _ => Encoding::Bgr24,
                };
                let packed = encoding == Encoding::Packed;
                FrameUpdate {
                    seq,
                    last,
                    ack,
                    size: size.map(|(width, height)| ScreenSize { width, height }),
                    encoding,
                    rects: if packed { Vec::new() } else { rects },
                    palettes: if packed { Vec::new() } else { palettes },
                    predicted,
                    data,
                    lossy: lossy
                        .into_iter()
                        .map(|(rect, video, data)| LossyRect {
                            rect,
                            codec: if video {
                                LossyCodec::H264
                            } else {
                                LossyCodec::Jpeg
                            },
                            data,
                        })
                        .collect(),
                    glyphs,
                    timing: Timing::captured(at),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn updates_survive_their_flagged_wire_form(upd in any_update()) {
        let msg = ScreenMsg::Update(upd);
        let bytes = crate::frame::encode(&msg, usize::MAX).expect("encode");
        let (len, head) = crate::frame::parse_header(&bytes, usize::MAX).expect("header").expect("whole");
        prop_assert_eq!(len + head, bytes.len());
        let back: ScreenMsg = crate::frame::decode_body(&bytes[head..]).expect("decode");
        prop_assert_eq!(back, msg);
    }
}

#[test]
fn an_update_of_glyph_draws_alone_is_a_few_bytes() {
    let ops = encode_ops(&[
        GlyphOp::Draw {
            slot: 3,
            x: 48,
            y: 782,
        },
        GlyphOp::Draw {
            slot: 9,
            x: 57,
            y: 782,
        },
    ]);
    let mut upd = empty_update(1920, 1080);
    upd.glyphs = ops.clone();
    upd.last = true;
    let mut tx = StreamWriter::new();
    let mut first = upd.clone();
    first.seq = 500;
    first.timing = Timing::captured(1_700_000_000_000_000);
    tx.compact(&mut first).expect("compact");
    upd.seq = 501;
    upd.timing = Timing::captured(1_700_000_000_100_000);
    tx.compact(&mut upd).expect("compact");
    // The stream's model of operations codes the two draws in fewer bytes than they take.
    let coded = upd.glyphs.len();
    assert!(coded < ops.len(), "{coded} B against {} B", ops.len());
    let bytes = postcard::to_stdvec(&ScreenMsg::Update(upd)).expect("ser");
    // Variant, flags, sequence difference, a 100 ms gap (3 bytes), the operations' length and
    // the operations: no size, no pixels, no empty lists.
    assert_eq!(bytes.len(), 1 + 1 + 1 + 3 + 1 + coded, "{bytes:?}");
}

#[test]
fn a_stream_sends_the_size_once_and_capture_times_as_gaps() {
    let (w, h) = (64, 40);
    let mut enc = TileEncoder::new();
    let (mut tx, mut rx) = (StreamWriter::new(), StreamReader::new());
    let mut fb = Framebuffer::new();
    let mut sizes = Vec::new();
    let mut shown_at = 0;
    for (i, at) in [
        1_700_000_000_000_000u64,
        1_700_000_000_016_000,
        1_700_000_000_015_000,
    ]
    .into_iter()
    .enumerate()
    {
        let px = frame(w, h, i as u32);
        let f = whole(&px, w, h);
        let rects = enc.diff(&f, None, i as u64 * 1000).expect("diff");
        for mut part in enc
            .encode(&f, &rects, i as u64 + 1, Timing::captured(at), &InOrder)
            .expect("encode")
        {
            let seq = part.seq;
            tx.compact(&mut part).expect("compact");
            // The first number in full, then differences.
            assert_eq!(part.seq, if i == 0 { seq } else { 1 });
            sizes.push(part.size);
            let gap = part.timing.captured_us;
            let bytes = postcard::to_stdvec(&part).expect("ser");
            let mut part: FrameUpdate = postcard::from_bytes(&bytes).expect("de");
            rx.expand(&mut part).expect("expand");
            assert_eq!(part.seq, seq);
            // The first time in full, then gaps; a clock stepping back shows no gap.
            match i {
                0 => assert_eq!(gap, at),
                1 => assert_eq!(gap, 16_000),
                _ => assert_eq!(gap, 0),
            }
            assert_eq!(part.timing.captured_us, at.max(shown_at));
            shown_at = part.timing.captured_us;
            fb.apply(&part).expect("apply");
        }
        assert_eq!(fb.pixels(), &px[..], "frame {i}");
    }
    assert_eq!(
        sizes[0],
        Some(ScreenSize {
            width: w,
            height: h
        })
    );
    assert!(sizes[1..].iter().all(Option::is_none), "{sizes:?}");

    // A stream that never says the size is refused.
    let mut part = empty_update(w, h);
    part.size = None;
    assert_eq!(
        StreamReader::new().expand(&mut part),
        Err(CodecError::NoSize)
    );
}

#[test]
fn anti_aliased_shades_travel_as_blends_and_stay_exact() {
    let (w, h) = (40u32, 20u32);
    let (bg, fg) = ([240u8, 236, 232], [200u8, 60, 30]);
    // Shades as pixman composites them (its rounded division by 255), and three colours off
    // the line.
    let mut px = vec![0u8; (w * h * 4) as usize];
    for (i, p) in px.chunks_exact_mut(4).enumerate() {
        // Mostly background, as around text.
        let a = if i % 3 == 0 {
            ((i / 3 * 7) % 18 * 15) as u32
        } else {
            0
        };
        let c: [u8; 3] = match i % 97 {
            // Black first: its index is not 0 once the palette is reordered.
            0 => [0, 0, 0],
            5 => [1, 200, 3],
            9 => [7, 8, 250],
            _ => std::array::from_fn(|k| {
                let t = u32::from(bg[k]) * (255 - a) + u32::from(fg[k]) * a + 128;
                ((t + (t >> 8)) >> 8) as u8
            }),
        };
        p[..3].copy_from_slice(&c);
    }
    let f = whole(&px, w, h);
    let all = Rect { x: 0, y: 0, w, h };
    let parts = encode_parts(&f, &[all], &[], 1, Timing::default(), &InOrder).expect("encode");
    let pal = &parts[0].palettes[0];
    assert!(pal.blends.len() >= 15, "{pal:?}");
    assert!(pal.full.len() <= 6, "{pal:?}");
    let mut fb = Framebuffer::new();
    for p in &parts {
        fb.apply(p).expect("apply");
    }
    for (a, b) in fb.pixels().chunks_exact(4).zip(px.chunks_exact(4)) {
        assert_eq!(a[..3], b[..3]);
    }

    // Blends need their two full colours.
    let mut bad = parts[0].clone();
    bad.palettes[0].full.truncate(1);
    assert!(matches!(
        Framebuffer::new().apply(&bad),
        Err(CodecError::Corrupt(_))
    ));
}

#[test]
fn a_glyph_in_many_shades_of_two_colours_sends_weights_as_indices() {
    let (w, h) = (9u32, 19u32);
    let (bg, fg) = ([250u8, 250, 250], [20u8, 30, 40]);
    // More than 16 shades, so indices take a byte each; with a solid stroke, as in a glyph.
    let mut px = vec![0u8; (w * h * 4) as usize];
    for (i, p) in px.chunks_exact_mut(4).enumerate() {
        let a = match i % 4 {
            0 => (i * 37 % 256) as u8,
            1 => 255,
            _ => 0,
        };
        p[..3].copy_from_slice(&Colours::blend(bg, fg, a));
    }
    let f = whole(&px, w, h);
    let all = Rect { x: 0, y: 0, w, h };
    let parts = encode_parts(&f, &[all], &[], 1, Timing::default(), &InOrder).expect("encode");
    let pal = &parts[0].palettes[0];
    assert!(pal.is_alpha(), "{pal:?}");
    assert_eq!(pal.len(), 256);
    assert_eq!(postcard::to_stdvec(pal).expect("ser").len(), 9);
    let mut fb = Framebuffer::new();
    for p in &parts {
        fb.apply(p).expect("apply");
    }
    for (a, b) in fb.pixels().chunks_exact(4).zip(px.chunks_exact(4)) {
        assert_eq!(a[..3], b[..3]);
    }
    // One more colour off the line, and the palette lists its shades again.
    px[4..7].copy_from_slice(&[0, 200, 0]);
    let f = whole(&px, w, h);
    let parts = encode_parts(&f, &[all], &[], 2, Timing::default(), &InOrder).expect("encode");
    let pal = &parts[0].palettes[0];
    assert!(!pal.is_alpha() && pal.blends.len() > 16, "{pal:?}");
}

#[test]
fn a_glyph_beside_an_empty_cell_sends_only_its_own_box() {
    let (w, h) = (18u32, 19u32);
    let (bg, fg) = ([250u8, 250, 250], [20u8, 30, 40]);
    let mut px = vec![0u8; (w * h * 4) as usize];
    for (i, p) in px.chunks_exact_mut(4).enumerate() {
        let (x, y) = (i as u32 % w, i as u32 / w);
        let a = if (1..8).contains(&x) && (4..15).contains(&y) {
            (x * 31 + y * 17) as u8
        } else {
            0
        };
        p[..3].copy_from_slice(&Colours::blend(bg, fg, a));
    }
    let f = whole(&px, w, h);
    let all = Rect { x: 0, y: 0, w, h };
    let parts = encode_parts(&f, &[all], &[], 1, Timing::default(), &InOrder).expect("encode");
    assert_eq!(parts[0].rects[0], all);
    assert_eq!(parts[0].palettes[0], Colours::full(vec![bg]));
    let ink = parts[0].rects[1];
    assert!(
        ink.x >= 1 && ink.x + ink.w <= 8 && ink.y >= 4 && ink.y + ink.h <= 15,
        "{ink:?}"
    );
    let mut fb = Framebuffer::new();
    for p in &parts {
        fb.apply(p).expect("apply");
    }
    assert_eq!(fb.pixels(), &px[..]);
}

/// A page of source code in a terminal: indented lines of varied length, some blank, in three
/// colours over 20 glyphs, from line `first` of an endless file.
fn code_page(w: u32, rows: u32, first: u32) -> Vec<u8> {
    let bg = [250, 250, 250];
    let fg = [[20, 20, 20], [160, 40, 160], [40, 140, 60]];
    let mut buf = solid(w, rows * 16, bg);
    for row in 0..rows {
        let line = first + row;
        if line % 7 == 3 {
            continue;
        }
        let indent = line * 5 % 4 * 4;
        for col in indent..(indent + line * 7 % 23 + 3).min(w / 9) {
            let g = ((line * 13 + col * 7) % 20) as u8;
            paint_glyph(&mut buf, w, col, row, g, fg[usize::from(g % 3)], bg);
        }
    }
    buf
}

#[test]
fn a_new_page_of_known_text_is_drawn_whole_from_the_cache() {
    // Paging down in `less`: every line is replaced, and the changed pixels are sparse (short
    // lines, indentation, blank lines), spread over many tiles whose edges cut glyphs.
    let (w, rows) = (9 * 90, 40);
    let h = rows * 16;
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    let first = code_page(w, rows, 0);
    encoded_bytes(&mut enc, &mut fb, &whole(&first, w, h), 0);
    let mut bytes = 0;
    for page in 1..4 {
        let next = code_page(w, rows, page * 40);
        let f = whole(&next, w, h);
        let rects = enc.diff(&f, None, u64::from(page) * 1000).expect("diff");
        for part in enc
            .encode(&f, &rects, u64::from(page), Timing::default(), &InOrder)
            .expect("encode")
        {
            for op in decode_ops(&part.glyphs).expect("ops") {
                if let GlyphOp::Store { rect, .. } = op {
                    assert!(rect.w <= 9, "{rect:?} is more than a character");
                    panic!("page {page} stores {rect:?}: its glyphs were known");
                }
            }
            bytes += postcard::to_stdvec(&part).expect("ser").len();
            fb.apply(&part).expect("apply");
        }
        assert_eq!(fb.pixels(), &next[..], "page {page} is exact");
    }
    assert!(bytes < 3 * 4000, "three pages cost {bytes} B");
}

/// A page of monospaced text as anti-aliased fonts draw it, in 9x16 cells: a third of the
/// glyphs ink their cell's first column too (so runs of them touch, and the boundaries between
/// cells are inked a quarter of the time), and a glyph before a space bleeds a faint pixel into
/// it. Words of 2 to 6 of 16 glyphs, in two colours, from line `first` of an endless text.
fn touching_text(w: u32, rows: u32, first: u32) -> Vec<u8> {
    let bg = [255, 255, 255];
    let mut buf = solid(w, rows * 16, bg);
    for row in 0..rows {
        let line = first + row;
        let (mut col, mut word) = (0, 0);
        while col + 8 < w / 9 {
            let len = (line * 3 + word * 5) % 5 + 2;
            for k in 0..len {
                let g = (line * 7 + word * 11 + k * 5) % 16;
                let fg = if word % 3 == 0 {
                    [150, 30, 150]
                } else {
                    [0, 0, 0]
                };
                for dy in 2..14u32 {
                    for dx in if g.is_multiple_of(3) { 0 } else { 1 }..8u32 {
                        let v = (g * 7 + dx * 13 + dy * 29) % 11;
                        if v < 5 {
                            let (x, y) = ((col + k) * 9 + dx, row * 16 + dy);
                            let c = Colours::blend(bg, fg, (v as u8 + 1) * 40);
                            let o = ((y * w + x) * 4) as usize;
                            buf[o..o + 3].copy_from_slice(&c);
                        }
                    }
                }
                if k == len - 1 && g % 4 == 1 {
                    let (x, y) = ((col + k + 1) * 9, row * 16 + 8);
                    let o = ((y * w + x) * 4) as usize;
                    buf[o..o + 3].copy_from_slice(&Colours::blend(bg, fg, 30));
                }
            }
            col += len + 1;
            word += 1;
        }
    }
    buf
}

#[test]
fn text_whose_glyphs_touch_is_cut_at_its_character_grid_and_drawn_whole() {
    let (w, rows) = (9 * 100, 30);
    let h = rows * 16;
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    // Two pages teach the viewer every glyph, with and without its bleed.
    for page in 0..2 {
        let px = touching_text(w, rows, page * 30);
        encoded_bytes(&mut enc, &mut fb, &whole(&px, w, h), u64::from(page));
    }
    let next = touching_text(w, rows, 60);
    let f = whole(&next, w, h);
    let rects = enc.diff(&f, None, 5000).expect("diff");
    let (mut fills, mut draws) = (0, 0);
    for part in enc
        .encode(&f, &rects, 5, Timing::default(), &InOrder)
        .expect("encode")
    {
        assert!(
            part.rects.is_empty(),
            "{} rectangles of pixels",
            part.rects.len()
        );
        for op in decode_ops(&part.glyphs).expect("ops") {
            match op {
                GlyphOp::Store { rect, .. } => panic!("{rect:?} stored: its glyph was known"),
                GlyphOp::Fill { .. } => fills += 1,
                GlyphOp::Draw { .. } => draws += 1,
                GlyphOp::Copy { .. }
                | GlyphOp::Keep { .. }
                | GlyphOp::Recall { .. }
                | GlyphOp::Save { .. }
                | GlyphOp::Restore { .. } => {}
            }
        }
        fb.apply(&part).expect("apply");
    }
    assert_eq!(fb.pixels(), &next[..], "the page is exact");
    assert_eq!(fills, 1, "the page is one fill and its glyphs");
    assert!(draws > 1000, "{draws} draws");
}

#[test]
fn a_glyph_stored_in_a_region_never_takes_the_slot_of_one_drawn_after_it() {
    // The viewer's 4,096 slots are full, the oldest first in line to go. Then a line shows three
    // new glyphs before three of those oldest ones: the new glyphs' stores must not take the
    // slots the old ones are drawn from.
    let (w, h) = (9 * 64, 16 * 64);
    let bg = [240, 240, 240];
    let glyph = |buf: &mut [u8], col: u32, row: u32, idx: u32| {
        // A colour of its own for each glyph.
        let fg = [
            (idx % 64 * 3) as u8,
            (idx / 64 % 64 * 3) as u8,
            (idx / 4096 * 50) as u8,
        ];
        paint_glyph(buf, w, col, row, (idx % 11) as u8, fg, bg);
    };
    let mut px = solid(w, h, bg);
    for idx in 0..64 * 64 {
        glyph(&mut px, idx % 64, idx / 64, idx);
    }
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    encoded_bytes(&mut enc, &mut fb, &whole(&px, w, h), 0);
    assert_eq!(fb.pixels(), &px[..]);
    // Row 0: three glyphs never seen, then a shuffle of the row's old glyphs, which puts the
    // first three stored (slots 0, 1 and 2) at columns 31, 12 and 57.
    for col in 0..64 {
        let idx = if col < 3 {
            5000 + col
        } else {
            (col * 37 + 5) % 64
        };
        glyph(&mut px, col, 0, idx);
    }
    encoded_bytes(&mut enc, &mut fb, &whole(&px, w, h), 1);
    assert_eq!(
        fb.pixels(),
        &px[..],
        "every glyph drawn from the slot it was in"
    );
}

#[test]
fn a_big_scroll_sends_its_copies_in_the_first_of_several_parts() {
    let (w, h) = (1920u32, 1080u32);
    let pic = photo(w, h + 700);
    let view = |top: u32| pic[(top * w * 4) as usize..((top + h) * w * 4) as usize].to_vec();
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    roundtrip(&mut enc, &mut fb, &whole(&view(0), w, h), 0);
    let next = view(700);
    let f = whole(&next, w, h);
    let rects = enc.diff(&f, None, 1000).expect("diff");
    let parts = enc
        .encode(&f, &rects, 1, Timing::default(), &InOrder)
        .expect("encode");
    assert!(parts.len() > 1, "{} parts", parts.len());
    let copies = |p: &FrameUpdate| {
        decode_ops(&p.glyphs)
            .expect("ops")
            .iter()
            .filter(|op| matches!(op, GlyphOp::Copy { .. }))
            .count()
    };
    assert!(copies(&parts[0]) > 0);
    assert!(parts[1..].iter().all(|p| copies(p) == 0));
    for p in &parts {
        fb.apply(p).expect("apply");
    }
    assert_eq!(fb.pixels(), &next[..]);
}

/// A stand-in for H.264: each picture is its rectangle's size, whether it is a key picture, and
/// its pixels with the low three bits of each channel dropped (lossy, but close). With `cuts`,
/// it says every picture was a scene cut. The decoder refuses a first picture that is not a key
/// picture, as a real one cannot decode it.
#[derive(Debug, Default)]
struct FakeVideo {
    pictures: Vec<(Rect, bool)>,
    cuts: bool,
}

#[derive(Debug, Default)]
struct FakeVideoEncoder(std::sync::Arc<std::sync::Mutex<FakeVideo>>);

impl VideoEncoder for FakeVideoEncoder {
    fn encode(
        &mut self,
        frame: &FrameRef<'_>,
        rect: &Rect,
        key: bool,
    ) -> Result<Vec<u8>, CodecError> {
        self.0.lock().expect("lock").pictures.push((*rect, key));
        let mut out = vec![u8::from(key)];
        out.extend_from_slice(&rect.w.to_le_bytes());
        out.extend_from_slice(&rect.h.to_le_bytes());
        for y in rect.y..rect.y + rect.h {
            for px in frame.row(y, rect.x, rect.x + rect.w).chunks_exact(4) {
                out.extend(px[..3].iter().map(|c| c & !7));
            }
        }
        Ok(out)
    }

    fn scene_cut(&self) -> bool {
        self.0.lock().expect("lock").cuts
    }
}

#[derive(Debug, Default)]
struct FakeVideoDecoder {
    started: bool,
}

impl VideoDecoder for FakeVideoDecoder {
    fn decode(
        &mut self,
        data: &[u8],
        w: u32,
        h: u32,
        dst: &mut [u8],
        stride: usize,
    ) -> Result<(), CodecError> {
        let bad = || CodecError::Video("bad picture".into());
        let key = *data.first().ok_or_else(bad)? == 1;
        self.started |= key;
        let dims = (
            u32::from_le_bytes(
                data.get(1..5)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            ),
            u32::from_le_bytes(
                data.get(5..9)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            ),
        );
        if !self.started || dims != (w, h) || data.len() != 9 + (w * h * 3) as usize {
            return Err(bad());
        }
        for (y, row) in data[9..].chunks_exact(w as usize * 3).enumerate() {
            let line = &mut dst[y * stride..y * stride + w as usize * 4];
            for (d, s) in line.chunks_exact_mut(4).zip(row.chunks_exact(3)) {
                d[..3].copy_from_slice(s);
                d[3] = 0;
            }
        }
        Ok(())
    }
}

/// A screen of text with a photo-like square at (`x`, 64) that changes with `seed`.
fn text_with_picture(w: u32, h: u32, x: u32, side: u32, seed: u32) -> Vec<u8> {
    let mut page = text_page(w, h / 16, 0);
    page.resize((w * h * 4) as usize, 0xee);
    let pic = photo(side + seed % 7, side);
    for y in 0..side {
        let src = &pic[(y * (side + seed % 7) * 4) as usize..][..(side * 4) as usize];
        let at = (((64 + y) * w + x) * 4) as usize;
        page[at..at + src.len()].copy_from_slice(src);
    }
    page
}

/// Drives `enc` through `frames` 33 ms apart into `fb` (through the fake video decoder), and
/// returns the lossy rectangles each frame carried.
fn play(
    enc: &mut TileEncoder,
    fb: &mut Framebuffer,
    dec: &mut FakeVideoDecoder,
    frames: &[Vec<u8>],
    w: u32,
    h: u32,
    t0: u64,
) -> Vec<Vec<LossyRect>> {
    let times: Vec<u64> = (0..frames.len() as u64).map(|i| t0 + i * 33).collect();
    play_at(enc, fb, dec, frames, &times, w, h)
}

/// Encodes `frames[i]` at `times[i]` (ms) and applies each to `fb`; returns each frame's lossy
/// rectangles.
fn play_at(
    enc: &mut TileEncoder,
    fb: &mut Framebuffer,
    dec: &mut FakeVideoDecoder,
    frames: &[Vec<u8>],
    times: &[u64],
    w: u32,
    h: u32,
) -> Vec<Vec<LossyRect>> {
    let mut out = Vec::new();
    for (i, (px, &t)) in frames.iter().zip(times).enumerate() {
        let f = whole(px, w, h);
        let rects = enc.diff(&f, None, t).expect("diff");
        let mut lossy = Vec::new();
        for part in enc
            .encode(&f, &rects, i as u64, Timing::default(), &InOrder)
            .expect("encode")
        {
            let bytes = postcard::to_stdvec(&part).expect("ser");
            let part: FrameUpdate = postcard::from_bytes(&bytes).expect("de");
            fb.apply_with(&part, dec).expect("apply");
            lossy.extend(part.lossy);
        }
        out.push(lossy);
    }
    out
}

#[test]
fn a_picture_that_keeps_changing_goes_as_video_and_ends_exact() {
    let (w, h) = (640u32, 480u32);
    let log = std::sync::Arc::new(std::sync::Mutex::new(FakeVideo::default()));
    let mut enc = TileEncoder::with_video(Box::new(FakeVideoEncoder(log.clone())));
    let mut fb = Framebuffer::new();
    let mut dec = FakeVideoDecoder::default();
    let frames: Vec<Vec<u8>> = (0..8)
        .map(|i| text_with_picture(w, h, 96, 300, i))
        .collect();
    let sent = play(&mut enc, &mut fb, &mut dec, &frames, w, h, 1000);
    let pictures = log.lock().expect("lock").pictures.clone();
    assert!(pictures.len() >= 5, "motion goes as video: {pictures:?}");
    let (rect, key) = pictures[0];
    assert!(key, "a video starts with a key picture");
    assert!(
        pictures[1..].iter().all(|p| !p.1),
        "then only pictures that depend on it"
    );
    assert_eq!(
        rect,
        video_rect(
            &Rect {
                x: 96,
                y: 64,
                w: 300,
                h: 300
            },
            w,
            h
        )
        .expect("fits")
    );
    assert_eq!(
        (rect.x % 16, rect.y % 16, rect.w % 2, rect.h % 2),
        (0, 0, 0, 0)
    );
    let videos: Vec<&LossyRect> = sent.iter().flatten().collect();
    assert!(
        videos.iter().all(|v| v.codec == LossyCodec::H264),
        "no JPEG beside the video"
    );
    // The text around the picture stayed exact.
    let last = frames.last().expect("frames");
    let pitch = (w * 4) as usize;
    let row = |px: &[u8], y: u32| px[y as usize * pitch..][..pitch].to_vec();
    assert_eq!(row(fb.pixels(), 20), row(last, 20));
    assert_ne!(fb.pixels(), &last[..], "the video is approximate");
    // Nothing is refined under a running video, even after a gap or two without a picture (a
    // host that fell behind)…
    let end = 1000 + 7 * 33;
    for late in [10, 50, 140] {
        let refined = enc.refine(end + late, 99, Timing::default(), &InOrder);
        assert!(refined.expect("refine").is_none(), "{late} ms");
    }
    // …and once it has stopped for longer, the region is sent again exactly.
    let parts = enc
        .refine(end + 150, 100, Timing::default(), &InOrder)
        .expect("refine")
        .expect("due");
    for p in &parts {
        assert!(p.lossy.is_empty());
        fb.apply_with(p, &mut dec).expect("apply");
    }
    assert_eq!(fb.pixels(), &last[..], "exact once it stops");
    assert!(!enc.has_lossy());
    // Motion again: a new video, from a key picture.
    let again: Vec<Vec<u8>> = (10..14)
        .map(|i| text_with_picture(w, h, 96, 300, i))
        .collect();
    play(&mut enc, &mut fb, &mut dec, &again, w, h, end + 1000);
    let pictures = log.lock().expect("lock").pictures.clone();
    let restarted = pictures.iter().skip(1).position(|p| p.1);
    assert!(
        restarted.is_some(),
        "a new video starts with a key picture: {pictures:?}"
    );
}

#[test]
fn a_burst_of_changes_that_started_a_video_is_exact_soon_after_it_stops() {
    // A picture redrawn three times in quick succession (a page of photographs scrolled one
    // step, drawn in passes): Auto takes it for motion and starts a video, which then gets no
    // second picture. It ends within three of the burst's gaps, not after a video's 150 ms.
    let (w, h) = (640u32, 480u32);
    let log = std::sync::Arc::new(std::sync::Mutex::new(FakeVideo::default()));
    let mut enc = TileEncoder::with_video(Box::new(FakeVideoEncoder(log.clone())));
    let mut fb = Framebuffer::new();
    let mut dec = FakeVideoDecoder::default();
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| text_with_picture(w, h, 96, 300, i))
        .collect();
    play_at(
        &mut enc,
        &mut fb,
        &mut dec,
        &frames,
        &[1000, 1010, 1020],
        w,
        h,
    );
    let last = &frames[2];
    let pictures = log.lock().expect("lock").pictures.clone();
    assert_eq!(pictures.len(), 1, "one key picture: {pictures:?}");
    let end = 1020;
    assert!(
        enc.refine(end + 20, 9, Timing::default(), &InOrder)
            .expect("refine")
            .is_none()
    );
    let parts = enc
        .refine(end + 60, 10, Timing::default(), &InOrder)
        .expect("refine")
        .expect("the young video ended and its region is refined");
    for p in &parts {
        fb.apply_with(p, &mut dec).expect("apply");
    }
    assert_eq!(fb.pixels(), &last[..], "exact 60 ms after the burst");
}

#[test]
fn a_video_goes_on_when_the_host_is_slower_than_the_motion() {
    // The picture changes every 33 ms, but the host's next frame comes 150 ms after the key
    // picture (encoding it took that long): the motion has not stopped, so the same video goes
    // on, with no second key picture.
    let (w, h) = (640u32, 480u32);
    let log = std::sync::Arc::new(std::sync::Mutex::new(FakeVideo::default()));
    let mut enc = TileEncoder::with_video(Box::new(FakeVideoEncoder(log.clone())));
    let mut fb = Framebuffer::new();
    let mut dec = FakeVideoDecoder::default();
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|i| text_with_picture(w, h, 96, 300, i))
        .collect();
    let times = [1000, 1033, 1066, 1216, 1366];
    play_at(&mut enc, &mut fb, &mut dec, &frames, &times, w, h);
    let pictures = log.lock().expect("lock").pictures.clone();
    assert!(pictures.len() >= 3, "{pictures:?}");
    assert!(pictures[0].1, "a video starts with a key picture");
    assert!(
        pictures[1..].iter().all(|p| !p.1),
        "and goes on without another: {pictures:?}"
    );
}

#[test]
fn video_is_for_auto_and_smooth_not_sharp_nor_text() {
    let (w, h) = (640u32, 480u32);
    for (q, content, want) in [
        (Quality::Sharp, "photo", false),
        (Quality::Auto, "photo", true),
        (Quality::Smooth, "photo", true),
        (Quality::Auto, "text", false),
    ] {
        let log = std::sync::Arc::new(std::sync::Mutex::new(FakeVideo::default()));
        let mut enc = TileEncoder::with_video(Box::new(FakeVideoEncoder(log.clone())));
        enc.set_quality(q);
        let mut fb = Framebuffer::new();
        let mut dec = FakeVideoDecoder::default();
        let frames: Vec<Vec<u8>> = (0..6)
            .map(|i| match content {
                "photo" => text_with_picture(w, h, 32, 400, i),
                _ => text_page(w, h / 16, i * 3),
            })
            .collect();
        play(&mut enc, &mut fb, &mut dec, &frames, w, h, 0);
        let used = !log.lock().expect("lock").pictures.is_empty();
        assert_eq!(used, want, "{q:?} {content}");
        if content == "text" || q == Quality::Sharp {
            assert_eq!(fb.pixels(), &frames[5][..], "{q:?} {content} stays exact");
        }
    }
}

#[test]
fn scene_cuts_go_as_jpeg_in_auto_and_stay_video_in_smooth() {
    // Every picture as costly as the key picture: Auto ends the video after two such pictures
    // and sends the region as JPEG for a while (then tries video again); Smooth keeps it, for
    // its bytes.
    let (w, h) = (640u32, 480u32);
    let frames: Vec<Vec<u8>> = (0..12)
        .map(|i| text_with_picture(w, h, 32, 400, i))
        .collect();
    for q in [Quality::Auto, Quality::Smooth] {
        let log = std::sync::Arc::new(std::sync::Mutex::new(FakeVideo {
            cuts: true,
            ..FakeVideo::default()
        }));
        let mut enc = TileEncoder::with_video(Box::new(FakeVideoEncoder(log.clone())));
        enc.set_quality(q);
        let (mut fb, mut dec) = (Framebuffer::new(), FakeVideoDecoder::default());
        let sent = play(&mut enc, &mut fb, &mut dec, &frames, w, h, 0);
        let pictures = log.lock().expect("lock").pictures.len();
        let jpeg_after = sent
            .iter()
            .skip_while(|l| !l.iter().any(|r| r.codec == LossyCodec::H264))
            .flatten()
            .filter(|r| r.codec == LossyCodec::Jpeg)
            .count();
        match q {
            Quality::Auto => {
                assert_eq!(pictures, 3, "a key picture and two cuts");
                assert!(jpeg_after >= 5, "then JPEG: {jpeg_after}");
            }
            _ => {
                assert!(pictures >= 9, "Smooth keeps the video: {pictures}");
                assert_eq!(jpeg_after, 0);
            }
        }
        // Once the pictures stop, the region is made exact either way.
        let last = frames.last().expect("frames").clone();
        play(
            &mut enc,
            &mut fb,
            &mut dec,
            std::slice::from_ref(&last),
            w,
            h,
            2000,
        );
        for (i, t) in [2400, 2800, 3200].into_iter().enumerate() {
            for part in enc
                .refine(t, 100 + i as u64, Timing::default(), &InOrder)
                .expect("refine")
                .unwrap_or_default()
            {
                fb.apply_with(&part, &mut dec).expect("apply");
            }
        }
        assert_eq!(fb.pixels(), &last[..], "{q:?} ends exact");
    }
}

#[test]
fn a_reset_restarts_the_video_with_a_key_picture() {
    let (w, h) = (640u32, 480u32);
    let log = std::sync::Arc::new(std::sync::Mutex::new(FakeVideo::default()));
    let mut enc = TileEncoder::with_video(Box::new(FakeVideoEncoder(log.clone())));
    enc.set_quality(Quality::Smooth);
    let frames: Vec<Vec<u8>> = (0..4)
        .map(|i| text_with_picture(w, h, 32, 400, i))
        .collect();
    let (mut fb, mut dec) = (Framebuffer::new(), FakeVideoDecoder::default());
    play(&mut enc, &mut fb, &mut dec, &frames, w, h, 0);
    enc.reset();
    // A new viewer (a new decoder) after the reset decodes from the first picture it gets.
    let (mut fb, mut dec) = (Framebuffer::new(), FakeVideoDecoder::default());
    let frames: Vec<Vec<u8>> = (4..8)
        .map(|i| text_with_picture(w, h, 32, 400, i))
        .collect();
    play(&mut enc, &mut fb, &mut dec, &frames, w, h, 200);
    let keys = log
        .lock()
        .expect("lock")
        .pictures
        .iter()
        .filter(|p| p.1)
        .count();
    assert_eq!(keys, 2);
}

#[test]
fn hostile_video_is_refused_before_anything_is_painted() {
    let (w, h) = (64u32, 64u32);
    let mut fb = Framebuffer::new();
    let base = empty_update(w, h);
    fb.apply(&base).expect("size");
    let video = |rect: Rect| LossyRect {
        rect,
        codec: LossyCodec::H264,
        data: vec![1, 2, 3],
    };
    let r = Rect {
        x: 0,
        y: 0,
        w: 32,
        h: 32,
    };
    let cases = [
        vec![video(r), video(r)],
        vec![video(Rect { w: 31, ..r })],
        vec![video(Rect { x: 48, ..r })],
    ];
    for lossy in cases {
        let upd = FrameUpdate {
            lossy: lossy.clone(),
            ..base.clone()
        };
        assert!(
            fb.apply_with(&upd, &mut FakeVideoDecoder::default())
                .is_err(),
            "{lossy:?}"
        );
        assert!(fb.pixels().iter().all(|p| *p == 0), "nothing painted");
    }
    // A viewer without a video decoder says so.
    let upd = FrameUpdate {
        lossy: vec![video(r)],
        ..base.clone()
    };
    assert_eq!(fb.apply(&upd), Err(CodecError::NoVideoDecoder));
}

#[test]
fn a_region_is_written_as_opaque_rgba_where_asked_and_never_out_of_bounds() {
    let (w, h) = (64, 32);
    let a = frame(w, h, 7);
    let mut fb = Framebuffer::new();
    roundtrip(&mut TileEncoder::new(), &mut fb, &whole(&a, w, h), 1);
    let r = Rect {
        x: 10,
        y: 5,
        w: 7,
        h: 3,
    };
    // Into a 20x10 picture at (2, 4): the rest stays untouched.
    let pitch = 20 * 4;
    let mut dst = vec![9u8; pitch * 10];
    assert!(fb.write_rgba(&r, &mut dst, pitch, (2, 4)));
    for y in 0..10usize {
        for x in 0..20usize {
            let got = &dst[y * pitch + x * 4..y * pitch + x * 4 + 4];
            let inside = (2..9).contains(&x) && (4..7).contains(&y);
            if inside {
                let (sx, sy) = (10 + x - 2, 5 + y - 4);
                let s = &a[(sy * w as usize + sx) * 4..(sy * w as usize + sx) * 4 + 4];
                assert_eq!(got, &[s[2], s[1], s[0], 255], "({x}, {y})");
            } else {
                assert_eq!(got, &[9, 9, 9, 9], "({x}, {y}) is outside");
            }
        }
    }
    assert_eq!(
        fb.region_rgba(&r),
        dst.chunks(pitch)
            .skip(4)
            .take(3)
            .flat_map(|row| row[8..36].to_vec())
            .collect::<Vec<u8>>()
    );
    // A place that cannot hold it writes nothing.
    let before = dst.clone();
    assert!(!fb.write_rgba(&r, &mut dst, pitch, (14, 4)));
    assert!(!fb.write_rgba(&r, &mut dst, pitch, (2, 8)));
    assert_eq!(dst, before);
}

proptest! {
    #[test]
    fn a_rectangle_minus_another_leaves_exactly_the_rest(
        a in (0u32..40, 0u32..40, 1u32..40, 1u32..40),
        b in (0u32..40, 0u32..40, 1u32..40, 1u32..40),
    ) {
        let a = Rect { x: a.0, y: a.1, w: a.2, h: a.3 };
        let b = Rect { x: b.0, y: b.1, w: b.2, h: b.3 };
        let pieces = a.minus(&b);
        for x in 0..80 {
            for y in 0..80 {
                let p = Rect { x, y, w: 1, h: 1 };
                let inside = |r: &Rect| r.intersect(&p).is_some();
                let n = pieces.iter().filter(|r| inside(r)).count();
                prop_assert_eq!(n, usize::from(inside(&a) && !inside(&b)), "({}, {})", x, y);
            }
        }
    }
}

/// Paints proportional glyph `g` with its top-left corner at (`x`, `y`) and returns its width:
/// 4 to 12 columns of anti-aliased shades of `fg` on `bg`, the first a stem of ten rows. Every
/// fourth glyph ends in a thin arm, one pixel high, which the next glyph touches (as `r` does
/// in `rk`).
fn paint_prop(buf: &mut [u8], w: u32, (x, y): (u32, u32), g: u32, fg: [u8; 3], bg: [u8; 3]) -> u32 {
    let gw = 4 + g * 5 % 9;
    let arm = g.is_multiple_of(4);
    for dx in 0..gw {
        for dy in 2..12u32 {
            let ink = if dx == 0 {
                true
            } else if arm && dx == gw - 1 {
                dy == 4
            } else {
                dy % 4 == 2 || (g * 7 + dx * 13 + dy * 29) % 11 < 5
            };
            if ink {
                let a = 60 + ((g * 5 + dx * 3 + dy) % 4) as u8 * 60;
                let o = (((y + dy) * w + x + dx) * 4) as usize;
                buf[o..o + 3].copy_from_slice(&Colours::blend(bg, fg, a));
            }
        }
    }
    gw
}

/// A web page of `rows` lines (16 rows each) from line `first` of an endless article: words of
/// proportional glyphs in two colours, every fifth word a link (underlined), and lines 6 to 9
/// a code block of its own grey background holding monospaced glyphs.
fn web_page(w: u32, rows: u32, first: u32) -> Vec<u8> {
    let (white, grey) = ([255, 255, 255], [238, 240, 244]);
    let (ink, link) = ([30, 30, 30], [200, 90, 10]);
    let mut buf = solid(w, rows * 16, white);
    for row in 0..rows {
        let line = first + row;
        let top = row * 16;
        if (6..10).contains(&row) {
            for y in top..top + 16 {
                for x in 0..w {
                    let o = ((y * w + x) * 4) as usize;
                    buf[o..o + 3].copy_from_slice(&grey);
                }
            }
            for col in 2..(line * 7 % 30 + 10).min(w / 9) {
                let g = ((line * 13 + col * 7) % 20) as u8;
                paint_glyph(&mut buf, w, col, row, g, [40, 40, 120], grey);
            }
            continue;
        }
        let mut x = 4;
        let mut word = 0;
        while x + 60 < w {
            let fg = if word % 5 == 4 { link } else { ink };
            let start = x;
            for k in 0..(line * 3 + word * 5) % 5 + 2 {
                let g = (line * 7 + word * 11 + k * 5) % 16;
                x += paint_prop(&mut buf, w, (x, top), g, fg, white);
                // After an arm, the next glyph touches it.
                x += u32::from(!g.is_multiple_of(4));
            }
            if fg == link && x - start >= 16 {
                for lx in start..x {
                    let o = (((top + 14) * w + lx) * 4) as usize;
                    buf[o..o + 3].copy_from_slice(&link);
                }
            }
            x += 6;
            word += 1;
        }
    }
    buf
}

#[test]
fn a_web_page_with_links_and_a_code_block_is_drawn_whole_from_the_cache() {
    // Proportional text has no character grid (and must not be cut at the one of the code
    // block); touching glyphs are cut where a thin arm meets a stem; a link's underline is not
    // part of its letters; the code block is text on a background of its own.
    let (w, rows) = (9 * 60, 20);
    let h = rows * 16;
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    let first = web_page(w, rows, 0);
    encoded_bytes(&mut enc, &mut fb, &whole(&first, w, h), 0);
    for page in 1..4 {
        let next = web_page(w, rows, page * 20);
        let f = whole(&next, w, h);
        let rects = enc.diff(&f, None, u64::from(page) * 1000).expect("diff");
        let mut fills = Vec::new();
        for part in enc
            .encode(&f, &rects, u64::from(page), Timing::default(), &InOrder)
            .expect("encode")
        {
            for op in decode_ops(&part.glyphs).expect("ops") {
                match op {
                    // Underlines of new lengths are new; letters are not.
                    GlyphOp::Store { rect, .. } => {
                        assert_eq!(
                            rect.h, 1,
                            "page {page} stores {rect:?}: its glyphs were known"
                        )
                    }
                    GlyphOp::Fill { colour, .. } => fills.push(colour),
                    _ => {}
                }
            }
            fb.apply(&part).expect("apply");
        }
        assert_eq!(fb.pixels(), &next[..], "page {page} is exact");
        assert!(
            fills.contains(&[238, 240, 244]) && fills.contains(&[255, 255, 255]),
            "page {page}: the code block and the text are painted whole: {fills:?}"
        );
    }
}

#[test]
fn a_page_of_pictures_scrolled_step_by_step_stays_exact_in_auto() {
    // Each step of a scroll exposes new rows of pictures at the bottom: new content, not motion,
    // which on a fast link goes exact at once rather than as video refined later.
    let (w, h, step) = (320u32, 240u32, 24u32);
    let tall = photo(w, h * 2);
    let rows = |top: u32| tall[(top * w * 4) as usize..((top + h) * w * 4) as usize].to_vec();
    let frames: Vec<Vec<u8>> = (0..8).map(|k| rows(k * step)).collect();
    let times: Vec<u64> = (0..8).map(|k| 1000 + k * 80).collect();
    let log = std::sync::Arc::new(std::sync::Mutex::new(FakeVideo::default()));
    let mut enc = TileEncoder::with_video(Box::new(FakeVideoEncoder(log.clone())));
    enc.set_quality(Quality::Auto);
    let mut fb = Framebuffer::new();
    let mut dec = FakeVideoDecoder::default();
    let sent = play_at(&mut enc, &mut fb, &mut dec, &frames, &times, w, h);
    assert!(
        sent.iter().all(Vec::is_empty),
        "every step is exact: {:?}",
        sent.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(log.lock().expect("lock").pictures.is_empty());
    assert_eq!(fb.pixels(), &frames[7][..]);
}

#[test]
fn a_keystroke_beside_known_text_draws_only_the_typed_glyph() {
    // The glyph pass looks around a change to find glyphs whole, but paints only what changed:
    // the neighbours of a typed character are not drawn again.
    let (w, h) = (9 * 40, 16 * 4);
    let (bg, fg) = ([250, 250, 250], [20, 20, 20]);
    let mut buf = solid(w, h, bg);
    // Two words: the glyph before the space is whole within the margin.
    for col in (0..20).filter(|c| *c != 18) {
        paint_glyph(&mut buf, w, col, 1, (col % 7) as u8, fg, bg);
    }
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    encoded_bytes(&mut enc, &mut fb, &packed(&buf, w, h), 1);
    // The known glyph 3, typed at the end of the line.
    paint_glyph(&mut buf, w, 20, 1, 3, fg, bg);
    let ops = ops_of(&sent(&mut enc, &mut fb, &packed(&buf, w, h), 2000, 2));
    assert_eq!(fb.pixels(), &buf[..]);
    let draws: Vec<u32> = ops
        .iter()
        .filter_map(|op| match op {
            GlyphOp::Draw { x, .. } => Some(*x),
            _ => None,
        })
        .collect();
    assert_eq!(draws, [181], "only the typed glyph is drawn: {ops:?}");
    assert!(
        ops.iter()
            .all(|op| !matches!(op, GlyphOp::Fill { rect, .. } if rect.x < 180)),
        "nothing left of the typed glyph is painted again: {ops:?}"
    );
}

/// Paints glyph-like ink of `fg` on `bg` in the box `gw` x `gh` at (`x`, `y`): two pixels in
/// five, in four shades, every column inked.
fn paint_ink(buf: &mut [u8], w: u32, (x, y, gw, gh): (u32, u32, u32, u32), [fg, bg]: [[u8; 3]; 2]) {
    for dy in 0..gh {
        for dx in (0..gw).filter(|dx| (dx * 7 + dy * 3) % 5 < 2) {
            let o = (((y + dy) * w + x + dx) * 4) as usize;
            let shade = 1 + (dx * 5 + dy * 3) % 4;
            let c = Colours::blend(bg, fg, (shade * 255 / 4) as u8);
            buf[o..o + 3].copy_from_slice(&c);
        }
    }
}

#[test]
fn a_grid_that_other_text_does_not_fit_is_forgotten_before_a_keystroke() {
    // A grid of 13 px found in one window's text, then a page of proportional text over it:
    // a glyph typed there must not be cut at the first window's grid.
    let (w, h) = (13 * 60, 16 * 24);
    let (bg, fg) = ([250, 250, 250], [20, 20, 20]);
    let mut buf = solid(w, h, bg);
    for row in 0..6 {
        for col in 0..55 {
            paint_ink(&mut buf, w, (col * 13 + 1, row * 16 + 3, 7, 10), [fg, bg]);
        }
    }
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    encoded_bytes(&mut enc, &mut fb, &whole(&buf, w, h), 1);
    // Proportional text: glyphs 3 to 10 px wide, 1 or 2 px apart, lines 16 px apart.
    let mut buf = solid(w, h, bg);
    let mut next = xorshift(11);
    for row in 0..20 {
        let mut x = 2;
        while x < w - 24 {
            let gw = 3 + (next() % 8) as u32;
            paint_ink(&mut buf, w, (x, row * 16 + 3, gw, 10), [fg, bg]);
            x += gw + 1 + (next() % 2) as u32;
            if next().is_multiple_of(6) {
                x += 5;
            }
        }
    }
    encoded_bytes(&mut enc, &mut fb, &whole(&buf, w, h), 2);
    // A new glyph typed on the empty line below, across two of the old grid's cell boundaries.
    paint_ink(&mut buf, w, (20, 21 * 16 + 3, 9, 10), [[150, 30, 150], bg]);
    let stores: Vec<Rect> = ops_of(&sent(&mut enc, &mut fb, &whole(&buf, w, h), 3000, 3))
        .into_iter()
        .filter_map(|op| match op {
            GlyphOp::Store { rect, .. } => Some(rect),
            _ => None,
        })
        .collect();
    assert_eq!(fb.pixels(), &buf[..]);
    assert_eq!(
        stores,
        [Rect {
            x: 20,
            y: 21 * 16 + 3,
            w: 9,
            h: 10
        }],
        "the typed glyph is stored whole"
    );
}

/// A xorshift generator seeded with `seed`: cheap, reproducible numbers for test content.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Pages of text-like content (bands of background, glyphs stamped from a small set in a
    /// few colours, underlines, blocks of another background), changed a piece at a time or
    /// scrolled: whatever the glyph pass finds, paints whole or leaves to the pixels, the viewer
    /// ends up with the frame exactly.
    #[test]
    fn text_like_pages_converge(
        seed in any::<u64>(),
        steps in prop::collection::vec((0u32..4, 0u32..200, 0u32..120, any::<u64>()), 1..8),
    ) {
        let (w, h) = (200u32, 120u32);
        let mut next = xorshift(seed);
        let bgs = [[255, 255, 255], [238, 240, 244], [30, 30, 30]];
        let inks = [[20, 20, 20], [200, 90, 10], [40, 140, 60]];
        // Stamps: small glyph-like shapes, ink or not per pixel.
        let stamps: Vec<(u32, u32, Vec<bool>)> = (0..12)
            .map(|_| {
                let (sw, sh) = (1 + next() as u32 % 9, 1 + next() as u32 % 14);
                (sw, sh, (0..sw * sh).map(|_| !next().is_multiple_of(3)).collect())
            })
            .collect();
        let page = |top: u32, rng: &mut dyn FnMut() -> u64| -> Vec<u8> {
            let mut buf = solid(w, h, bgs[0]);
            let mut y = 0;
            while y < h {
                let bh = (4 + rng() as u32 % 30).min(h - y);
                let bg = bgs[((rng() as u32 + top) % 3) as usize];
                for yy in y..y + bh {
                    for x in 0..w {
                        let o = ((yy * w + x) * 4) as usize;
                        buf[o..o + 3].copy_from_slice(&bg);
                    }
                }
                let mut x = rng() as u32 % 6;
                while x + 10 < w && bh > 2 {
                    let (sw, sh, ink) = &stamps[rng() as usize % stamps.len()];
                    let fg = inks[rng() as usize % inks.len()];
                    let dy = y + rng() as u32 % bh.saturating_sub(*sh).max(1);
                    for (i, on) in ink.iter().enumerate() {
                        let (px, py) = (x + i as u32 % sw, dy + i as u32 / sw);
                        if *on && py < h {
                            let o = ((py * w + px) * 4) as usize;
                            buf[o..o + 3].copy_from_slice(&Colours::blend(bg, fg, 90 + (i as u8 % 3) * 60));
                        }
                    }
                    if rng().is_multiple_of(5) && dy + sh + 1 < h {
                        for px in x..(x + 20).min(w) {
                            let o = (((dy + sh + 1) * w + px) * 4) as usize;
                            buf[o..o + 3].copy_from_slice(&fg);
                        }
                    }
                    x += sw + rng() as u32 % 3;
                }
                y += bh;
            }
            buf
        };
        let mut cur = page(0, &mut next);
        let mut enc = TileEncoder::new();
        let mut fb = Framebuffer::new();
        roundtrip(&mut enc, &mut fb, &packed(&cur, w, h), 0);
        for (i, (kind, x, y, s)) in steps.into_iter().enumerate() {
            let mut r = xorshift(s);
            match kind {
                // A new page.
                0 => cur = page(x, &mut r),
                // The page scrolled up by some rows, new rows below.
                1 => {
                    let dy = (1 + y % 40) as usize;
                    let fresh = page(x, &mut r);
                    let row = w as usize * 4;
                    cur.copy_within(dy * row.., 0);
                    let n = cur.len();
                    cur[n - dy * row..].copy_from_slice(&fresh[..dy * row]);
                }
                // A piece of another page pasted in.
                _ => {
                    let other = page(x + 1, &mut r);
                    let (pw, ph) = (1 + (s % 60) as u32, 1 + (s >> 8) as u32 % 40);
                    for yy in y..(y + ph).min(h) {
                        for xx in x..(x + pw).min(w) {
                            let o = ((yy * w + xx) * 4) as usize;
                            let p = [other[o], other[o + 1], other[o + 2]];
                            cur[o..o + 3].copy_from_slice(&p);
                        }
                    }
                }
            }
            roundtrip(&mut enc, &mut fb, &packed(&cur, w, h), i as u64 + 1);
            prop_assert_eq!(fb.pixels(), &cur[..], "step {}", i);
        }
    }
}

#[test]
fn a_glyph_reaching_into_a_lossy_tile_is_still_painted_in_a_region_painted_whole() {
    // Glyphs are looked for in a margin around what changed. One that reaches from the change
    // into a tile the viewer holds lossy cannot be stored, but the region it changed is painted
    // whole, so it must go as pixels.
    let (w, h) = (160u32, 96u32);
    let white = [255, 255, 255];
    let stamp = |buf: &mut [u8], x: u32, y: u32, k: u32| {
        for dx in 0..8u32 {
            for dy in 0..10u32 {
                if dy == 5 || (k * 7 + dx * 13 + dy * 29) % 11 < 5 {
                    let o = (((y + dy) * w + x + dx) * 4) as usize;
                    buf[o..o + 3].copy_from_slice(&[20, 20, 20]);
                }
            }
        }
    };
    let photo_at = |buf: &mut [u8], seed: u64| {
        let mut r = seed | 1;
        for y in 32..96u32 {
            for x in 0..60u32 {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                let o = ((y * w + x) * 4) as usize;
                buf[o..o + 3].copy_from_slice(&[r as u8, (r >> 8) as u8, (r >> 16) as u8]);
            }
        }
    };
    let mut buf = solid(w, h, white);
    // The glyphs the viewer will know, and the glyph beside the photograph.
    for (i, k) in [1, 2, 3].into_iter().enumerate() {
        stamp(&mut buf, 100 + 10 * i as u32, 70, k);
    }
    stamp(&mut buf, 60, 26, 0);
    photo_at(&mut buf, 1);
    let mut enc = TileEncoder::new();
    enc.set_quality(Quality::Auto);
    let mut fb = Framebuffer::new();
    let mut dec = FakeVideoDecoder::default();
    let mut frames = vec![buf.clone()];
    // The photograph moves: its tiles go lossy.
    for seed in 2..5 {
        photo_at(&mut buf, seed);
        frames.push(buf.clone());
    }
    // Then the glyph beside it changes on the right, and known glyphs follow it.
    stamp(&mut buf, 64, 26, 4);
    for (i, k) in [1, 2, 3].into_iter().enumerate() {
        stamp(&mut buf, 74 + 10 * i as u32, 26, k);
    }
    frames.push(buf.clone());
    let times = [0, 30, 60, 90, 100];
    let sent = play_at(&mut enc, &mut fb, &mut dec, &frames, &times, w, h);
    assert!(!sent[3].is_empty(), "the photograph went lossy");
    // Left of x = 60 the photograph is still lossy; the text is exact.
    let row =
        |px: &[u8], y: u32| px[((y * w + 60) * 4) as usize..((y + 1) * w * 4) as usize].to_vec();
    for y in 20..40 {
        assert!(
            row(fb.pixels(), y) == row(&buf, y),
            "row {y} of the changed text is exact"
        );
    }
}

/// Writes `upd` through `tx` onto the wire and reads it back through `rx`: the packed bytes on
/// the wire, and the part as the viewer gets it.
fn over_stream(
    tx: &mut StreamWriter,
    rx: &mut StreamReader,
    mut upd: FrameUpdate,
) -> (usize, Result<FrameUpdate, CodecError>) {
    tx.compact(&mut upd).expect("compact");
    let bytes = postcard::to_stdvec(&upd).expect("ser");
    let mut back: FrameUpdate = postcard::from_bytes(&bytes).expect("de");
    let r = rx.expand(&mut back).map(|()| back);
    (bytes.len(), r)
}

/// A text part: `n` rectangles of glyph-like palette pixels.
fn text_part(n: u32, seed: u32) -> FrameUpdate {
    let mut upd = empty_update(1920, 1080);
    upd.encoding = Encoding::Bgr24;
    for i in 0..n {
        let r = Rect {
            x: i * 9,
            y: seed % 1000,
            w: 9,
            h: 16,
        };
        upd.rects.push(r);
        upd.palettes.push(Colours {
            full: vec![[30, 30, 30], [200, 200, 200], [90, 90, 90], [150, 150, 150]],
            blends: Vec::new(),
        });
        // 2 bits a pixel, rows padded: 3 bytes a row.
        for row in 0..16u32 {
            let v = (i * 7 + row * 13 + seed) % 251;
            upd.data
                .extend_from_slice(&[v as u8, (v * 3) as u8, (v * 5) as u8]);
        }
    }
    upd.glyphs = encode_ops(&[GlyphOp::Draw {
        slot: 7,
        x: 100,
        y: seed % 1000,
    }]);
    upd
}

#[test]
fn what_a_stream_carried_before_costs_a_few_bytes_the_second_time() {
    let (mut tx, mut rx) = (StreamWriter::new(), StreamReader::new());
    let first = text_part(60, 1);
    let (cold, back) = over_stream(&mut tx, &mut rx, first.clone());
    let back = back.expect("expand");
    // The viewer gets the very part the encoder made.
    assert_eq!(
        (back.rects, back.palettes, back.data, back.glyphs),
        (first.rects, first.palettes, first.data, first.glyphs)
    );
    // The same glyphs again on another line: zstd refers back to them.
    let mut again = text_part(60, 1);
    again.rects.iter_mut().for_each(|r| r.y += 16);
    let (warm, back) = over_stream(&mut tx, &mut rx, again.clone());
    assert_eq!(back.expect("expand").data, again.data);
    assert!(
        warm * 4 < cold,
        "{warm} B the second time, {cold} B the first"
    );
    // The window of a stream bounds what the viewer keeps.
    assert_eq!(PACK_WINDOW, 1 << 20);
}

#[test]
fn a_keystroke_part_goes_as_it_is() {
    let (mut tx, mut rx) = (StreamWriter::new(), StreamReader::new());
    let mut upd = empty_update(1920, 1080);
    upd.glyphs = encode_ops(&[GlyphOp::Draw {
        slot: 3,
        x: 48,
        y: 782,
    }]);
    let mut sent = upd.clone();
    StreamWriter::new().compact(&mut sent).expect("compact");
    assert_ne!(sent.encoding, Encoding::Packed);
    let (_, back) = over_stream(&mut tx, &mut rx, upd.clone());
    assert_eq!(back.expect("expand").glyphs, upd.glyphs);
}

/// A packed part whose data is `data`, as a hostile host would send it.
fn packed_part(data: Vec<u8>) -> FrameUpdate {
    let mut upd = empty_update(64, 64);
    upd.encoding = Encoding::Packed;
    upd.data = data;
    let bytes = postcard::to_stdvec(&upd).expect("ser");
    postcard::from_bytes(&bytes).expect("de")
}

/// zstd of `raw` as one flushed block of a stream, with a window of `2^window_log` bytes.
fn flushed(raw: &[u8], window_log: u32) -> Vec<u8> {
    use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer, zstd_sys::ZSTD_EndDirective};
    let mut cx = CCtx::create();
    cx.set_parameter(CParameter::WindowLog(window_log))
        .expect("window");
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
    let mut input = InBuffer::around(raw);
    loop {
        let pos = out.len();
        let mut o = OutBuffer::around_pos(&mut out, pos);
        let left = cx
            .compress_stream2(&mut o, &mut input, ZSTD_EndDirective::ZSTD_e_flush)
            .expect("compress");
        if left == 0 && input.pos() == raw.len() {
            break;
        }
        out.reserve(1 << 16);
    }
    out
}

#[test]
fn hostile_packed_parts_are_refused() {
    let expand = |upd: FrameUpdate| StreamReader::new().expand(&mut upd.clone());
    // Not zstd.
    assert!(matches!(
        expand(packed_part(vec![1, 2, 3, 4, 5, 6, 7, 8])),
        Err(CodecError::Corrupt(_))
    ));
    // A window larger than the stream's: refused before anything is kept.
    let far = flushed(&postcard::to_stdvec(&text_part(2, 1)).expect("ser"), 27);
    assert!(matches!(
        expand(packed_part(far)),
        Err(CodecError::Corrupt(_))
    ));
    // 64 MiB of zeros from a few kB: refused once past MAX_PACKED.
    let bomb = flushed(&vec![0u8; 64 << 20], 20);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    assert!(matches!(
        expand(packed_part(bomb)),
        Err(CodecError::Corrupt(_))
    ));
    // Valid zstd of something that is not a part's contents, or with bytes after them.
    assert!(matches!(
        expand(packed_part(flushed(&[0xff; 40], 20))),
        Err(CodecError::Corrupt(_))
    ));
    let mut raw = postcard::to_stdvec(&(
        Vec::<Rect>::new(),
        Vec::<Colours>::new(),
        Vec::<bool>::new(),
        serde_bytes::ByteBuf::new(),
    ))
    .expect("ser");
    raw.push(9);
    assert!(matches!(
        expand(packed_part(flushed(&raw, 20))),
        Err(CodecError::Corrupt(_))
    ));
    // A packed part that skipped the stream is refused by the framebuffer.
    let mut fb = Framebuffer::new();
    assert!(matches!(
        fb.apply(&packed_part(flushed(&raw, 20))),
        Err(CodecError::Corrupt(_))
    ));
}

/// A part of glyph rectangles of coloured text on line `y`: rectangle `i` has the colours
/// `colours[i]` in that order, and `shapes[i]` indexes them.
fn coloured_part(shapes: &[Vec<u8>], colours: &[Vec<[u8; 3]>], y: u32) -> FrameUpdate {
    let mut upd = empty_update(1920, 1080);
    upd.encoding = Encoding::Bgr24;
    for (i, (shape, pal)) in shapes.iter().zip(colours).enumerate() {
        upd.rects.push(Rect {
            x: i as u32 * 10,
            y,
            w: 10,
            h: 16,
        });
        upd.palettes.push(Colours::full(pal.clone()));
        upd.data.extend(shape.iter().map(|&w| w % pal.len() as u8));
    }
    upd
}

/// What a viewer paints from `upd` unpacked, and from `upd` through the stream.
fn painted_both_ways(
    tx: &mut StreamWriter,
    rx: &mut StreamReader,
    direct: &mut Framebuffer,
    viewer: &mut Framebuffer,
    upd: FrameUpdate,
) -> usize {
    direct.apply(&upd).expect("direct");
    let (bytes, back) = over_stream(tx, rx, upd);
    viewer.apply(&back.expect("expand")).expect("apply");
    assert!(
        direct.pixels() == viewer.pixels(),
        "the stream changed pixels"
    );
    bytes
}

#[test]
fn coloured_text_in_many_shades_costs_its_shades_once() {
    let mut next = xorshift(7);
    let shades: Vec<[u8; 3]> = (0..40u8)
        .map(|k| [11 + k * 6, 99 + k * 3, 197 + k])
        .collect();
    let shapes: Vec<Vec<u8>> = (0..40)
        .map(|_| (0..160).map(|_| next() as u8).collect())
        .collect();
    // The same glyphs (shades by weight), each rectangle listing the 40 shades in its own
    // order, as an encoder does (by first appearance), and indexing them so.
    let mut shuffled = || {
        let mut order: Vec<usize> = (0..shades.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, next() as usize % (i + 1));
        }
        let mut index = vec![0u8; order.len()];
        for (at, &k) in order.iter().enumerate() {
            index[k] = at as u8;
        }
        let pal: Vec<[u8; 3]> = order.iter().map(|&k| shades[k]).collect();
        (pal, index)
    };
    let mut line = |y: u32| {
        let (colours, shaped): (Vec<_>, Vec<_>) = shapes
            .iter()
            .map(|shape| {
                let (pal, index) = shuffled();
                let shape: Vec<u8> = shape.iter().map(|&w| index[usize::from(w % 40)]).collect();
                (pal, shape)
            })
            .unzip();
        coloured_part(&shaped, &colours, y)
    };
    let (first, again) = (line(0), line(16));
    let (mut tx, mut rx) = (StreamWriter::new(), StreamReader::new());
    let (mut direct, mut viewer) = (Framebuffer::new(), Framebuffer::new());
    let cold = painted_both_ways(&mut tx, &mut rx, &mut direct, &mut viewer, first);
    // The same glyphs on the next line, each rectangle's shades in yet another order: in the
    // stream's table the shades, and so the glyphs, are the same bytes as before.
    let warm = painted_both_ways(&mut tx, &mut rx, &mut direct, &mut viewer, again);
    assert!(
        warm * 8 < cold,
        "{warm} B the second time, {cold} B the first"
    );
}

#[test]
fn colour_tables_stay_exact_when_they_fill_and_are_replaced() {
    // Palettes of 17 to 40 or 120 colours drawn from 40, 300 or 900: tables fill, slots are replaced, all 16
    // tables are used and the least recently used ones are emptied for new colours.
    let mut next = xorshift(11);
    let pool: Vec<[u8; 3]> = (0..900u32)
        .map(|k| [k as u8, (k >> 8) as u8 * 60, 255 - k as u8])
        .collect();
    let (mut tx, mut rx) = (StreamWriter::new(), StreamReader::new());
    let (mut direct, mut viewer) = (Framebuffer::new(), Framebuffer::new());
    for part in 0..120u32 {
        let base = next() as usize % pool.len();
        let spread = [40, 300, 900][part as usize % 3];
        let (shapes, colours): (Vec<Vec<u8>>, Vec<Vec<[u8; 3]>>) = (0..12)
            .map(|_| {
                let n = 17 + next() as usize % (spread.min(120) - 16);
                let mut pal: Vec<[u8; 3]> = Vec::new();
                while pal.len() < n {
                    let c = pool[(base + next() as usize % spread) % pool.len()];
                    if !pal.contains(&c) {
                        pal.push(c);
                    }
                }
                ((0..160).map(|_| next() as u8).collect(), pal)
            })
            .unzip();
        painted_both_ways(
            &mut tx,
            &mut rx,
            &mut direct,
            &mut viewer,
            coloured_part(&shapes, &colours, part * 8 % 1000),
        );
    }
}

#[test]
fn hostile_colour_tables_are_refused() {
    use super::stream::Palette;
    let shared = |table: u8, add: usize, shade: u8, set: Vec<(u8, [u8; 3])>| Palette::Shared {
        table,
        fresh: false,
        add: (0..add).map(|k| [k as u8, shade, 0]).collect(),
        set,
    };
    // A packed part of `rects` 4x4 rectangles and these palettes.
    let expand = |rects: usize, pal: Vec<Palette>| {
        let rect = Rect {
            x: 0,
            y: 0,
            w: 4,
            h: 4,
        };
        let raw = postcard::to_stdvec(&(
            vec![rect; rects],
            pal,
            Vec::<bool>::new(),
            serde_bytes::ByteBuf::from(vec![0u8; 16 * rects]),
        ))
        .expect("ser");
        matches!(
            StreamReader::new().expand(&mut packed_part(flushed(&raw, 20))),
            Err(CodecError::Corrupt(_))
        )
    };
    // A well-formed one is accepted, so that what follows fails for its own reason.
    assert!(!expand(1, vec![shared(0, 20, 0, vec![(3, [9, 9, 9])])]));
    // A table the stream does not have.
    assert!(expand(1, vec![shared(TABLES as u8, 20, 0, Vec::new())]));
    // A slot past the table's end.
    assert!(expand(1, vec![shared(0, 20, 0, vec![(20, [9, 9, 9])])]));
    // Too few colours for a byte an index, and more than a table holds, at once or in two.
    assert!(expand(1, vec![shared(0, 16, 0, Vec::new())]));
    assert!(expand(1, vec![shared(0, 257, 0, Vec::new())]));
    let two = vec![shared(0, 200, 0, Vec::new()), shared(0, 100, 1, Vec::new())];
    assert!(expand(2, two));
    // More palettes than rectangles: each would become a copy of its table.
    let many = (0..40).map(|_| shared(0, 20, 0, Vec::new())).collect();
    assert!(expand(1, many));
}

/// `parts` lists of operations through a stream as the host sends them: each comes back the
/// same; returns the bytes each list took on the wire.
fn ops_over_stream(parts: &[Vec<GlyphOp>]) -> Vec<usize> {
    let (mut tx, mut rx) = (StreamWriter::new(), StreamReader::new());
    let mut sizes = Vec::new();
    for (i, ops) in parts.iter().enumerate() {
        let mut upd = empty_update(1920, 1080);
        upd.seq = i as u64;
        upd.glyphs = encode_ops(ops);
        let (_, back) = over_stream(&mut tx, &mut rx, upd.clone());
        let back = back.expect("expand");
        assert_eq!(decode_ops(&back.glyphs).expect("ops"), *ops, "part {i}");
        let mut sent = upd;
        // The bytes of the operations alone, as the host's stream sends them.
        let mut again = StreamWriter::new();
        for ops in &parts[..i] {
            let mut u = empty_update(1920, 1080);
            u.glyphs = encode_ops(ops);
            again.compact(&mut u).expect("compact");
        }
        again.compact(&mut sent).expect("compact");
        sizes.push(sent.glyphs.len());
    }
    sizes
}

/// Pages of proportional text: words from a vocabulary, each letter a glyph stored once (8 to
/// 11 pixels wide, with its own top in the line) and drawn after; a gap of 1 or 2 pixels
/// between letters and of 5 between words.
fn text_ops(pages: usize) -> Vec<Vec<GlyphOp>> {
    let mut next = xorshift(7);
    let letters = 60u16;
    let width = |g: u16| 8 + u32::from(g % 4);
    let top = |g: u16| u32::from(g % 3) * 2;
    let words: Vec<Vec<u16>> = (0..300)
        .map(|_| {
            let n = 2 + next() % 7;
            (0..n)
                .map(|_| (next() % u64::from(letters)) as u16)
                .collect()
        })
        .collect();
    let mut stored = [false; 60];
    let mut out = Vec::new();
    for _ in 0..pages {
        let (mut ops, mut stores) = (Vec::new(), Vec::new());
        for line in 0..40u32 {
            let (mut x, y) = (40u32, 100 + line * 22);
            while x < 1200 {
                let word = &words[(next() % 300) as usize];
                for &g in word {
                    let (gx, gy) = (x, y + top(g));
                    if stored[usize::from(g)] {
                        ops.push(GlyphOp::Draw {
                            slot: g,
                            x: gx,
                            y: gy,
                        });
                    } else {
                        stored[usize::from(g)] = true;
                        let rect = Rect {
                            x: gx,
                            y: gy,
                            w: width(g),
                            h: 12,
                        };
                        stores.push(GlyphOp::Store { slot: g, rect });
                    }
                    x += width(g) + 1 + (u32::from(g) % 2);
                }
                x += 5;
            }
        }
        ops.append(&mut stores);
        out.push(ops);
    }
    out
}

#[test]
fn a_page_of_known_glyphs_costs_under_five_bits_a_glyph() {
    let pages = text_ops(6);
    let sizes = ops_over_stream(&pages);
    for (page, (ops, size)) in pages.iter().zip(&sizes).enumerate().skip(2) {
        let raw = encode_ops(ops).len();
        // Raw, a draw takes 3 or 4 bytes: a slot and two distances.
        assert!(
            *size * 8 < ops.len() * 5,
            "page {page}: {size} B for {} operations ({raw} B raw)",
            ops.len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Lists of any operations, with positions anywhere in 32 bits, through one stream: the
    /// viewer's model reads every list exactly as the host's wrote it, and stays in step.
    #[test]
    fn modelled_operations_roundtrip(parts in prop::collection::vec(prop::collection::vec((0u8..8, 0u16..4096, any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<[u8; 3]>()), 0..60), 1..5)) {
        let parts: Vec<Vec<GlyphOp>> = parts
            .into_iter()
            .map(|ops| {
                ops.into_iter()
                    .map(|(kind, slot, x, y, w, h, colour)| match kind {
                        0 => GlyphOp::Store { slot, rect: Rect { x, y, w: w % 65, h: h % 41 } },
                        1 => GlyphOp::Draw { slot, x: x % 5000, y: y % 3000 },
                        2 => GlyphOp::Fill { rect: Rect { x, y, w, h }, colour },
                        3 => GlyphOp::Keep { rect: Rect { x, y, w, h } },
                        4 => GlyphOp::Recall { back: w ^ h, rect: Rect { x, y, w, h } },
                        5 => GlyphOp::Save { rect: Rect { x, y, w, h } },
                        6 => GlyphOp::Restore { rect: Rect { x, y, w, h } },
                        _ => GlyphOp::Copy { src: Rect { x: y, y: x, w, h }, x: w, y: h },
                    })
                    .collect()
            })
            .collect();
        ops_over_stream(&parts);
    }

    /// Whatever follows the modelled list's first byte, the viewer's model reads operations or
    /// refuses them with a typed error, within its bounds.
    #[test]
    fn modelled_operations_from_a_hostile_host_never_panic(parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..4)) {
        let mut rx = StreamReader::new();
        for data in parts {
            let mut upd = empty_update(64, 64);
            upd.glyphs = std::iter::once(2).chain(data).collect();
            match rx.expand(&mut upd) {
                Ok(()) => prop_assert!(upd.glyphs.len() <= MAX_GLYPH_OPS_BYTES),
                Err(e) => {
                    prop_assert!(matches!(e, CodecError::Corrupt(_)));
                    break;
                }
            }
        }
    }
}

#[test]
fn modelled_operations_are_read_within_their_bounds() {
    use super::model::{DECISIONS, MODELLED};
    // Past its end the input reads as ones: an endless list of small draws, which the viewer
    // stops reading a few bytes past the end, long before its bound of decisions.
    for glyphs in [vec![MODELLED, 0xff, 0xff], vec![MODELLED]] {
        let mut rx = StreamReader::new();
        let mut upd = empty_update(64, 64);
        upd.glyphs = glyphs;
        let refused = rx.expand(&mut upd);
        assert!(
            matches!(&refused, Err(CodecError::Corrupt(why)) if why.contains("past the end")),
            "{refused:?}"
        );
    }
    // A list that would take more decisions than the viewer reads goes as it is, and the
    // models stay in step for the lists after it.
    let far = GlyphOp::Copy {
        src: Rect {
            x: u32::MAX - 9,
            y: u32::MAX - 9,
            w: u32::MAX,
            h: u32::MAX,
        },
        x: 3,
        y: 5,
    };
    let many = vec![far; (DECISIONS / 300) as usize];
    let mut tx = StreamWriter::new();
    let mut rx = StreamReader::new();
    let mut upd = empty_update(64, 64);
    upd.glyphs = encode_ops(&many);
    tx.compact(&mut upd).expect("compact");
    assert_ne!(upd.glyphs[0], MODELLED, "sent as it is");
    rx.expand(&mut upd).expect("expand");
    assert_eq!(decode_ops(&upd.glyphs).expect("ops"), many);
    let after = text_ops(1).remove(0);
    let (_, back) = over_stream(&mut tx, &mut rx, {
        let mut u = empty_update(64, 64);
        u.glyphs = encode_ops(&after);
        u
    });
    assert_eq!(
        decode_ops(&back.expect("expand").glyphs).expect("ops"),
        after
    );
}

#[test]
fn a_page_down_that_keeps_only_lines_like_others_in_view_is_still_a_scroll() {
    // Page Down keeps a few lines of the last page in view. Here they are the same line over and
    // over (a code block's closing braces), so no row of theirs is unique enough to vote for the
    // shift; the shift of the page before is tried again. Found, the move marks the picture it
    // brings into view as new content, not motion: it stays exact in Auto.
    let (w, h, step) = (320u32, 240u32, 216u32);
    let pitch = (w * 4) as usize;
    // A picture, five lines of braces, and more of the picture.
    let picture = photo(w, 592);
    let mut tall = picture[..376 * pitch].to_vec();
    for _ in 0..5 {
        tall.extend_from_slice(&text_page(w, 1, 77));
    }
    tall.extend_from_slice(&picture[376 * pitch..]);
    let view = |top: u32| tall[top as usize * pitch..(top + h) as usize * pitch].to_vec();
    let frames: Vec<Vec<u8>> = (0..3).map(|k| view(k * step)).collect();
    let mut enc = TileEncoder::new();
    enc.set_quality(Quality::Auto);
    let mut fb = Framebuffer::new();
    let mut copies = Vec::new();
    for (k, px) in frames.iter().enumerate() {
        let k = k as u64;
        let parts = sent(&mut enc, &mut fb, &whole(px, w, h), 1000 + k * 80, k);
        assert!(
            parts.iter().all(|p| p.lossy.is_empty()),
            "page {k} is exact at once"
        );
        let n = ops_of(&parts)
            .iter()
            .filter(|op| matches!(op, GlyphOp::Copy { .. }))
            .count();
        copies.push(n);
        assert_eq!(fb.pixels(), &px[..], "page {k}");
    }
    assert!(
        copies[1] > 0 && copies[2] > 0,
        "both pages are copies: {copies:?}"
    );
}

/// Three pages down a tall picture under a header, then three back up: the rows scrolled back
/// into view are recalled from the attic, exactly, for a few bytes each.
#[test]
fn pages_scrolled_back_into_view_are_recalled_not_sent_again() {
    let (w, h, header, step) = (512u32, 320u32, 32u32, 256u32);
    let pitch = (w * 4) as usize;
    let tall = photo(w, 4 * h);
    let bar = solid(w, header, [40, 60, 90]);
    let view = |top: u32| {
        let mut px = bar.clone();
        px.extend_from_slice(&tall[top as usize * pitch..(top + h - header) as usize * pitch]);
        px
    };
    let tops = [0, step, 2 * step, 3 * step, 2 * step, step, 0];
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    let mut bytes = Vec::new();
    for (k, top) in tops.iter().enumerate() {
        let px = view(*top);
        let f = whole(&px, w, h);
        let rects = enc.diff(&f, None, 1000 + k as u64 * 300).expect("diff");
        let parts = enc
            .encode(&f, &rects, k as u64, Timing::default(), &InOrder)
            .expect("encode");
        let mut n = 0;
        for part in &parts {
            n += postcard::to_stdvec(part).expect("ser").len();
            fb.apply(part).expect("apply");
        }
        assert_eq!(fb.pixels(), &px[..], "page {k} is exact");
        let ops = ops_of(&parts);
        let kept = ops.iter().any(|op| matches!(op, GlyphOp::Keep { .. }));
        let recalled = ops.iter().any(|op| matches!(op, GlyphOp::Recall { .. }));
        if (1..4).contains(&k) {
            assert!(
                kept && !recalled,
                "page down {k} keeps what it scrolls away"
            );
        }
        if k >= 4 {
            assert!(recalled, "page up {k} recalls what comes back");
        }
        bytes.push(n);
    }
    eprintln!("bytes a page: {bytes:?}");
    for k in 4..7 {
        assert!(
            bytes[k] * 50 < bytes[k - 3],
            "a page back up costs {} B, down {} B",
            bytes[k],
            bytes[k - 3]
        );
    }
}

/// Rows the viewer holds lossy are not kept: a recall of them would paint what the viewer
/// approximated as if it were exact.
#[test]
fn rows_the_viewer_holds_lossy_are_not_kept() {
    let (w, h, step) = (512u32, 320u32, 256u32);
    let pitch = (w * 4) as usize;
    let tall = photo(w, 3 * h);
    let view = |top: u32| tall[top as usize * pitch..(top + h) as usize * pitch].to_vec();
    let mut enc = TileEncoder::new();
    enc.set_quality(Quality::Smooth);
    let mut fb = Framebuffer::new();
    for (k, top) in [0, step, 0].into_iter().enumerate() {
        let px = view(top);
        let k = k as u64;
        let parts = sent(&mut enc, &mut fb, &whole(&px, w, h), 1000 + k * 40, k);
        let ops = ops_of(&parts);
        assert!(
            !ops.iter()
                .any(|op| matches!(op, GlyphOp::Keep { .. } | GlyphOp::Recall { .. })),
            "frame {k}: {ops:?}"
        );
    }
    // Refined once it settles, and exact.
    let last = view(0);
    while let Some(parts) = enc
        .refine(10_000, 9, Timing::default(), &InOrder)
        .expect("refine")
    {
        for part in &parts {
            fb.apply(part).expect("apply");
        }
    }
    assert_eq!(fb.pixels(), &last[..]);
}

/// A `w` x `h` framebuffer after its first frame (empty).
fn blank(w: u32, h: u32) -> Framebuffer {
    let mut fb = Framebuffer::new();
    fb.apply(&empty_update(w, h)).expect("empty frame");
    fb
}

/// An update of a `w` x `h` screen that carries `ops` alone.
fn ops_alone(w: u32, h: u32, ops: &[GlyphOp]) -> FrameUpdate {
    FrameUpdate {
        glyphs: encode_ops(ops),
        ..empty_update(w, h)
    }
}

#[test]
fn hostile_keeps_and_recalls_are_refused_before_anything_is_painted() {
    let (w, h) = (100u32, 50u32);
    let mut fb = blank(w, h);
    let with = |ops: &[GlyphOp]| ops_alone(w, h, ops);
    let rect = |x, y, w, h| Rect { x, y, w, h };
    let keep = GlyphOp::Keep {
        rect: rect(10, 0, 50, 20),
    };
    let recall = |back, r: Rect| GlyphOp::Recall { back, rect: r };
    let refused = |fb: &mut Framebuffer, ops: &[GlyphOp]| {
        let before = fb.pixels().to_vec();
        let r = fb.apply(&with(ops));
        assert!(
            matches!(r, Err(CodecError::Corrupt(_) | CodecError::OutOfBounds(_))),
            "{ops:?}: {r:?}"
        );
        assert_eq!(fb.pixels(), &before[..], "{ops:?} painted");
    };
    // Nothing kept yet.
    refused(&mut fb, &[recall(0, rect(10, 0, 50, 1))]);
    // A keep outside the screen.
    refused(
        &mut fb,
        &[GlyphOp::Keep {
            rect: rect(60, 0, 50, 1),
        }],
    );
    // More rows than were kept, and columns the rows do not hold.
    refused(&mut fb, &[keep, recall(20, rect(10, 0, 50, 21))]);
    refused(&mut fb, &[keep, recall(19, rect(0, 0, 50, 20))]);
    // A recall reaching below the newest row.
    refused(&mut fb, &[keep, recall(3, rect(10, 0, 50, 5))]);
    // A keep after a recall.
    refused(&mut fb, &[keep, recall(19, rect(10, 30, 50, 20)), keep]);
    // Kept and recalled in one list, and by the next: both fine. Rows recalled leave the attic.
    fb.apply(&with(&[keep, recall(9, rect(10, 30, 50, 10))]))
        .expect("a recall of rows kept before it");
    fb.apply(&with(&[recall(9, rect(20, 10, 40, 10))]))
        .expect("a recall of rows kept in an earlier part, fewer columns");
    refused(&mut fb, &[recall(0, rect(10, 0, 50, 1))]);
    // A new size empties the attic.
    let mut bigger = with(&[recall(0, rect(10, 0, 50, 1))]);
    bigger.size = Some(ScreenSize {
        width: 120,
        height: 50,
    });
    assert!(
        fb.apply(&bigger).is_err(),
        "the attic is emptied by a resize"
    );
}

#[test]
fn the_viewer_drops_the_oldest_rows_as_the_host_does() {
    // Rows of a screen 2048 pixels wide are 8 KiB: the attic holds 4,096 of them.
    let (w, h) = (2048u32, 64u32);
    let mut fb = blank(w, h);
    let rows = ATTIC_BYTES / (w as usize * 4);
    let keep = GlyphOp::Keep {
        rect: Rect { x: 0, y: 0, w, h },
    };
    let with = |ops: &[GlyphOp]| ops_alone(w, h, ops);
    let recall = |back| GlyphOp::Recall {
        back,
        rect: Rect {
            x: 0,
            y: 0,
            w,
            h: 1,
        },
    };
    for _ in 0..rows / h as usize {
        fb.apply(&with(&[keep])).expect("keep");
    }
    // One keep more in the same list drops the oldest 64 rows before the recall reads: refused,
    // and nothing of the list is applied.
    // (After the keep, the oldest row is 64 rows further back from the newest.)
    let oldest = rows as u32 - 1;
    assert!(fb.apply(&with(&[keep, recall(oldest + h)])).is_err());
    fb.apply(&with(&[recall(oldest)]))
        .expect("the oldest row is still held");
    // Recalled, it left; the next keep drops the 63 oldest rows left.
    assert!(fb.apply(&with(&[recall(oldest)])).is_err());
    fb.apply(&with(&[keep])).expect("keep");
    assert!(fb.apply(&with(&[recall(oldest + 1)])).is_err());
    fb.apply(&with(&[recall(oldest)]))
        .expect("the oldest row left");
}

/// Scrolls up and down a document taller than the attic holds, by steps and jumps: every frame
/// is exact, so the viewer's attic (kept, recalled, dropped, full) stays the encoder's.
#[test]
fn the_attic_stays_in_step_through_scrolls_both_ways_and_a_full_attic() {
    // Rows 4,096 pixels wide are 16 KiB: the attic holds 2,048 of them, under the document.
    let (w, h) = (4096u32, 200u32);
    let doc_h = 3600u32;
    let pitch = (w * 4) as usize;
    let tall = photo(w, doc_h);
    let view = |top: u32| tall[top as usize * pitch..(top + h) as usize * pitch].to_vec();
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut top = 0i64;
    let (mut keeps, mut recalls, mut kept_rows, mut recalled_rows) = (0, 0, 0, 0);
    for k in 0..80u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let step = match rng % 10 {
            // Down the document first, further than the attic holds.
            _ if k < 20 => 160,
            0 => -top,
            1 => i64::from(doc_h - h) - top,
            _ => (rng % 361) as i64 - 170,
        };
        top = (top + step).clamp(0, i64::from(doc_h - h));
        let px = view(top as u32);
        let parts = sent(&mut enc, &mut fb, &whole(&px, w, h), 1000 + k * 300, k);
        assert_eq!(fb.pixels(), &px[..], "frame {k} at row {top}");
        for op in ops_of(&parts) {
            match op {
                GlyphOp::Keep { rect } => {
                    keeps += 1;
                    kept_rows += rect.h;
                }
                GlyphOp::Recall { rect, .. } => {
                    recalls += 1;
                    recalled_rows += rect.h;
                }
                _ => {}
            }
        }
    }
    assert!(
        keeps > 20 && recalls > 20,
        "{keeps} keeps, {recalls} recalls"
    );
    // More rows kept on the way down than the attic holds: it was full.
    let held = (ATTIC_BYTES / pitch) as u32;
    assert!(20 * 160 > held + h, "{held} rows held");
    assert!(
        kept_rows > held,
        "{kept_rows} rows kept, {recalled_rows} recalled"
    );
}

#[test]
fn a_strip_recalled_alone_leaves_its_row_in_the_attic() {
    let (w, h) = (100u32, 50u32);
    let mut fb = blank(w, h);
    let with = |ops: &[GlyphOp]| ops_alone(w, h, ops);
    let rect = |x, y, w, h| Rect { x, y, w, h };
    let keep = GlyphOp::Keep {
        rect: rect(0, 0, 100, 20),
    };
    let recall = |back, r: Rect| GlyphOp::Recall { back, rect: r };
    fb.apply(&with(&[keep])).expect("keep");
    // Under half the rows' width: they stay, and are recalled whole next.
    fb.apply(&with(&[recall(19, rect(0, 0, 49, 20))]))
        .expect("a narrow recall");
    fb.apply(&with(&[recall(19, rect(0, 30, 100, 20))]))
        .expect("the rows stayed");
    assert!(fb.apply(&with(&[recall(0, rect(0, 0, 100, 1))])).is_err());
}

/// Writes `fuzz/regressions/screen_update/attic-stream`: a stream of pages scrolled down and back
/// up, packed and modelled as on the wire, whose keeps and recalls seed the fuzzer
/// (`cargo test -p tether-protocol -- --ignored write_the_attic_seed`).
#[test]
#[ignore]
fn write_the_attic_seed() {
    let (w, h, step) = (256u32, 96u32, 64u32);
    let pitch = (w * 4) as usize;
    let tall = photo(w, 400);
    let view = |top: u32| tall[top as usize * pitch..(top + h) as usize * pitch].to_vec();
    let frames: Vec<(Vec<u8>, u64)> = [0, step, 2 * step, step, 0]
        .into_iter()
        .enumerate()
        .map(|(k, top)| (view(top), k as u64 * 300))
        .collect();
    write_seed("attic-stream", &frames, w, h);
}

/// Writes `fuzz/regressions/screen_update/<name>`: `frames` (pictures and their times)
/// through one encoder and one stream, packed and modelled as on the wire.
fn write_seed(name: &str, frames: &[(Vec<u8>, u64)], w: u32, h: u32) {
    let mut enc = TileEncoder::new();
    let mut tx = StreamWriter::new();
    let mut out = Vec::new();
    for (k, (px, now)) in frames.iter().enumerate() {
        let f = whole(px, w, h);
        let rects = enc.diff(&f, None, *now).expect("diff");
        for mut part in enc
            .encode(&f, &rects, k as u64, Timing::default(), &InOrder)
            .expect("encode")
        {
            tx.compact(&mut part).expect("compact");
            out.extend(postcard::to_stdvec(&ScreenMsg::Update(part)).expect("ser"));
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions/screen_update")
        .join(name);
    std::fs::write(path, out).expect("write");
}

/// A window of text-like content (two colours in 3x3 cells, every row its own), `ww` x `wh`.
fn window_px(ww: u32, wh: u32, seed: u64) -> Vec<u8> {
    let mut next = xorshift(seed);
    let cells: Vec<bool> = (0..ww.div_ceil(3) * wh.div_ceil(3))
        .map(|_| next().is_multiple_of(3))
        .collect();
    let mut v = vec![0u8; (ww * wh * 4) as usize];
    for (i, px) in v.chunks_exact_mut(4).enumerate() {
        let (x, y) = (i as u32 % ww, i as u32 / ww);
        let ink = y < 12 || cells[((y / 3) * ww.div_ceil(3) + x / 3) as usize];
        px[..3].copy_from_slice(if ink { &[40, 30, 20] } else { &[240, 240, 235] });
    }
    v
}

/// `desktop` with `win` (`ww` pixels wide) drawn at (`x`, `y`), clipped to the screen.
fn with_window(desktop: &[u8], w: u32, win: &[u8], ww: u32, (x, y): (u32, u32)) -> Vec<u8> {
    let mut px = desktop.to_vec();
    let wh = win.len() as u32 / 4 / ww;
    let h = desktop.len() as u32 / 4 / w;
    for r in 0..wh.min(h.saturating_sub(y)) {
        let n = ww.min(w.saturating_sub(x)) as usize * 4;
        let to = ((y + r) * w + x) as usize * 4;
        let from = (r * ww) as usize * 4;
        px[to..to + n].copy_from_slice(&win[from..from + n]);
    }
    px
}

/// A window opens over a still photograph and is dragged across it 60 times a second, in Auto:
/// what it uncovers is restored from what it covered, every frame exact, for some 50 bytes a
/// step where the photograph's strips cost 5 to 9 kB.
#[test]
fn a_window_dragged_over_a_photograph_uncovers_it_by_restores() {
    let (ww, wh) = (240u32, 160u32);
    // A window of text, and a terminal whose lines are short (blank on the right) above a
    // status bar: the middle of what changes in a row is blank, and the ends of its lines
    // alone are found in too many places to tell the move.
    let mut terminal = window_px(ww, wh, 7);
    let pitch = ww as usize * 4;
    for (y, row) in terminal.chunks_exact_mut(pitch).enumerate() {
        let bar = y >= wh as usize - 12;
        for px in row.chunks_exact_mut(4).skip(if bar { 0 } else { 100 }) {
            px[..3].copy_from_slice(if bar { &[40, 30, 20] } else { &[240, 240, 235] });
        }
    }
    // And a terminal just opened: a few short lines at its top, the rest blank, so that most
    // rows changed only where the window uncovers the photograph and covers it anew.
    let mut opened = terminal.clone();
    for px in opened[40 * pitch..].chunks_exact_mut(4) {
        px[..3].copy_from_slice(&[240, 240, 235]);
    }
    for win in [window_px(ww, wh, 7), terminal, opened] {
        drag_over_a_photograph(&win, ww);
    }
}

/// Drags `win` (`ww` pixels wide) over a photograph, 10 px right and 4 down a step, until it
/// hangs off the bottom and right edges: every step exact, restoring what it uncovers, and
/// cheap.
fn drag_over_a_photograph(win: &[u8], ww: u32) {
    let (w, h) = (640u32, 400u32);
    let desk = photo(w, h);
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    sent(&mut enc, &mut fb, &whole(&desk, w, h), 0, 0);
    // The window opens once the desktop has been still: what it covers is saved.
    let px = with_window(&desk, w, win, ww, (20, 20));
    let parts = sent(&mut enc, &mut fb, &whole(&px, w, h), 2000, 1);
    assert_eq!(fb.pixels(), &px[..]);
    assert!(
        ops_of(&parts)
            .iter()
            .any(|op| matches!(op, GlyphOp::Save { .. })),
        "what the window covers is saved"
    );
    let mut steps = Vec::new();
    // Until it hangs off the bottom and right edges.
    for k in 1..=55u32 {
        let at = (20 + 10 * k, 20 + 4 * k);
        let px = with_window(&desk, w, win, ww, at);
        let parts = sent(
            &mut enc,
            &mut fb,
            &whole(&px, w, h),
            2000 + 16 * u64::from(k),
            1 + u64::from(k),
        );
        assert_eq!(fb.pixels(), &px[..], "step {k} is exact");
        let ops = ops_of(&parts);
        let bytes: usize = parts
            .iter()
            .map(|p| postcard::to_stdvec(p).expect("ser").len())
            .sum();
        assert!(
            ops.iter().any(|op| matches!(op, GlyphOp::Restore { .. })),
            "step {k} restores what it uncovers: {ops:?}"
        );
        steps.push(bytes);
    }
    // Once the window hangs off the right edge, the corner it uncovers at the top was never
    // seen since it reached the edge: 10 x 4 pixels a step.
    assert!(
        steps.iter().all(|b| *b < 300),
        "a step costs its copies, saves and restores: {steps:?}"
    );
}

/// A menu opens over a still photograph and closes: what it hid comes back as one restore.
#[test]
fn a_menu_that_closes_is_restored_from_what_it_covered() {
    let (w, h) = (512u32, 320u32);
    let desk = photo(w, h);
    let menu = window_px(180, 200, 3);
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    sent(&mut enc, &mut fb, &whole(&desk, w, h), 0, 0);
    let open = with_window(&desk, w, &menu, 180, (100, 50));
    sent(&mut enc, &mut fb, &whole(&open, w, h), 1000, 1);
    assert_eq!(fb.pixels(), &open[..]);
    let parts = sent(&mut enc, &mut fb, &whole(&desk, w, h), 1300, 2);
    assert_eq!(fb.pixels(), &desk[..], "the photograph is back, exactly");
    assert!(parts.iter().all(|p| p.rects.is_empty()), "no pixels sent");
    let bytes: usize = parts
        .iter()
        .map(|p| postcard::to_stdvec(p).expect("ser").len())
        .sum();
    assert!(bytes < 100, "{bytes} B");
    // A keystroke-sized change saves nothing: too small to be a window.
    let mut typed = desk.clone();
    typed[(10 * w * 4 + 40) as usize..(10 * w * 4 + 60) as usize].fill(0);
    let parts = sent(&mut enc, &mut fb, &whole(&typed, w, h), 5000, 3);
    assert!(
        !ops_of(&parts)
            .iter()
            .any(|op| matches!(op, GlyphOp::Save { .. })),
        "a small change saves nothing"
    );
}

/// A menu over text is drawn in two frames, its background first (alike to the text's where
/// the text is blank) and its items next: closing it still restores all of what it hid.
#[test]
fn a_menu_drawn_in_two_frames_over_text_is_restored_whole() {
    let (w, h, mw, mh) = (512u32, 320u32, 150u32, 180u32);
    let desk = window_px(w, h, 4);
    let blank = solid(mw, mh, [240, 240, 235]);
    let items = window_px(mw, mh, 8);
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    sent(&mut enc, &mut fb, &whole(&desk, w, h), 0, 0);
    let background = with_window(&desk, w, &blank, mw, (100, 50));
    sent(&mut enc, &mut fb, &whole(&background, w, h), 1000, 1);
    let open = with_window(&desk, w, &items, mw, (100, 50));
    sent(&mut enc, &mut fb, &whole(&open, w, h), 1016, 2);
    assert_eq!(fb.pixels(), &open[..]);
    closes_without_pixels(&mut enc, &mut fb, &desk, w, 1300);
}

/// Sends `desk` (`w` pixels wide) again at `now_ms`, as when a menu over it closes: the
/// viewer's picture is `desk` exactly, and no pixels were sent.
fn closes_without_pixels(
    enc: &mut TileEncoder,
    fb: &mut Framebuffer,
    desk: &[u8],
    w: u32,
    now_ms: u64,
) {
    let h = desk.len() as u32 / 4 / w;
    let parts = sent(enc, fb, &whole(desk, w, h), now_ms, 3);
    assert!(fb.pixels() == desk, "what the menu hid is back, exactly");
    let pixels: Vec<&Rect> = parts.iter().flat_map(|p| &p.rects).collect();
    assert!(pixels.is_empty(), "sent as pixels: {pixels:?}");
}

/// A menu whose first frame shows, in its lower part, what lay above it (the X server moves the
/// menu's window into place with what it held): that part passes for a move down. What the move
/// covered, photograph and text, is still saved, and closing the menu restores all it hid.
#[test]
fn a_menu_that_opens_with_a_copy_of_the_desktop_in_it_is_restored_whole() {
    let (w, h, wy) = (512u32, 320u32, 200u32);
    let (mx, my, mw, mh, dy) = (160u32, 40u32, 192u32, 260u32, 150u32);
    let desk = with_window(&photo(w, h), w, &window_px(w, h - wy, 4), w, (0, wy));
    // The menu's first frame: its top blank, its lower part the desktop from `dy` rows above.
    let mut first = desk.clone();
    let pitch = (w * 4) as usize;
    for y in my..my + mh {
        let (o, n) = ((y * w + mx) as usize * 4, mw as usize * 4);
        if y >= my + dy {
            let from = o - dy as usize * pitch;
            first[o..o + n].copy_from_slice(&desk[from..from + n]);
        } else {
            for px in first[o..o + n].chunks_exact_mut(4) {
                px[..3].copy_from_slice(&[200, 200, 200]);
            }
        }
    }
    let menu = with_window(&desk, w, &window_px(mw, mh, 8), mw, (mx, my));
    let mut enc = TileEncoder::new();
    let mut fb = Framebuffer::new();
    sent(&mut enc, &mut fb, &whole(&desk, w, h), 0, 0);
    let parts = sent(&mut enc, &mut fb, &whole(&first, w, h), 1000, 1);
    assert!(
        ops_of(&parts)
            .iter()
            .any(|op| matches!(op, GlyphOp::Copy { .. })),
        "the menu's first frame passes for a move"
    );
    sent(&mut enc, &mut fb, &whole(&menu, w, h), 1010, 2);
    assert_eq!(fb.pixels(), &menu[..]);
    closes_without_pixels(&mut enc, &mut fb, &desk, w, 1200);
}

#[test]
fn hostile_saves_and_restores_are_refused_before_anything_is_painted() {
    let (w, h) = (100u32, 50u32);
    let mut fb = blank(w, h);
    let with = |ops: &[GlyphOp]| ops_alone(w, h, ops);
    let rect = |x, y, w, h| Rect { x, y, w, h };
    let fill = GlyphOp::Fill {
        rect: rect(0, 0, 100, 50),
        colour: [9, 8, 7],
    };
    for op in [
        GlyphOp::Save {
            rect: rect(60, 0, 50, 1),
        },
        GlyphOp::Restore {
            rect: rect(0, 40, 10, 11),
        },
        GlyphOp::Restore {
            rect: rect(0, 0, 0, 1),
        },
    ] {
        let before = fb.pixels().to_vec();
        let r = fb.apply(&with(&[fill, op]));
        assert!(
            matches!(r, Err(CodecError::OutOfBounds(_))),
            "{op:?}: {r:?}"
        );
        assert_eq!(fb.pixels(), &before[..], "{op:?} painted");
    }
    // A restore of what was never saved paints black; of what was, what was saved.
    let restore = GlyphOp::Restore {
        rect: rect(0, 0, 10, 10),
    };
    fb.apply(&with(&[fill, restore])).expect("restore");
    assert_eq!(&fb.pixels()[..4], &[0, 0, 0, 0]);
    let save = GlyphOp::Save {
        rect: rect(0, 0, 10, 10),
    };
    fb.apply(&with(&[fill, save])).expect("save");
    let grey = GlyphOp::Fill {
        rect: rect(0, 0, 100, 50),
        colour: [1, 1, 1],
    };
    fb.apply(&with(&[grey, restore])).expect("restore");
    assert_eq!(&fb.pixels()[..4], &[9, 8, 7, 0]);
    assert_eq!(&fb.pixels()[40..44], &[1, 1, 1, 0]);
    // A new size forgets what was saved.
    let mut bigger = with(&[grey, restore]);
    bigger.size = Some(ScreenSize {
        width: 120,
        height: 50,
    });
    fb.apply(&bigger).expect("restore after a resize");
    assert_eq!(&fb.pixels()[..4], &[0, 0, 0, 0]);
}

/// Windows opened, dragged, jumped and closed at random over a photograph whose parts change
/// now and then (so that what was saved goes stale): in Sharp every frame is exact; in Auto and
/// Smooth, where what moves may go lossy and is then never saved, the picture is exact once
/// refined.
#[test]
fn what_lies_under_windows_stays_in_step_through_random_drags_and_closes() {
    let (w, h, ww, wh) = (320u32, 240u32, 120u32, 90u32);
    for (q, seed) in [
        (Quality::Sharp, 5),
        (Quality::Sharp, 6),
        (Quality::Sharp, 7),
        (Quality::Auto, 5),
        (Quality::Smooth, 5),
    ] {
        let mut desk = photo(w, h);
        let win = window_px(ww, wh, 11);
        let mut enc = TileEncoder::new();
        enc.set_quality(q);
        let mut fb = Framebuffer::new();
        let mut next = xorshift(seed);
        let (mut at, mut open) = ((10i64, 10i64), false);
        let (mut now, mut restores) = (0u64, 0);
        let mut px = desk.clone();
        for k in 0..150u64 {
            match next() % 6 {
                0 => open = !open,
                1 => at = ((next() % 250) as i64, (next() % 180) as i64),
                2 => {
                    // A part of the desktop changes (a clock, a notification).
                    let (x, y) = ((next() % 280) as u32, (next() % 200) as u32);
                    for r in y..y + 40 {
                        let o = ((r * w + x) * 4) as usize;
                        for p in desk[o..o + 160].chunks_exact_mut(4) {
                            p[1] = p[1].wrapping_add(37);
                        }
                    }
                }
                _ => {
                    at.0 = (at.0 + (next() % 21) as i64 - 10).clamp(0, 250);
                    at.1 = (at.1 + (next() % 9) as i64 - 4).clamp(0, 180);
                }
            }
            px = if open {
                with_window(&desk, w, &win, ww, (at.0 as u32, at.1 as u32))
            } else {
                desk.clone()
            };
            now += [16, 16, 40, 600][(next() % 4) as usize];
            let parts = sent(&mut enc, &mut fb, &whole(&px, w, h), now, k);
            restores += ops_of(&parts)
                .iter()
                .filter(|op| matches!(op, GlyphOp::Restore { .. }))
                .count();
            if q == Quality::Sharp {
                let bad = fb.pixels().iter().zip(&px).position(|(a, b)| a != b);
                assert!(
                    bad.is_none(),
                    "frame {k}: pixel {:?} differs",
                    bad.map(|b| (b / 4 % w as usize, b / 4 / w as usize))
                );
            }
        }
        while let Some(parts) = enc
            .refine(now + 10_000, 99, Timing::default(), &InOrder)
            .expect("refine")
        {
            for part in &parts {
                fb.apply(part).expect("apply");
            }
        }
        assert!(fb.pixels() == &px[..], "{q:?}: exact once refined");
        if q == Quality::Sharp {
            assert!(restores > 10, "{restores} restores");
        }
    }
}

/// Writes `fuzz/regressions/screen_update/under-stream`: a window opened over a photograph,
/// dragged, and closed, packed and modelled as on the wire, whose saves and restores seed the
/// fuzzer (`cargo test -p tether-protocol -- --ignored write_the_under_seed`).
#[test]
#[ignore]
fn write_the_under_seed() {
    let (w, h, ww, wh) = (256u32, 160u32, 96u32, 72u32);
    let desk = photo(w, h);
    let win = window_px(ww, wh, 9);
    let mut frames = vec![(desk.clone(), 0u64)];
    for k in 0..6u32 {
        let at = (10 + 12 * k, 10 + 5 * k);
        frames.push((
            with_window(&desk, w, &win, ww, at),
            1000 + 16 * u64::from(k),
        ));
    }
    frames.push((desk.clone(), 1200));
    write_seed("under-stream", &frames, w, h);
}
