//! The scalar reference kernels: the written specification every SIMD kernel
//! must reproduce bit for bit.
//!
//! # The fixed reduction order
//! Floating-point addition is not associative, so "the same result on every
//! backend" needs one order, fixed here:
//! - float dots (`vec_dot_f32_f32`, `vec_dot_f16_f32`): element `i` goes to lane
//!   `i % 16`; each lane does `acc = acc + (w * x)` (a rounded multiply, then a
//!   rounded add; never a fused multiply-add);
//! - quantized dots: the integer sum of block `j` is exact; it becomes one f32
//!   term (formula per kernel below) added to lane `j % 8`;
//! - lanes are then folded by halves: `acc[i] += acc[i + h]` for `h = 8, 4, 2, 1`
//!   (float) or `h = 4, 2, 1` (quantized), and `acc[0]` is the result.
//!
//! Weight rows are raw file bytes (any alignment); lengths are checked by the
//! caller ([`super::matmul`]), and a mismatch here only shortens the loop.
//!
//! The batched forms (`gemm_*`: several weight rows x several activation rows)
//! are defined element by element as the single-row dots, so a SIMD batched
//! kernel must give each output element exactly the bits of the dot above; this
//! is what keeps chunked prefill bit-identical to token-by-token decode.

use crate::quant::{f16_to_f32, f32_to_f16, BlockQ8_0, BlockQ8_1, QK};

/// Fold `N` lanes by halves into one value (the fixed order above).
#[inline(always)]
pub fn fold_lanes<const N: usize>(mut acc: [f32; N]) -> f32 {
    let mut h = N / 2;
    while h > 0 {
        // acc[i] += acc[i + h] for i < h (h <= N / 2, so `hi` has at least h lanes)
        let (lo, hi) = acc.split_at_mut(h);
        for (a, &b) in lo.iter_mut().zip(hi.iter()) {
            *a += b;
        }
        h /= 2;
    }
    acc.first().copied().unwrap_or(0.0)
}

/// Dot product of an F32 weight row (little-endian bytes) with f32 activations.
pub fn vec_dot_f32_f32(w: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    // element i goes to lane i % 16: walk 16 elements at a time, lane by lane
    for (wg, xg) in w.as_chunks::<4>().0.chunks(16).zip(x.chunks(16)) {
        for ((a, c), &xv) in acc.iter_mut().zip(wg).zip(xg) {
            *a += f32::from_le_bytes(*c) * xv;
        }
    }
    fold_lanes(acc)
}

/// Dot product of an F16 weight row with f32 activations (f16 widened exactly).
pub fn vec_dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    for (wg, xg) in w.as_chunks::<2>().0.chunks(16).zip(x.chunks(16)) {
        for ((a, c), &xv) in acc.iter_mut().zip(wg).zip(xg) {
            *a += f16_to_f32(u16::from_le_bytes(*c)) * xv;
        }
    }
    fold_lanes(acc)
}

/// Q8_0 weights x Q8_0 activations. Block term: `(sumi as f32) * (dw * dx)`.
pub fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let mut acc = [0.0f32; 8];
    // block j goes to lane j % 8: walk 8 blocks at a time, lane by lane
    for (wg, xg) in w.as_chunks::<34>().0.chunks(8).zip(x.chunks(8)) {
        for ((lane, b), xb) in acc.iter_mut().zip(wg).zip(xg) {
            let [d0, d1, qs @ ..] = b;
            let mut sumi = 0i32;
            for (&q, &a) in qs.iter().zip(&xb.qs) {
                sumi += (q as i8 as i32) * (a as i32);
            }
            let d = f16_to_f32(u16::from_le_bytes([*d0, *d1])) * f16_to_f32(xb.d);
            *lane += sumi as f32 * d;
        }
    }
    fold_lanes(acc)
}

/// Q4_0 weights x Q8_0 activations. Block term: `(sumi as f32) * (dw * dx)`,
/// with `sumi = sum((q - 8) * a)`.
pub fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (wg, xg) in w.as_chunks::<18>().0.chunks(8).zip(x.chunks(8)) {
        for ((lane, b), xb) in acc.iter_mut().zip(wg).zip(xg) {
            let [d0, d1, qs @ ..] = b;
            let (xlo, xhi) = halves(&xb.qs);
            let mut sumi = 0i32;
            for ((&q, &a0), &a1) in qs.iter().zip(xlo).zip(xhi) {
                let lo = (q & 0x0f) as i32 - 8;
                let hi = (q >> 4) as i32 - 8;
                sumi += lo * a0 as i32 + hi * a1 as i32;
            }
            let d = f16_to_f32(u16::from_le_bytes([*d0, *d1])) * f16_to_f32(xb.d);
            *lane += sumi as f32 * d;
        }
    }
    fold_lanes(acc)
}

