//! The predicted lossless coding of photo-like rectangles: each channel is predicted from its
//! left, upper and upper-left neighbours by the median edge detector of LOCO-I (JPEG-LS), and
//! the green residual is subtracted from the blue and red ones (colour channels of a photo move
//! together). What zstd then compresses is mostly small numbers around zero: a photo costs about
//! two thirds of its unpredicted size or less, and decoding stays one pass.
//!
//! Neighbours outside the rectangle are never read (the viewer may hold something else there):
//! the first row predicts from the left, the first column from above, the first pixel is 0.
//!
//! Screen content with many colours (a gradient toolbar, anti-aliased coloured text in one big
//! rectangle) compresses better unpredicted, where zstd finds its repeats: [`worth_predicting`]
//! tells them apart by how often a pixel repeats its left neighbour.

/// The median edge detector: `a + b - c` clamped to the range of `a` (left) and `b` (up).
#[inline(always)]
/// In saturating byte arithmetic, which compiles to vector instructions without branches: with
/// `lo` and `hi` the smaller and larger of `a` and `b`, `min(hi, lo + (hi - c))` is `lo` when
/// `c >= hi`, `hi` when `c <= lo`, and `a + b - c` between.
fn med(a: u8, b: u8, c: u8) -> u8 {
    let (lo, hi) = (a.min(b), a.max(b));
    hi.min(lo.saturating_add(hi.saturating_sub(c)))
}

/// Residuals of one pixel `p` (BGR) against the prediction `q`, green subtracted from blue and red.
#[inline(always)]
fn residual(p: &[u8], q: [u8; 3]) -> [u8; 3] {
    let g = p[1].wrapping_sub(q[1]);
    [
        p[0].wrapping_sub(q[0]).wrapping_sub(g),
        g,
        p[2].wrapping_sub(q[2]).wrapping_sub(g),
    ]
}

/// The pixel whose residuals are `r`, predicted `q`.
#[inline(always)]
fn restore(r: &[u8], q: [u8; 3]) -> [u8; 4] {
    let g = q[1].wrapping_add(r[1]);
    [
        q[0].wrapping_add(r[0]).wrapping_add(r[1]),
        g,
        q[2].wrapping_add(r[2]).wrapping_add(r[1]),
        0,
    ]
}

#[inline(always)]
fn bgr(p: &[u8]) -> [u8; 3] {
    [p[0], p[1], p[2]]
}

#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn predict(a: &[u8], b: &[u8], c: &[u8]) -> [u8; 3] {
    [
        med(a[0], b[0], c[0]),
        med(a[1], b[1], c[1]),
        med(a[2], b[2], c[2]),
    ]
}

/// Appends the residuals (3 bytes a pixel) of a rectangle given as its rows of BGRX pixels.
pub(super) fn residuals<'a>(rows: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let mut up: Option<&[u8]> = None;
    let mut pred = Vec::new();
    for row in rows {
        let w = row.len() / 4;
        let row = &row[..w * 4];
        let start = out.len();
        out.resize(start + w * 3, 0);
        let dst = &mut out[start..];
        match up {
            None => {
                let mut left = [0u8; 3];
                for (p, d) in row.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
                    d.copy_from_slice(&residual(p, left));
                    left = bgr(p);
                }
            }
            Some(up) if w > 0 => {
                let up = &up[..w * 4];
                // The prediction of every byte at once (no byte depends on another's result, so
                // this loop runs on vectors), then the residuals.
                pred.clear();
                pred.extend_from_slice(&up[..4]);
                pred.extend(
                    row.iter()
                        .zip(&up[4..])
                        .zip(up)
                        .map(|((&a, &b), &c)| med(a, b, c)),
                );
                for ((p, q), d) in row
                    .chunks_exact(4)
                    .zip(pred.chunks_exact(4))
                    .zip(dst.chunks_exact_mut(3))
                {
                    d.copy_from_slice(&residual(p, bgr(q)));
                }
            }
            Some(_) => {}
        }
        up = Some(row);
    }
}

/// Paints the rows of a rectangle (BGRX, in order) from their residuals, `row.len() / 4 * 3`
/// bytes each. `res` must hold exactly that many.
pub(super) fn restore_rows<'a>(rows: impl Iterator<Item = &'a mut [u8]>, res: &[u8]) {
    let mut up: Option<&mut [u8]> = None;
    let mut at = 0;
    for row in rows {
        let n = row.len() / 4 * 3;
        let Some(src) = res.get(at..at + n) else {
            return;
        };
        at += n;
        match up.as_deref() {
            None => {
                let mut left = [0u8; 3];
                for (d, r) in row.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                    let p = restore(r, left);
                    d.copy_from_slice(&p);
                    left = bgr(&p);
                }
            }
            Some(up) => restore_row(row, up, src),
        }
        up = Some(row);
    }
}

/// Restores one row below the first from its residuals `src`, given the row above `up`.
fn restore_row(row: &mut [u8], up: &[u8], src: &[u8]) {
    let w = row.len() / 4;
    if w == 0 || up.len() < w * 4 || src.len() < w * 3 {
        return;
    }
    let (row, up, src) = (&mut row[..w * 4], &up[..w * 4], &src[..w * 3]);
    let p = restore(&src[..3], bgr(up));
    row[..4].copy_from_slice(&p);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86_64 baseline; every such CPU has it.
    unsafe {
        restore_rest(row, up, src)
    };
    #[cfg(not(target_arch = "x86_64"))]
    restore_rest_scalar(row, up, src);
}

