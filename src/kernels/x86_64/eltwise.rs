//! AVX2 forms of the element-wise steps of [`crate::ops`] that call
//! [`crate::ops::exp`]: GELU, softmax's exponentials and SwiGLU.
//!
//! Each value gets exactly the operations of the portable source, in its order
//! (separate multiplies and adds, no FMA, the same constants), so the bits are
//! the same; only the scheduling differs. The portable loop compiles to one
//! vector's chain of ~35 dependent operations (~80 cycles of latency) per
//! iteration; the out-of-order window of a Zen 3 holds little more than two
//! iterations, so the loop ran at ~34 cycles per 8 values, far from its
//! throughput (GELU 4.3 cycles per value). Here 4 vectors (32 values) go through
//! each step of `exp` together, and an empty `asm!` that takes the 4 vectors in
//! registers after each step keeps LLVM from re-serialising the 4 chains:
//! 3.1 cycles per value for GELU, 2.3 for `exp`, bit-identical. The last
//! `len % 32` values take the portable code.

use core::arch::x86_64::*;

/// 4 vectors that go through each step together.
type V4 = [__m256; 4];

/// Ties the 4 vectors to this point of the instruction stream: LLVM must have
/// finished the step that produced all 4 before any later step uses one, so the
/// 4 independent chains stay interleaved. No instruction is emitted.
///
/// # Safety
/// AVX2 present.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tie(v: &mut V4) {
    let [a, b, c, d] = v;
    // SAFETY: an empty template (only a comment naming the operands): no
    // instruction, no memory, no flags; the values come back unchanged.
    unsafe {
        core::arch::asm!(
            "/* {0} {1} {2} {3} */",
            inout(ymm_reg) * a,
            inout(ymm_reg) * b,
            inout(ymm_reg) * c,
            inout(ymm_reg) * d,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn splat(c: f32) -> __m256 {
    _mm256_set1_ps(c)
}

#[inline(always)]
fn map1(a: &V4, f: impl Fn(__m256) -> __m256) -> V4 {
    let [a0, a1, a2, a3] = *a;
    [f(a0), f(a1), f(a2), f(a3)]
}

#[inline(always)]
fn map2(a: &V4, b: &V4, f: impl Fn(__m256, __m256) -> __m256) -> V4 {
    let ([a0, a1, a2, a3], [b0, b1, b2, b3]) = (*a, *b);
    [f(a0, b0), f(a1, b1), f(a2, b2), f(a3, b3)]
}

/// [`crate::ops::exp`] of 32 values: the same operations in the same order
/// (`clamp`, the Cody-Waite reduction, the Horner polynomial, the two-step
/// `2^n` scaling, NaN passed through), one step for all 4 vectors at a time.
///
/// # Safety
/// AVX2 present.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn exp4(x: &V4) -> V4 {
    use crate::ops::exp_consts::*;
    // SAFETY: register-only AVX/AVX2 operations; AVX2 by the caller.
    unsafe {
        let mul = |a, b| _mm256_mul_ps(a, b);
        let add = |a, b| _mm256_add_ps(a, b);
        let sub = |a, b| _mm256_sub_ps(a, b);
        // x.clamp(EXP_MIN, EXP_MAX): `maxps(c, x)` and `minps(c, x)` return x when it
        // is NaN, as `clamp` does; otherwise the clamped value (and -0.0 stays).
        let xc = map1(x, |v| {
            _mm256_min_ps(splat(EXP_MAX), _mm256_max_ps(splat(EXP_MIN), v))
        });
        let mut t = map1(&xc, |v| add(mul(v, splat(LOG2E)), splat(SHIFT)));
        tie(&mut t);
        let nf = map1(&t, |v| sub(v, splat(SHIFT)));
        let mut r = map2(&xc, &nf, |x, n| {
            sub(sub(x, mul(n, splat(LN2_HI))), mul(n, splat(LN2_LO)))
        });
        tie(&mut r);
        let [p0, p1, p2, p3, p4, p5] = P;
        let mut q = map1(&r, |r| add(mul(splat(p5), r), splat(p4)));
        tie(&mut q);
        for p in [p3, p2, p1, p0] {
            q = map2(&q, &r, |q, r| add(mul(q, r), splat(p)));
            tie(&mut q);
        }
        let mut p = map2(&q, &r, |q, r| add(add(mul(q, mul(r, r)), r), splat(1.0)));
        tie(&mut p);
        let shift = _mm256_set1_epi32(SHIFT.to_bits() as i32);
        let bias = _mm256_set1_epi32(127);
        let mut y = map2(&p, &t, |p, t| {
            let n = _mm256_sub_epi32(_mm256_castps_si256(t), shift);
            let n1 = _mm256_srai_epi32::<1>(n);
            let n2 = _mm256_sub_epi32(n, n1);
            let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
            let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
            mul(mul(p, s1), s2)
        });
        tie(&mut y);
        map2(&y, x, |y, x| {
            _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
        })
    }
}

/// Applies `f` to `x` 32 values at a time (loaded as 4 vectors, stored back),
/// then `tail` to each of the last `x.len() % 32` values.
///
/// # Safety
/// AVX2 present.
#[inline(always)]
unsafe fn each32(x: &mut [f32], f: impl Fn(&V4) -> V4, tail: impl Fn(f32) -> f32) {
    let (chunks, rest) = x.as_chunks_mut::<32>();
    for c in chunks {
        let p = c.as_mut_ptr();
        // SAFETY: `c` is 32 f32 values: 4 unaligned 8-value loads and stores at
        // offsets 0, 8, 16, 24 stay inside it; AVX2 by the caller.
        unsafe {
            let v = [0, 8, 16, 24].map(|i| _mm256_loadu_ps(p.add(i)));
            let o = f(&v);
            for (i, oi) in [0, 8, 16, 24].into_iter().zip(o) {
                _mm256_storeu_ps(p.add(i), oi);
            }
        }
    }
    for v in rest {
        *v = tail(*v);
    }
}

/// [`crate::ops::gelu`]: `u / (1 + e^(-2 z))`, `z = sqrt(2 / pi) (u + 0.044715 u^3)`.
///
/// # Safety
/// AVX2 present.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn gelu(x: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    // SAFETY: AVX2 by the caller.
    unsafe {
        each32(
            x,
            |u| {
                let m = map1(u, |u| {
                    let u3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(splat(0.044_715), u), u), u);
                    let z = _mm256_mul_ps(splat(SQRT_2_OVER_PI), _mm256_add_ps(u, u3));
                    _mm256_mul_ps(splat(-2.0), z)
                });
                let e = exp4(&m);
                map2(u, &e, |u, e| _mm256_div_ps(u, _mm256_add_ps(splat(1.0), e)))
            },
            |u| {
                let mut one = [u];
                crate::ops::gelu(&mut one);
                let [v] = one;
                v
            },
        );
    }
}