/// Q4_1 weights x Q8_1 activations. Block term:
/// `(sumi as f32) * (dw * dx) + mw * sx`, with `sumi = sum(q * a)` (q unsigned).
pub fn vec_dot_q4_1_q8_1(w: &[u8], x: &[BlockQ8_1]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (wg, xg) in w.as_chunks::<20>().0.chunks(8).zip(x.chunks(8)) {
        for ((lane, b), xb) in acc.iter_mut().zip(wg).zip(xg) {
            let [d0, d1, m0, m1, qs @ ..] = b;
            let (xlo, xhi) = halves(&xb.qs);
            let mut sumi = 0i32;
            for ((&q, &a0), &a1) in qs.iter().zip(xlo).zip(xhi) {
                sumi += (q & 0x0f) as i32 * a0 as i32 + (q >> 4) as i32 * a1 as i32;
            }
            let d = f16_to_f32(u16::from_le_bytes([*d0, *d1])) * f16_to_f32(xb.d);
            let m = f16_to_f32(u16::from_le_bytes([*m0, *m1])) * f16_to_f32(xb.s);
            *lane += sumi as f32 * d + m;
        }
    }
    fold_lanes(acc)
}

/// The two 16-value halves of a 32-value activation block (a nibble's low
/// half pairs with the first, its high half with the second).
#[inline(always)]
fn halves(qs: &[i8; QK]) -> (&[i8; QK / 2], &[i8; QK / 2]) {
    match qs.as_chunks::<{ QK / 2 }>().0 {
        [lo, hi] => (lo, hi),
        _ => (&[0; QK / 2], &[0; QK / 2]), // QK = 2 * (QK / 2): never
    }
}

/// Round half to even, as SIMD round instructions do by default.
#[inline(always)]
fn round_even(v: f32) -> f32 {
    libm::rintf(v)
}

/// Quantize one block of 32 activations: returns `(d, qs)` with `d = amax / 127`
/// and `q = round_half_even(x * (1 / d))` (0 when the block is all zeros).
#[inline(always)]
fn quantize_block(x: &[f32]) -> (f32, [i8; QK]) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = round_even(v * id) as i8;
    }
    (d, qs)
}

/// Quantize activations to Q8_0 blocks (`x.len() == 32 * y.len()`).
pub fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    for (xb, yb) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let (d, qs) = quantize_block(xb);
        yb.d = f32_to_f16(d);
        yb.qs = qs;
    }
}

/// Quantize activations to Q8_1 blocks: Q8_0 plus `s = d * sum(qs)` (f32 product, stored f16).
pub fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    for (xb, yb) in x.chunks_exact(QK).zip(y.iter_mut()) {
        let (d, qs) = quantize_block(xb);
        let sum: i32 = qs.iter().map(|&q| q as i32).sum();
        yb.d = f32_to_f16(d);
        yb.s = f32_to_f16(d * sum as f32);
        yb.qs = qs;
    }
}

/// The batched form of a quantized dot: `out[r * n + t] = dot(w row r, x row t)`
/// for `rows` weight rows and `n` activation rows of the same block count. Each
/// element is exactly the single-row dot, so batching never changes a result.
/// Does nothing unless the shapes agree (`w` exactly `rows` rows, `x` exactly
/// `n` rows, `out` at least `rows * n` values).
#[inline(always)]
pub(crate) fn gemm_with<B>(
    w: &[u8],
    rows: usize,
    x: &[B],
    n: usize,
    out: &mut [f32],
    block_bytes: usize,
    dot: fn(&[u8], &[B]) -> f32,
) {
    if rows == 0 || n == 0 || !x.len().is_multiple_of(n) {
        return;
    }
    let nb = x.len() / n;
    let rb = nb * block_bytes;
    if w.len() != rows * rb || out.len() < rows * n {
        return;
    }
    if rb == 0 {
        // zero blocks: every dot is the empty sum (and chunks_exact(0) would panic)
        out.iter_mut().take(rows * n).for_each(|o| *o = 0.0);
        return;
    }
    for (wr, o) in w.chunks_exact(rb).zip(out.chunks_exact_mut(n)) {
        for (xr, ov) in x.chunks_exact(nb).zip(o.iter_mut()) {
            *ov = dot(wr, xr);
        }
    }
}

/// Batched [`vec_dot_q8_0_q8_0`] (see `gemm_with` for the layout).
pub fn gemm_q8_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    gemm_with(w, rows, x, n, out, 34, vec_dot_q8_0_q8_0)
}

/// Batched [`vec_dot_q4_0_q8_0`].
pub fn gemm_q4_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    gemm_with(w, rows, x, n, out, 18, vec_dot_q4_0_q8_0)
}

/// Batched [`vec_dot_q4_1_q8_1`].
pub fn gemm_q4_1_q8_1(w: &[u8], rows: usize, x: &[BlockQ8_1], n: usize, out: &mut [f32]) {
    gemm_with(w, rows, x, n, out, 20, vec_dot_q4_1_q8_1)
}