/// [`restore_row`] from the second pixel on, one pixel as four byte lanes of a vector register:
/// the left neighbour is a chain through the whole row, and the median is five lane operations
/// in saturating arithmetic. With `lo` and `hi` the smaller and larger of left and up,
/// `min(hi, lo + (hi - c))` (saturating) is `lo` when `c >= hi`, `hi` when `c <= lo`, and
/// `left + up - c` between: the median edge detector.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn restore_rest(row: &mut [u8], up: &[u8], src: &[u8]) {
    use std::arch::x86_64::*;
    let word = |b: &[u8]| _mm_cvtsi32_si128(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut a = word(&row[..4]);
    for ((dst, u), r) in row
        .chunks_exact_mut(4)
        .skip(1)
        .zip(up.windows(8).step_by(4))
        .zip(src.chunks_exact(3).skip(1))
    {
        let (c, b) = (word(&u[..4]), word(&u[4..]));
        let g = r[1];
        let d = word(&[r[0].wrapping_add(g), g, r[2].wrapping_add(g), 0]);
        let (lo, hi) = (_mm_min_epu8(a, b), _mm_max_epu8(a, b));
        let q = _mm_min_epu8(hi, _mm_adds_epu8(lo, _mm_subs_epu8(hi, c)));
        a = _mm_add_epi8(q, d);
        // The padding lane carries whatever the row above had there; the pixel gets 0.
        dst.copy_from_slice(&(_mm_cvtsi128_si32(a) & 0x00ff_ffff).to_le_bytes());
    }
}

/// [`restore_row`] from the second pixel on, channel by channel.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn restore_rest_scalar(row: &mut [u8], up: &[u8], src: &[u8]) {
    let mut a = bgr(row);
    for (x, r) in src.chunks_exact(3).enumerate().skip(1) {
        let o = x * 4;
        let p = restore(r, predict(&a, &up[o..o + 3], &up[o - 4..o - 1]));
        row[o..o + 4].copy_from_slice(&p);
        a = bgr(&p);
    }
}

/// Whether a rectangle (its rows of BGRX pixels) looks like a photo rather than screen content:
/// fewer than one pixel in four repeats its left neighbour, on every fourth row.
pub(super) fn worth_predicting<'a>(rows: impl Iterator<Item = &'a [u8]>) -> bool {
    let (mut same, mut total) = (0usize, 0usize);
    for row in rows.step_by(4) {
        let px = row.chunks_exact(4);
        total += px.len();
        same += row
            .chunks_exact(4)
            .zip(row.chunks_exact(4).skip(1))
            .filter(|(a, b)| a[..3] == b[..3])
            .count();
    }
    same * 4 < total
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_saturating_median_is_the_median_edge_detector() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in (0..=255u8).step_by(3) {
                    let (ai, bi, ci) = (i32::from(a), i32::from(b), i32::from(c));
                    let want = (ai + bi - ci).clamp(ai.min(bi), ai.max(bi)) as u8;
                    assert_eq!(med(a, b, c), want, "{a} {b} {c}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn residuals_restore_exactly(w in 1usize..40, h in 1usize..12, seed in any::<u64>(), smooth in any::<bool>()) {
            let mut x = seed | 1;
            let mut pixels = vec![0u8; w * h * 4];
            for (i, p) in pixels.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *p = if i % 4 == 3 { 0 } else if smooth { (i / 4 % 200) as u8 + (x % 8) as u8 } else { x as u8 };
            }
            let mut res = Vec::new();
            residuals(pixels.chunks_exact(w * 4), &mut res);
            prop_assert_eq!(res.len(), w * h * 3);
            // Rows of the rectangle inside a wider buffer, whose other pixels must stay untouched.
            let pitch = (w + 3) * 4;
            let mut buf = vec![0xa5u8; pitch * h];
            restore_rows(buf.chunks_exact_mut(pitch).map(|r| &mut r[4..4 + w * 4]), &res);
            for (y, row) in buf.chunks_exact(pitch).enumerate() {
                prop_assert_eq!(&row[4..4 + w * 4], &pixels[y * w * 4..(y + 1) * w * 4]);
                prop_assert!(row[..4].iter().chain(&row[4 + w * 4..]).all(|b| *b == 0xa5));
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_restore_matches_the_scalar_one() {
        let w = 97;
        let up: Vec<u8> = (0..w * 4).map(|i| (i * 37 % 256) as u8).collect();
        let src: Vec<u8> = (0..w * 3).map(|i| (i * 91 % 256) as u8).collect();
        let (mut a, mut b) = (vec![0u8; w * 4], vec![0u8; w * 4]);
        a[..4].copy_from_slice(&[1, 2, 3, 0]);
        b[..4].copy_from_slice(&[1, 2, 3, 0]);
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { restore_rest(&mut a, &up, &src) };
        restore_rest_scalar(&mut b, &up, &src);
        assert_eq!(a, b);
    }

    #[test]
    fn screen_content_is_not_predicted_and_noise_is() {
        let flat = vec![7u8; 64 * 16 * 4];
        assert!(!worth_predicting(flat.chunks_exact(64 * 4)));
        let noise: Vec<u8> = (0..64 * 16 * 4u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect();
        assert!(worth_predicting(noise.chunks_exact(64 * 4)));
    }
}