/// [`crate::ops::softmax`]: the sum as there (the same lane sums), the
/// exponentials 32 at a time, and the max in 8 lanes instead of one sequential
/// `f32::max` chain. `f32::max` skips NaN, so any order finds the same largest
/// value, or NaN when every value is; only the sign of a zero maximum may
/// differ, and `v - 0.0 == v - (-0.0)` for every `v` but -0.0, whose two
/// differences (+-0.0) have the same `exp`. So every output is the same.
///
/// # Safety
/// AVX2 present.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn softmax(x: &mut [f32]) {
    let (chunks, rest) = x.as_chunks::<8>();
    let mut lanes = [f32::NEG_INFINITY; 8];
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    // SAFETY: AVX2 by the caller.
    unsafe {
        each32(
            x,
            |v| exp4(&map1(v, |v| _mm256_sub_ps(v, splat(max)))),
            |v| crate::ops::exp(v - max),
        );
    }
    let inv = 1.0 / crate::ops::sum_lanes(x, |v| v);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// [`crate::ops::swiglu`]: `gate = gate / (1 + e^-gate) * up`.
///
/// # Safety
/// AVX2 present.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn swiglu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let (gate, up) = (gate.split_at_mut(n).0, up.split_at(n).0);
    let (gc, gr) = gate.as_chunks_mut::<32>();
    let (uc, ur) = up.as_chunks::<32>();
    for (g, u) in gc.iter_mut().zip(uc) {
        let (pg, pu) = (g.as_mut_ptr(), u.as_ptr());
        // SAFETY: `g` and `u` are 32 f32 values each: 4 unaligned 8-value loads
        // (and stores to `g`) at offsets 0, 8, 16, 24 stay inside; AVX2 by the caller.
        unsafe {
            let gv = [0, 8, 16, 24].map(|i| _mm256_loadu_ps(pg.add(i)));
            let uv = [0, 8, 16, 24].map(|i| _mm256_loadu_ps(pu.add(i)));
            let neg = map1(&gv, |g| _mm256_xor_ps(g, splat(-0.0)));
            let e = exp4(&neg);
            let s = map2(&gv, &e, |g, e| {
                _mm256_div_ps(g, _mm256_add_ps(splat(1.0), e))
            });
            for (i, o) in [0, 8, 16, 24]
                .into_iter()
                .zip(map2(&s, &uv, |s, u| _mm256_mul_ps(s, u)))
            {
                _mm256_storeu_ps(pg.add(i), o);
            }
        }
    }
    crate::ops::swiglu(gr, ur);
}

