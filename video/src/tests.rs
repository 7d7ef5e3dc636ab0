use super::*;

/// A `w` x `h` BGRX picture: smooth colour gradients with a little grain, shifted by `shift`
/// pixels (a camera pan).
fn picture(w: u32, h: u32, shift: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 4) as usize);
    let mut x = 0x9e37_79b9u32;
    for py in 0..h {
        for px in 0..w {
            let (sx, sy) = ((px + shift) as f32, (py + shift / 2) as f32);
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let grain = (x % 5) as f32 - 2.0;
            let b = 128.0 + 90.0 * (sx / 37.0).sin() * (sy / 53.0).cos() + grain;
            let g = 128.0 + 80.0 * ((sx + sy) / 71.0).sin() + grain;
            let r = 128.0 + 70.0 * (sy / 29.0).cos() + grain;
            out.extend([b, g, r].map(|c| c.clamp(0.0, 255.0) as u8));
            out.push(0);
        }
    }
    out
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let (mut se, mut n) = (0f64, 0usize);
    for (p, q) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for k in 0..3 {
            let d = f64::from(p[k]) - f64::from(q[k]);
            se += d * d;
            n += 1;
        }
    }
    10.0 * (255.0 * 255.0 / (se / n as f64).max(1e-9)).log10()
}

#[test]
fn colour_conversion_round_trips_closely() {
    let (w, h) = (64, 32);
    let px = picture(w, h, 0);
    let mut planes = Planes::default();
    bgrx_to_i420(&px, w as usize * 4, w, h, &mut planes);
    let mut back = vec![0xffu8; px.len()];
    let (wu, hu) = (w as usize, h as usize);
    i420_to_bgrx(
        (&planes.y, wu),
        (&planes.u, wu / 2),
        (&planes.v, wu / 2),
        w,
        h,
        &mut back,
        wu * 4,
    );
    assert_eq!(planes.y.len(), wu * hu);
    assert!(psnr(&px, &back) > 35.0, "{}", psnr(&px, &back));
    // Greys survive exactly.
    let grey: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i % 256) as u8; 3].into_iter().chain([0]))
        .collect();
    bgrx_to_i420(&grey, wu * 4, w, h, &mut planes);
    assert!(
        planes
            .y
            .iter()
            .enumerate()
            .all(|(i, y)| *y == (i % 256) as u8)
    );
}

#[test]
fn a_panning_picture_decodes_close_to_what_was_captured() {
    let (sw, sh) = (320u32, 240u32);
    let rect = Rect {
        x: 32,
        y: 16,
        w: 256,
        h: 192,
    };
    let mut enc = H264Encoder::new();
    let mut dec = H264Decoder::new().expect("decoder");
    let mut fb = vec![0u8; (sw * sh * 4) as usize];
    let mut sizes = Vec::new();
    for i in 0..10 {
        let screen = picture(sw, sh, i * 3);
        let frame = FrameRef {
            width: sw,
            height: sh,
            stride: sw as usize * 4,
            data: &screen,
        };
        let data = enc.encode(&frame, &rect, i == 0).expect("encode");
        sizes.push(data.len());
        let at = (rect.y * sw * 4 + rect.x * 4) as usize;
        dec.decode(&data, rect.w, rect.h, &mut fb[at..], sw as usize * 4)
            .expect("decode");
        // Compare the region only; outside it nothing was written.
        let crop = |px: &[u8]| -> Vec<u8> {
            (rect.y..rect.y + rect.h)
                .flat_map(|y| {
                    let o = ((y * sw + rect.x) * 4) as usize;
                    px[o..o + rect.w as usize * 4].to_vec()
                })
                .collect()
        };
        let q = psnr(&crop(&screen), &crop(&fb));
        assert!(q > 30.0, "picture {i}: {q:.1} dB");
    }
    assert!(
        fb[..(rect.y * sw * 4) as usize].iter().all(|b| *b == 0),
        "nothing above the region"
    );
    // Later pictures code their difference: far smaller than the key picture.
    assert!(sizes[5] * 3 < sizes[0], "{sizes:?}");
}

