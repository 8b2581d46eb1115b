//! Element-wise and row operations of the forward pass (scalar, f32).
//!
//! Norm and bias vectors are read in place from the file as little-endian f32
//! bytes, so nothing here assumes the model bytes are aligned.

/// Iterate the little-endian f32 values in `b`.
#[inline(always)]
pub fn f32s(b: &[u8]) -> impl Iterator<Item = f32> + '_ {
    b.as_chunks::<4>().0.iter().map(|&c| f32::from_le_bytes(c))
}

/// `sum(f(x[i]))` in a fixed order: element `i` into lane `i % 8`, the lanes
/// folded by halves. Eight independent chains instead of one: a sequential
/// f32 sum waits on each add's latency (3 cycles per element on Zen 3, which
/// made LayerNorm's and softmax's sums the slowest loops of a prefill), and
/// the same source gives the same bits on every target.
#[inline(always)]
pub fn sum_lanes(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (chunks, rest) = x.as_chunks::<8>();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a += f(v);
    }
    crate::kernels::scalar::fold_lanes(acc)
}

/// `out = (x - mean) / sqrt(var + eps) * w + b`, over one row (PyTorch `LayerNorm`).
pub fn layer_norm(x: &[f32], w: &[u8], b: &[u8], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = sum_lanes(x, |v| v) / n;
    let var = sum_lanes(x, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / libm::sqrtf(var + eps);
    for (((o, &xv), wv), bv) in out.iter_mut().zip(x).zip(f32s(w)).zip(f32s(b)) {
        *o = (xv - mean) * inv * wv + bv;
    }
}

/// `x += b` (bias bytes as f32).
pub fn add_bias(x: &mut [f32], b: &[u8]) {
    for (v, bv) in x.iter_mut().zip(f32s(b)) {
        *v += bv;
    }
}

/// The constants of [`exp`], shared with its SIMD forms (which must compute
/// the same operations on the same values).
pub(crate) mod exp_consts {
    pub(crate) const LOG2E: f32 = core::f32::consts::LOG2_E;
    pub(crate) const LN2_HI: f32 = 0.693_359_4; // 0x3f318000
    pub(crate) const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
    pub(crate) const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    /// The clamp: e^-104 is below half the smallest subnormal; e^89 overflows.
    pub(crate) const EXP_MIN: f32 = -104.0;
    pub(crate) const EXP_MAX: f32 = 89.0;
    /// `e^r = 1 + r + r^2 (P0 + P1 r + ... + P5 r^5)`
    pub(crate) const P: [f32; 6] = [
        5.0e-1,
        1.666_666_5e-1,
        4.166_579_6e-2,
        8.333_452e-3,
        1.398_199_9e-3,
        1.987_569_2e-4,
    ];
}

/// `e^x` in f32 from IEEE basic operations only (multiply, add, compare, bit
/// moves): the same bits on every target, and a loop of it vectorises (unlike a
/// call to `libm::expf`, which took a tenth of a prefill inside GELU).
///
/// Cody-Waite reduction `x = n ln2 + r`, `|r| <= ln2 / 2` (`n` rounded with the
/// 1.5 * 2^23 shift; `n * LN2_HI` is exact, `LN2_HI` having 9 significant
/// bits), a degree-6 minimax polynomial for `e^r` (relative error ~1e-7, the
/// coefficients of Cephes' `expf`), then `* 2^n` as two exact power-of-two
/// scalings, so overflow gives infinity and the subnormal range rounds once.
/// Within 2 ulp of the true value for normal results (tests/ops.rs measures it
/// against f64 over the whole range); `exp(NaN)` is NaN, `exp(-inf)` is 0.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    use exp_consts::*;
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let t = xc * LOG2E + SHIFT;
    let nf = t - SHIFT; // n as an exact float, |n| <= 151
    let n = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32); // n as an integer
    let r = (xc - nf * LN2_HI) - nf * LN2_LO;
    // e^r = 1 + r + r^2 (P0 + P1 r + ... + P5 r^5)
    let [p0, p1, p2, p3, p4, p5] = P;
    let q = ((((p5 * r + p4) * r + p3) * r + p2) * r + p1) * r + p0;
    let p = (q * (r * r) + r) + 1.0;
    // 2^n = 2^n1 * 2^n2 with both halves inside the normal exponent range.
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32) << 23);
    let y = p * s1 * s2;
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `(cos x, sin x)` in f32 from IEEE basic operations only (no f64: on a
/// single-precision FPU, as the Cortex-M4F's, f64 arithmetic is emulated and
/// `libm`'s f64 `sin`/`cos` brought 7 KiB of code into the firmware).
///
/// Cody-Waite reduction `x = j pi/2 + r`, `|r| <= pi/4`, with `pi/2` split in
/// three parts of 8, 11 and 24 bits (`j P1` and `j P2` are exact for
/// `|j| < 2^13`, i.e. `|x|` up to ~12,800; beyond that the error grows with `x`
/// but stays below the f32 rounding of an angle that large), then Cephes'
/// minimax polynomials on the reduced argument and the quadrant's swap and signs.
/// tests/ops.rs measures it against f64 (absolute error <= 1.2e-7 for |x| <= 8192).
#[inline]
pub fn sin_cos(x: f32) -> (f32, f32) {
    const TWO_OVER_PI: f32 = core::f32::consts::FRAC_2_PI;
    const P1: f32 = 1.570_312_5; // 0x3fc90000
    const P2: f32 = 4.837_513e-4; // 0x39fda000
    const P3: f32 = 7.549_79e-8; // pi/2 - P1 - P2
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer

    let t = x * TWO_OVER_PI + SHIFT;
    let jf = t - SHIFT;
    let j = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let r = ((x - jf * P1) - jf * P2) - jf * P3;
    let z = r * r;
    let sin_r = r + r * z * ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1);
    let cos_r =
        1.0 - 0.5 * z + z * z * ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2);
    // x = j pi/2 + r: quadrant j mod 4 rotates (cos r, sin r) by j quarter turns.
    let (c, s) = match j & 3 {
        0 => (cos_r, sin_r),
        1 => (-sin_r, cos_r),
        2 => (-cos_r, -sin_r),
        _ => (sin_r, -cos_r),
    };
    if x.is_finite() {
        (c, s)
    } else {
        (f32::NAN, f32::NAN)
    }
}