/// `NV` vectors of [`mix`]'s output (`out` at `op`), held in registers while
/// every key passes: key `j`'s values at `vp + j * stride`.
///
/// # Safety
/// AVX2 present; `8 * NV` values readable at `vp + j * stride` for every
/// `j < a.len()`, and writable at `op`.
#[inline(always)]
unsafe fn mix_strip<const NV: usize>(a: &[f32], vp: *const f32, stride: usize, op: *mut f32) {
    // SAFETY: the reads and writes are the caller's contract; AVX2 by the caller.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); NV];
        for (j, &w) in a.iter().enumerate() {
            let wv = _mm256_set1_ps(w);
            let row = vp.add(j * stride);
            for (k, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(wv, _mm256_loadu_ps(row.add(8 * k))));
            }
        }
        for (k, &acc) in acc.iter().enumerate() {
            _mm256_storeu_ps(op.add(8 * k), acc);
        }
    }
}

/// [`crate::ops::mix`]: `out = sum_j a[j] * v_j`, each element starting at 0
/// and adding `a[j] * v_j[i]` key by key in order (a rounded multiply, then a
/// rounded add), as there. The portable form keeps `out` in memory and adds 4
/// keys per pass over it, so each element's chain of adds also waits on a
/// store and a reload every 4 keys; here 64 outputs (a head of GPT-2 or
/// SmolLM2) stay in 8 registers while every key passes, and the only chain is
/// the adds' own; then 4, 2 and 1 vectors at a time. Heads whose keys are not
/// all whole rows (`off + hd <= stride`, `a.len()` rows inside `vals`) and the
/// last `hd % 8` outputs take the portable code.
///
/// # Safety
/// AVX2 present.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mix(a: &[f32], vals: &[f32], stride: usize, off: usize, out: &mut [f32]) {
    let hd = out.len();
    let whole = off.checked_add(hd).is_some_and(|e| e <= stride)
        && a.len().checked_mul(stride).is_some_and(|e| e <= vals.len());
    if !whole {
        crate::ops::mix(a, vals, stride, off, out);
        return;
    }
    let (vp, op) = (vals.as_ptr(), out.as_mut_ptr());
    let mut i0 = 0;
    // SAFETY: (each strip) key j's values at j * stride + off + i0 .. + 8 * NV
    // lie inside row j (off + hd <= stride and i0 + 8 * NV <= hd by the loop
    // conditions), row j inside `vals` (j < a.len(), a.len() * stride <=
    // vals.len()); `out` holds i0 + 8 * NV values. AVX2 by the caller.
    unsafe {
        while i0 + 64 <= hd {
            mix_strip::<8>(a, vp.add(off + i0), stride, op.add(i0));
            i0 += 64;
        }
        if i0 + 32 <= hd {
            mix_strip::<4>(a, vp.add(off + i0), stride, op.add(i0));
            i0 += 32;
        }
        if i0 + 16 <= hd {
            mix_strip::<2>(a, vp.add(off + i0), stride, op.add(i0));
            i0 += 16;
        }
        if i0 + 8 <= hd {
            mix_strip::<1>(a, vp.add(off + i0), stride, op.add(i0));
            i0 += 8;
        }
    }
    if let Some(rest) = out.get_mut(i0..).filter(|r| !r.is_empty()) {
        crate::ops::mix(a, vals, stride, off + i0, rest);
    }
}

