//! The `video` scenario: full-screen motion as a video or a 3D view makes it, measured as a
//! video codec is (pictures a second, bit rate, PSNR against what was on screen).

use std::time::{Duration, Instant};

use tether_protocol::screen::Quality;
use x11rb::protocol::xproto::ConnectionExt as _;

use crate::measure::{Bench, Result_};
use crate::scenarios::photo;
use crate::{H, SETTLE, W};

/// Pictures rendered ahead, played forwards then backwards.
const PICTURES: usize = 60;
/// Pictures shown, 30 a second.
const STEPS: usize = 150;
/// Auto sends the first change of a still screen exactly, and starts a video once the screen
/// is seen moving: the bit rate and PSNR are those of the steady video, from this long after
/// the motion starts.
const WARM_UP: Duration = Duration::from_secs(1);

/// What a camera sees of `src` (a 1920x1080 photo) at time `t` in 0..=1: it pans along an
/// ellipse, zooms from 1.15x to 1.4x and turns up to 4.6 degrees either way, sampled
/// bilinearly, as a filmed scene or a turning 3D view moves (no two pictures are shifts of
/// each other).
fn camera(src: &[u8], t: f32) -> Vec<u8> {
    let (w, h) = (usize::from(W), usize::from(H));
    let turn = std::f32::consts::TAU * t;
    let (cx, cy) = (960.0 + 100.0 * turn.sin(), 540.0 + 60.0 * turn.cos());
    let scale = 1.0 / (1.15 + 0.25 * t);
    let angle = 0.08 * (std::f32::consts::PI * t).sin();
    let (sin, cos) = (angle.sin() * scale, angle.cos() * scale);
    let at = |x: usize, y: usize, c: usize| f32::from(src[(y * w + x) * 4 + c]);
    let mut out = vec![0u8; w * h * 4];
    for (y, row) in out.chunks_exact_mut(w * 4).enumerate() {
        let dy = y as f32 - 540.0;
        for (x, px) in row.chunks_exact_mut(4).enumerate() {
            let dx = x as f32 - 960.0;
            let u = (cx + cos * dx - sin * dy).clamp(0.0, (w - 2) as f32);
            let v = (cy + sin * dx + cos * dy).clamp(0.0, (h - 2) as f32);
            let (x0, y0) = (u as usize, v as usize);
            let (fx, fy) = (u - x0 as f32, v - y0 as f32);
            for (c, out) in px[..3].iter_mut().enumerate() {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
                let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
                *out = (top * (1.0 - fy) + bottom * fy + 0.5) as u8;
            }
        }
    }
    out
}

/// PSNR of the colour channels of two BGRX pictures of the same size.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: u64 = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .map(|(p, q)| {
            (0..3)
                .map(|c| {
                    let d = i64::from(p[c]) - i64::from(q[c]);
                    (d * d) as u64
                })
                .sum::<u64>()
        })
        .sum();
    let mse = se as f64 / (a.len() / 4 * 3) as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-6)).log10()
}

/// Plays the camera's pictures full screen at 30 a second for 5 s in Auto.
pub(crate) async fn video(b: &Bench) -> anyhow::Result<Result_> {
    let src = photo(3);
    let pictures: Vec<Vec<u8>> = (0..PICTURES)
        .map(|i| camera(&src, i as f32 / (PICTURES - 1) as f32))
        .collect();
    let pixmaps = pictures
        .iter()
        .map(|p| b.pixmap(p))
        .collect::<anyhow::Result<Vec<u32>>>()?;
    b.control.set_quality(Quality::Auto).await?;
    b.synced(Duration::from_secs(10)).await?;
    let mark = b.lock().records.len();
    b.lock().keep = true;
    let step = Duration::from_secs_f64(1.0 / 30.0);
    let start = Instant::now();
    let mut shown: Vec<(Instant, usize)> = Vec::with_capacity(STEPS);
    for i in 0..STEPS {
        tokio::time::sleep_until((start + step * i as u32).into()).await;
        // Forwards, then backwards, and so on: the motion never jumps.
        let k = if (i / (PICTURES - 1)).is_multiple_of(2) {
            i % (PICTURES - 1)
        } else {
            PICTURES - 1 - i % (PICTURES - 1)
        };
        b.show(pixmaps[k])?;
        shown.push((Instant::now(), k));
    }
    let end = Instant::now();
    let kept = {
        let mut r = b.lock();
        r.keep = false;
        std::mem::take(&mut r.kept)
    };
    b.synced(SETTLE).await?;
    let exact_ms = end.elapsed().as_secs_f64() * 1e3;
    for pm in pixmaps {
        b.conn.free_pixmap(pm)?;
    }
    let from = start + WARM_UP;
    let secs = end.duration_since(from).as_secs_f64();
    let (frames, bytes) = {
        let r = b.lock();
        let steady = r.records[mark..]
            .iter()
            .filter(|f| f.at >= from && f.at <= end);
        steady.fold((0usize, 0usize), |(n, sum), f| (n + 1, sum + f.bytes))
    };
    // Each picture the agent had is compared with the one on screen when it was captured: the
    // best match among the last few shown before it arrived.
    let mut scores: Vec<f64> = kept
        .iter()
        .filter(|(at, _)| *at >= from && *at <= end)
        .filter_map(|(at, pixels)| {
            let before = shown.iter().filter(|(t, _)| t <= at).count();
            shown[before.saturating_sub(4)..before]
                .iter()
                .map(|(_, k)| psnr(pixels, &pictures[*k]))
                .reduce(f64::max)
        })
        .collect();
    scores.sort_by(f64::total_cmp);
    Ok(Result_ {
        scenario: "video".into(),
        fps: Some(frames as f64 / secs),
        bytes_per_event: Some(bytes as f64 / frames.max(1) as f64),
        mbit_s: Some(bytes as f64 * 8.0 / secs / 1e6),
        psnr_db: scores.get(scores.len() / 2).copied(),
        exact_ms: Some(exact_ms),
        ..Default::default()
    })
}