/// GELU as GPT-2 defines it (the tanh approximation, HF `gelu_new`):
/// `0.5 x (1 + tanh(z))` with `z = sqrt(2/pi) (x + 0.044715 x^3)`, computed as the
/// equal `x / (1 + exp(-2 z))` with [`exp`] (one vectorisable exponential
/// instead of `tanhf`'s `expm1f` and division). Large |z| saturates cleanly:
/// `exp` overflows to infinity (result -0) or underflows to 0 (result x).
///
/// Reached through the kernel table (`Kernels::gelu`), which runs this same
/// source compiled for the backend's instruction set (hence `inline(always)`).
#[inline(always)]
pub fn gelu(x: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for v in x.iter_mut() {
        let u = *v;
        let z = SQRT_2_OVER_PI * (u + 0.044_715 * u * u * u);
        *v = u / (1.0 + exp(-2.0 * z));
    }
}

/// In-place softmax with max subtraction. Reached through `Kernels::softmax`
/// (as [`gelu`]).
#[inline(always)]
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v = exp(*v - max); // a loop of its own: it vectorises
    }
    let inv = 1.0 / sum_lanes(x, |v| v);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// SwiGLU: `gate = silu(gate) * up` with `silu(g) = g / (1 + e^-g)`. Reached
/// through `Kernels::swiglu` (as [`gelu`]).
#[inline(always)]
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// Attention score `q . k`: the kernel table's `vec_dot_f32_f32` (16 lanes in the
/// fixed order of [`crate::kernels::scalar`], so every backend gives the same bits,
/// and the SIMD backends run it vectorised) with `k` as the "weight" row.
#[inline]
pub fn dot(kern: &crate::kernels::Kernels, q: &[f32], k: &[f32]) -> f32 {
    (kern.vec_dot_f32_f32)(crate::kernels::f32_bytes(k), q)
}

/// Keys per pass of [`mix`] over `out` (one load and store of `out` per group);
/// one on 32-bit Arm (the Cortex-M FPU has no vectors to fill).
#[cfg(not(target_arch = "arm"))]
const MIX_KEYS: usize = 4;
#[cfg(target_arch = "arm")]
const MIX_KEYS: usize = 1;

/// Attention scores `out[j] = (q . k_j) * scale` of the keys
/// `k_j = keys[j * stride + off ..][..q.len()]`, `j < out.len()`, each by [`dot`]
/// (the kernel table's vectorised dot: a portable multi-key dot in the same
/// fixed order compiled to SSE2 and ran slower than the AVX2 kernel per key).
pub fn scores(
    kern: &crate::kernels::Kernels,
    q: &[f32],
    keys: &[f32],
    stride: usize,
    off: usize,
    scale: f32,
    out: &mut [f32],
) {
    if let Some(f) = kern.scores {
        if f(q, keys, stride, off, scale, out) {
            return;
        }
    }
    let hd = q.len();
    let rows = keys
        .chunks_exact(stride.max(1))
        .map(|r| r.get(off..off + hd).unwrap_or(&[]));
    for (s, k) in out.iter_mut().zip(rows) {
        *s = dot(kern, q, k) * scale;
    }
}