/// `NV` vectors of two queries' [`mix`] outputs (`out_a` at `oa`, `out_b` at
/// `ob`), held in registers while every key passes: key `j`'s values at
/// `vp + j * stride`, loaded once for both queries.
///
/// # Safety
/// AVX2 present; `a.len() <= b.len()`; `8 * NV` values readable at
/// `vp + j * stride` for every `j < a.len()`, and writable at `oa` and at `ob`.
#[inline(always)]
unsafe fn mix2_strip<const NV: usize>(
    a: &[f32],
    b: &[f32],
    vp: *const f32,
    stride: usize,
    oa: *mut f32,
    ob: *mut f32,
) {
    // SAFETY: the reads and writes are the caller's contract; AVX2 by the caller.
    unsafe {
        let mut acc_a = [_mm256_setzero_ps(); NV];
        let mut acc_b = [_mm256_setzero_ps(); NV];
        for (j, (&wa, &wb)) in a.iter().zip(b).enumerate() {
            let (va, vb) = (_mm256_set1_ps(wa), _mm256_set1_ps(wb));
            let row = vp.add(j * stride);
            for (k, (xa, xb)) in acc_a.iter_mut().zip(acc_b.iter_mut()).enumerate() {
                let v = _mm256_loadu_ps(row.add(8 * k));
                *xa = _mm256_add_ps(*xa, _mm256_mul_ps(va, v));
                *xb = _mm256_add_ps(*xb, _mm256_mul_ps(vb, v));
            }
        }
        for (k, (&xa, &xb)) in acc_a.iter().zip(&acc_b).enumerate() {
            _mm256_storeu_ps(oa.add(8 * k), xa);
            _mm256_storeu_ps(ob.add(8 * k), xb);
        }
    }
}

/// [`mix`] of two queries over the same values (`out_a = mix(a)`,
/// `out_b = mix(b)`, `a.len() == b.len()`, `out_a.len() == out_b.len()`): each
/// strip of 32 outputs per query (8 registers for both) takes every key once,
/// and each value vector is loaded once for both queries. Each output gets the
/// adds of [`mix`] in its order. Returns false, nothing written, unless the
/// lengths agree and every key is a whole row (as [`mix`]'s fast path).
///
/// # Safety
/// AVX2 present.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mix2(
    a: &[f32],
    b: &[f32],
    vals: &[f32],
    stride: usize,
    off: usize,
    out_a: &mut [f32],
    out_b: &mut [f32],
) -> bool {
    let hd = out_a.len();
    let whole = off.checked_add(hd).is_some_and(|e| e <= stride)
        && a.len().checked_mul(stride).is_some_and(|e| e <= vals.len());
    if !whole || a.len() != b.len() || out_b.len() != hd {
        return false;
    }
    let (vp, oa, ob) = (vals.as_ptr(), out_a.as_mut_ptr(), out_b.as_mut_ptr());
    let mut i0 = 0;
    // SAFETY: (each strip) as in `mix` (the same rows and columns), for both
    // outputs, which hold hd values each. AVX2 by the caller.
    unsafe {
        while i0 + 32 <= hd {
            mix2_strip::<4>(a, b, vp.add(off + i0), stride, oa.add(i0), ob.add(i0));
            i0 += 32;
        }
        if i0 + 16 <= hd {
            mix2_strip::<2>(a, b, vp.add(off + i0), stride, oa.add(i0), ob.add(i0));
            i0 += 16;
        }
        if i0 + 8 <= hd {
            mix2_strip::<1>(a, b, vp.add(off + i0), stride, oa.add(i0), ob.add(i0));
            i0 += 8;
        }
    }
    if let (Some(ra), Some(rb)) = (out_a.get_mut(i0..), out_b.get_mut(i0..)) {
        if !ra.is_empty() {
            crate::ops::mix(a, vals, stride, off + i0, ra);
            crate::ops::mix(b, vals, stride, off + i0, rb);
        }
    }
    true
}