#[test]
fn a_key_picture_on_demand_decodes_on_a_new_decoder() {
    let (w, h) = (128u32, 96u32);
    let rect = Rect { x: 0, y: 0, w, h };
    let mut enc = H264Encoder::new();
    let mut last = Vec::new();
    for i in 0..4 {
        let px = picture(w, h, i);
        let frame = FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: &px,
        };
        last = enc.encode(&frame, &rect, i == 3).expect("encode");
    }
    // A viewer that joins now decodes from the key picture alone.
    let mut dec = H264Decoder::new().expect("decoder");
    let mut fb = vec![0u8; (w * h * 4) as usize];
    dec.decode(&last, w, h, &mut fb, w as usize * 4)
        .expect("decode");
    assert!(psnr(&picture(w, h, 3), &fb) > 30.0);
}

#[test]
fn garbage_and_wrong_sizes_are_errors_not_pictures() {
    let (w, h) = (64u32, 64u32);
    let mut dec = H264Decoder::new().expect("decoder");
    let mut fb = vec![7u8; (w * h * 4) as usize];
    let garbage: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
    assert!(dec.decode(&garbage, w, h, &mut fb, w as usize * 4).is_err());
    assert!(fb.iter().all(|b| *b == 7), "nothing written");
    // A real picture of another size than its rectangle.
    let mut enc = H264Encoder::new();
    let px = picture(w, h, 0);
    let frame = FrameRef {
        width: w,
        height: h,
        stride: w as usize * 4,
        data: &px,
    };
    let data = enc
        .encode(
            &frame,
            &Rect {
                x: 0,
                y: 0,
                w: 32,
                h: 32,
            },
            true,
        )
        .expect("encode");
    assert!(dec.decode(&data, 64, 64, &mut fb, w as usize * 4).is_err());
    assert!(fb.iter().all(|b| *b == 7), "nothing written");
    // A buffer too small for the rectangle.
    assert!(
        dec.decode(&data, 32, 32, &mut fb[..100], w as usize * 4)
            .is_err()
    );
    // A rectangle outside the frame, or of odd size, is refused by the encoder.
    assert!(
        enc.encode(
            &frame,
            &Rect {
                x: 40,
                y: 0,
                w: 32,
                h: 32
            },
            false
        )
        .is_err()
    );
    assert!(
        enc.encode(
            &frame,
            &Rect {
                x: 0,
                y: 0,
                w: 31,
                h: 32
            },
            false
        )
        .is_err()
    );
}

#[test]
fn the_encoder_says_when_a_picture_was_a_scene_cut() {
    let (w, h) = (320, 240);
    let rect = Rect { x: 0, y: 0, w, h };
    fn frame(px: &[u8], w: u32, h: u32) -> FrameRef<'_> {
        FrameRef {
            width: w,
            height: h,
            stride: w as usize * 4,
            data: px,
        }
    }
    let mut enc = H264Encoder::new();
    let first = picture(w, h, 0);
    enc.encode(&frame(&first, w, h), &rect, true).expect("key");
    assert!(!enc.scene_cut(), "a key picture asked for is no cut");
    // A pan: the next picture follows from the last one.
    enc.encode(&frame(&picture(w, h, 2), w, h), &rect, false)
        .expect("pan");
    assert!(!enc.scene_cut(), "a pan is no cut");
    // An unrelated picture: vertical stripes of other colours.
    let other: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let v = if (i % w) / 8 % 2 == 0 { 250 } else { 5 };
            [v, 255 - v, (i / w) as u8, 0]
        })
        .collect();
    enc.encode(&frame(&other, w, h), &rect, false).expect("cut");
    assert!(enc.scene_cut(), "an unrelated picture is a cut");
}