/// [`scores`] of two queries over the same keys (`out_a` for `qa`, `out_b` for
/// `qb`; the two may differ in length, as a query and the next one do in
/// causal attention): the keys both have go through the table's `scores2`
/// when it takes them (each key read once for both), the rest through
/// [`scores`]. Every score is the one [`scores`] gives.
#[allow(clippy::too_many_arguments)]
pub fn scores2(
    kern: &crate::kernels::Kernels,
    qa: &[f32],
    qb: &[f32],
    keys: &[f32],
    stride: usize,
    off: usize,
    scale: f32,
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    let n = out_a.len().min(out_b.len());
    if let (Some(f), Some((a0, a1)), Some((b0, b1))) = (
        kern.scores2,
        out_a.split_at_mut_checked(n),
        out_b.split_at_mut_checked(n),
    ) {
        if f(qa, qb, keys, stride, off, scale, a0, b0) {
            // `f` took the n keys, so n whole rows of `stride` lie in `keys`.
            let rest = n
                .checked_mul(stride)
                .and_then(|e| keys.get(e..))
                .unwrap_or(&[]);
            scores(kern, qa, rest, stride, off, scale, a1);
            scores(kern, qb, rest, stride, off, scale, b1);
            return;
        }
    }
    scores(kern, qa, keys, stride, off, scale, out_a);
    scores(kern, qb, keys, stride, off, scale, out_b);
}

/// [`Kernels::mix`](crate::kernels::Kernels) of two queries over the same values
/// (`out_a = mix(a)`, `out_b = mix(b)`; `a` and `b` may differ in length, as a
/// query's weights and the next one's do in causal attention): the keys both
/// have go through the table's `mix2` when it takes them (each value row read
/// once for both), then the longer one's last keys are added in order, as
/// [`mix`] adds them. Every output is the one [`mix`] gives.
#[allow(clippy::too_many_arguments)]
pub fn mix2(
    kern: &crate::kernels::Kernels,
    a: &[f32],
    b: &[f32],
    vals: &[f32],
    stride: usize,
    off: usize,
    out_a: &mut [f32],
    out_b: &mut [f32],
) {
    let n = a.len().min(b.len());
    if let (Some(f), Some((a0, a1)), Some((b0, b1))) =
        (kern.mix2, a.split_at_checked(n), b.split_at_checked(n))
    {
        if f(a0, b0, vals, stride, off, out_a, out_b) {
            let hd = out_a.len();
            let rows = vals
                .chunks_exact(stride.max(1))
                .skip(n)
                .map(|r| r.get(off..off + hd).unwrap_or(&[]));
            for (&w, v) in a1.iter().zip(rows) {
                mix_group(out_a, &[w], [v]);
            }
            let hd = out_b.len();
            let rows = vals
                .chunks_exact(stride.max(1))
                .skip(n)
                .map(|r| r.get(off..off + hd).unwrap_or(&[]));
            for (&w, v) in b1.iter().zip(rows) {
                mix_group(out_b, &[w], [v]);
            }
            return;
        }
    }
    (kern.mix)(a, vals, stride, off, out_a);
    (kern.mix)(b, vals, stride, off, out_b);
}

/// `out = sum_j a[j] * v_j` with `v_j = vals[j * stride + off ..][..out.len()]`,
/// `j < a.len()`: each element starts at 0 and adds the terms key by key, in
/// order, each a rounded multiply then a rounded add (several keys per pass over
/// `out`, the order per element unchanged).
///
/// Reached through `Kernels::mix` (as [`gelu`]).
#[inline(always)]
pub fn mix(a: &[f32], vals: &[f32], stride: usize, off: usize, out: &mut [f32]) {
    let hd = out.len();
    let mut rows = vals
        .chunks_exact(stride.max(1))
        .map(|r| r.get(off..off + hd).unwrap_or(&[]));
    out.fill(0.0);
    let (groups, rest) = a.as_chunks::<MIX_KEYS>();
    for g in groups {
        let v: [&[f32]; MIX_KEYS] = core::array::from_fn(|_| rows.next().unwrap_or(&[]));
        mix_group(out, g, v);
    }
    for (&w, v) in rest.iter().zip(rows) {
        mix_group(out, &[w], [v]);
    }
}

/// `out[i] = out[i] + w[r] * v_r[i]` for `r = 0, 1, ..` in order.
#[cfg(not(target_arch = "arm"))]
#[inline(always)]
fn mix_group<const N: usize>(out: &mut [f32], w: &[f32; N], v: [&[f32]; N]) {
    match (w.as_slice(), v.as_slice()) {
        (&[w0, w1, w2, w3], &[v0, v1, v2, v3]) => {
            let it = out.iter_mut().zip(v0).zip(v1).zip(v2).zip(v3);
            for ((((o, &x0), &x1), &x2), &x3) in it {
                *o = (((*o + w0 * x0) + w1 * x1) + w2 * x2) + w3 * x3;
            }
        }
        _ => {
            for (&w, v) in w.iter().zip(v) {
                for (o, &x) in out.iter_mut().zip(v) {
                    *o += w * x;
                }
            }
        }
    }
}

/// `out[i] = out[i] + w[r] * v_r[i]` for `r = 0, 1, ..` in order.
#[cfg(target_arch = "arm")]
#[inline(always)]
fn mix_group<const N: usize>(out: &mut [f32], w: &[f32; N], v: [&[f32]; N]) {
    for (&w, v) in w.iter().zip(v) {
        for (o, &x) in out.iter_mut().zip(v) {
            *o += w * x;
        }
    }
}
