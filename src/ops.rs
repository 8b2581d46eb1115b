//! Element-wise and row operations of the forward pass (scalar, f32).
//!
//! Norm and bias vectors are read in place from the file as little-endian f32
//! bytes, so nothing here assumes the model bytes are aligned.

/// Iterate the little-endian f32 values in `b`.
#[inline(always)]
pub fn f32s(b: &[u8]) -> impl Iterator<Item = f32> + '_ {
    b.as_chunks::<4>().0.iter().map(|&c| f32::from_le_bytes(c))
}

/// `out = (x - mean) / sqrt(var + eps) * w + b`, over one row (PyTorch `LayerNorm`).
pub fn layer_norm(x: &[f32], w: &[u8], b: &[u8], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
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

/// GELU as GPT-2 defines it (the tanh approximation, HF `gelu_new`):
/// `0.5 x (1 + tanh(z))` with `z = sqrt(2/pi) (x + 0.044715 x^3)`, computed as the
/// equal `x / (1 + exp(-2 z))` (one `expf` instead of `tanhf`'s `expm1f` and
/// division: a tenth of the forward pass's time went to `tanhf`). Large |z|
/// saturates cleanly: `exp` overflows to infinity (result -0) or underflows to 0
/// (result x).
pub fn gelu(x: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for v in x.iter_mut() {
        let u = *v;
        let z = SQRT_2_OVER_PI * (u + 0.044_715 * u * u * u);
        *v = u / (1.0 + libm::expf(-2.0 * z));
    }
}

/// In-place softmax with max subtraction.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Attention score `q . k`: the kernel table's `vec_dot_f32_f32` (16 lanes in the
/// fixed order of [`crate::kernels::scalar`], so every backend gives the same bits,
/// and the SIMD backends run it vectorised) with `k` as the "weight" row.
#[inline]
pub fn dot(kern: &crate::kernels::Kernels, q: &[f32], k: &[f32]) -> f32 {
    (kern.vec_dot_f32_f32)(crate::kernels::f32_bytes(k), q)
}
