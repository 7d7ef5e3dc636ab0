//! The screen codec's tests: exactness, bounds, hostile updates.

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
    let rects = enc.diff(f, None, seq * 1000).expect("diff");
    if rects.is_empty() {
        return rects;
    }
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
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &a,
        };
        let rects = enc.diff(&f, None, 0).expect("diff");
        let parts = enc
            .encode(&f, &rects, 1, Timing::default(), &InOrder)
            .expect("encode");
        let used_palette = parts
            .iter()
            .any(|p| p.palettes.iter().any(|q| !q.is_empty()));
        assert_eq!(used_palette, colours <= 256, "{colours} colours");
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
        let f = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &cur,
        };
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
            let f = FrameRef {
                width: w,
                height: h,
                stride: w as usize * 4,
                data: &cur,
            };
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
