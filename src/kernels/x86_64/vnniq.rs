//! The VNNI prefill GEMM: tokens side by side in the i32 lanes of `vpdpbusd`
//! (16 in a zmm with AVX-512 VNNI, 8 in a ymm with AVX-VNNI), so no block sum
//! ever needs a horizontal reduction.
//!
//! Layout (lanes = tokens; `L` lanes):
//! - The chunk's activations are packed once per call, per block `j` and
//!   4-byte step `k`: one vector holding bytes `4k..4k+4` of block `j` of each
//!   of `L` tokens, made unsigned (`a ^ 0x80 = a + 128`, exact for every i8,
//!   -128 included). `vpdpbusd` takes that vector as its u8 operand.
//! - The weights are the signed operand, one dword broadcast to all lanes
//!   (with AVX-512, LLVM folds `set1` of a loaded dword into the instruction's
//!   `{1to16}` memory operand). Q8_0 quants are read in place; Q4 nibbles are
//!   unpacked per row into signed bytes (`q - 8` for Q4_0, `q` for Q4_1).
//! - So each lane sums `(a + 128) * w` over the block: the exact `sum(a * w)`
//!   is that minus `128 * sum(w)`, one i32 per weight block computed when the
//!   row is prepared.
//!
//! Order of the float work (bit-identical to [`crate::kernels::scalar`]): block
//! `j`'s term `sumi as f32 * (dw * dx)` (Q4_1: `+ mw * sx`) goes into lane
//! `j % 8` in increasing `j`, then the 8 lanes are folded by halves. Here the 8
//! lanes are run one after another (`j = l, l + 8, ...` for lane `l`), which
//! keeps one float accumulator per row live instead of 8 and adds to each lane
//! in the same order. Integer sums are exact (`|sum| <= 32 * 255 * 128 < 2^31`,
//! and `< 2^24`, so the conversion to f32 is exact as in the reference).
//!
//! Every vector operation goes through [`Wide`]: [`Zmm`] (AVX-512 F + VNNI,
//! 16 lanes), [`Ymm`] over a [`Dp`] (AVX-VNNI, 8 lanes) and [`ZmmEmu`] (16
//! lanes as two AVX2 halves). With [`EmuDp`] (`vpdpbusd` by widening to
//! `vpmaddwd`), both forms' logic is tested against the scalar reference on
//! CPUs without VNNI, and the real forms run under an emulator
//! (`tests/scripts/bochs_x86.sh`).

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::common::{block_term, nibbles, scales8, Dp, EmuDp, WFmt};
use crate::kernels::scalar::fold_lanes;
use crate::quant::f16_to_f32;

/// The vector operations of [`gemm`] on `LANES` lanes of i32 or f32.
pub(crate) trait Wide {
    /// Lanes (tokens) per vector: 16 or 8.
    const LANES: usize;
    /// `LANES` i32 lanes (or `4 * LANES` bytes).
    type I: Copy;
    /// `LANES` f32 lanes.
    type F: Copy;
    /// All-zero integer lanes.
    ///
    /// # Safety
    /// The implementation's features present (all methods).
    unsafe fn izero() -> Self::I;
    /// All-zero (+0.0) float lanes.
    ///
    /// # Safety
    /// As [`Wide::izero`].
    unsafe fn fzero() -> Self::F;
    /// The `4 * LANES` bytes at `p`.
    ///
    /// # Safety
    /// `4 * LANES` readable bytes at `p`, 64-byte aligned; features present.
    unsafe fn load_i(p: *const u8) -> Self::I;
    /// `acc + dpbusd(a, w4)`: per i32 lane `l`, `sum over b < 4 of
    /// (a byte 4l + b as u8) * (w4 byte b as i8)`, `w4` broadcast to all lanes.
    ///
    /// # Safety
    /// Features present.
    unsafe fn dp_bcast(acc: Self::I, a: Self::I, w4: i32) -> Self::I;
    /// `v - c` per i32 lane.
    ///
    /// # Safety
    /// Features present.
    unsafe fn sub_set1(v: Self::I, c: i32) -> Self::I;
    /// i32 -> f32 per lane (round to nearest; exact below 2^24).
    ///
    /// # Safety
    /// Features present.
    unsafe fn cvt(v: Self::I) -> Self::F;
    /// The `LANES` f32 at `p`.
    ///
    /// # Safety
    /// `LANES` readable f32 at `p`, 64-byte aligned; features present.
    unsafe fn load_f(p: *const f32) -> Self::F;
    /// Store `LANES` f32 at `p`.
    ///
    /// # Safety
    /// `LANES` writable f32 at `p`, 64-byte aligned; features present.
    unsafe fn store_f(p: *mut f32, v: Self::F);
    /// `v * s` per lane (one rounded multiply).
    ///
    /// # Safety
    /// Features present.
    unsafe fn mul_set1(v: Self::F, s: f32) -> Self::F;
    /// `a * b` per lane.
    ///
    /// # Safety
    /// Features present.
    unsafe fn mul(a: Self::F, b: Self::F) -> Self::F;
    /// `a + b` per lane.
    ///
    /// # Safety
    /// Features present.
    unsafe fn add(a: Self::F, b: Self::F) -> Self::F;
    /// One token (decode): [`decode`] where the vector holds two blocks
    /// ([`Pair`]); false (nothing written) leaves it to the generic tiles.
    ///
    /// # Safety
    /// Features present.
    #[inline(always)]
    unsafe fn decode_hook<F: WFmt>(_w: &[u8], _rows: usize, _x: &[u8], _out: &mut [f32]) -> bool {
        false
    }
    /// One row x one token with [`dot`] when the vector holds two blocks;
    /// None leaves it to the generic tile.
    ///
    /// # Safety
    /// Features present.
    #[inline(always)]
    unsafe fn dot_hook<F: WFmt>(_w: &[u8], _x: &[u8]) -> Option<f32> {
        None
    }
}

/// The operations of [`decode`]: a 512-bit vector as two 32-byte blocks, and
/// the horizontal reduction of 8 blocks' lanes to their 8 sums.
pub(crate) trait Pair: Wide {
    /// `[lo | hi]`: block `j` in the low 256 bits, block `j + 4` in the high.
    ///
    /// # Safety
    /// Features present.
    unsafe fn pair(lo: __m256i, hi: __m256i) -> Self::I;
    /// Every byte xor 0x80 (i8 `w` -> u8 `w + 128`).
    ///
    /// # Safety
    /// Features present.
    unsafe fn flip(v: Self::I) -> Self::I;
    /// `acc + dpbusd(u, a)`: per i32 lane, the 4 products of u8 `u` and i8 `a`.
    ///
    /// # Safety
    /// Features present.
    unsafe fn dp(acc: Self::I, u: Self::I, a: Self::I) -> Self::I;
    /// 4 vectors holding blocks `(i, i + 4)`, `i < 4`, 8 i32 lanes per block ->
    /// the 8 block sums in block order (integer adds: exact).
    ///
    /// # Safety
    /// Features present.
    unsafe fn reduce4(v: [Self::I; 4]) -> __m256i;
}

/// AVX-512 F + VNNI: one zmm per operation.
pub(crate) struct Zmm;

impl Wide for Zmm {
    const LANES: usize = 16;
    type I = __m512i;
    type F = __m512;
    #[inline(always)]
    unsafe fn izero() -> __m512i {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_setzero_si512() }
    }
    #[inline(always)]
    unsafe fn fzero() -> __m512 {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load_i(p: *const u8) -> __m512i {
        // SAFETY: 64 aligned readable bytes and AVX-512F by the caller.
        unsafe { _mm512_load_si512(p as *const __m512i) }
    }
    #[inline(always)]
    unsafe fn dp_bcast(acc: __m512i, a: __m512i, w4: i32) -> __m512i {
        // SAFETY: AVX-512F + VNNI by the caller.
        unsafe { _mm512_dpbusd_epi32(acc, a, _mm512_set1_epi32(w4)) }
    }
    #[inline(always)]
    unsafe fn sub_set1(v: __m512i, c: i32) -> __m512i {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_sub_epi32(v, _mm512_set1_epi32(c)) }
    }
    #[inline(always)]
    unsafe fn cvt(v: __m512i) -> __m512 {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_cvtepi32_ps(v) }
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> __m512 {
        // SAFETY: 16 aligned readable f32 and AVX-512F by the caller.
        unsafe { _mm512_load_ps(p) }
    }
    #[inline(always)]
    unsafe fn store_f(p: *mut f32, v: __m512) {
        // SAFETY: 16 aligned writable f32 and AVX-512F by the caller.
        unsafe { _mm512_store_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn mul_set1(v: __m512, s: f32) -> __m512 {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_mul_ps(v, _mm512_set1_ps(s)) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn decode_hook<F: WFmt>(w: &[u8], rows: usize, x: &[u8], out: &mut [f32]) -> bool {
        // SAFETY: features by the caller.
        unsafe { decode::<Self, F>(w, rows, x, out) }
    }
    #[inline(always)]
    unsafe fn dot_hook<F: WFmt>(w: &[u8], x: &[u8]) -> Option<f32> {
        // SAFETY: features by the caller.
        unsafe { dot::<Self, F>(w, x) }
    }
}

impl Pair for Zmm {
    #[inline(always)]
    unsafe fn pair(lo: __m256i, hi: __m256i) -> __m512i {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi) }
    }
    #[inline(always)]
    unsafe fn flip(v: __m512i) -> __m512i {
        // SAFETY: AVX-512F by the caller.
        unsafe { _mm512_xor_si512(v, _mm512_set1_epi8(-128)) }
    }
    #[inline(always)]
    unsafe fn dp(acc: __m512i, u: __m512i, a: __m512i) -> __m512i {
        // SAFETY: AVX-512F + VNNI by the caller.
        unsafe { _mm512_dpbusd_epi32(acc, u, a) }
    }
    #[inline(always)]
    unsafe fn reduce4(v: [__m512i; 4]) -> __m256i {
        // SAFETY: AVX-512F + AVX2 by the caller.
        unsafe {
            let [a, b, c, d] = v;
            // Per 128-bit lane L: [a0+a2, b0+b2, a1+a3, b1+b3], then
            // [sum a_L, sum b_L, sum c_L, sum d_L].
            let t = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
            let u = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
            let v = _mm512_add_epi32(_mm512_unpacklo_epi64(t, u), _mm512_unpackhi_epi64(t, u));
            // Lanes 0, 1 hold blocks 0..4, lanes 2, 3 blocks 4..8: [L0, L2, L1, L3],
            // then [L0 + L1 | L2 + L3].
            let x = _mm512_shuffle_i64x2::<0b11_01_10_00>(v, v);
            _mm256_add_epi32(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64::<1>(x))
        }
    }
}

/// The same 16 lanes as two AVX2 halves (test support: runs [`gemm`]'s logic on
/// CPUs without AVX-512).
pub(crate) struct ZmmEmu;

impl Wide for ZmmEmu {
    const LANES: usize = 16;
    type I = (__m256i, __m256i);
    type F = (__m256, __m256);
    #[inline(always)]
    unsafe fn izero() -> Self::I {
        // SAFETY: AVX by the caller.
        unsafe { (_mm256_setzero_si256(), _mm256_setzero_si256()) }
    }
    #[inline(always)]
    unsafe fn fzero() -> Self::F {
        // SAFETY: AVX by the caller.
        unsafe { (_mm256_setzero_ps(), _mm256_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn load_i(p: *const u8) -> Self::I {
        // SAFETY: 64 aligned readable bytes and AVX by the caller.
        unsafe {
            (
                _mm256_load_si256(p as *const __m256i),
                _mm256_load_si256(p.add(32) as *const __m256i),
            )
        }
    }
    #[inline(always)]
    unsafe fn dp_bcast(acc: Self::I, a: Self::I, w4: i32) -> Self::I {
        // SAFETY: AVX2 by the caller.
        unsafe {
            let b = _mm256_set1_epi32(w4);
            (EmuDp::dp(acc.0, a.0, b), EmuDp::dp(acc.1, a.1, b))
        }
    }
    #[inline(always)]
    unsafe fn sub_set1(v: Self::I, c: i32) -> Self::I {
        // SAFETY: AVX2 by the caller.
        unsafe {
            let c = _mm256_set1_epi32(c);
            (_mm256_sub_epi32(v.0, c), _mm256_sub_epi32(v.1, c))
        }
    }
    #[inline(always)]
    unsafe fn cvt(v: Self::I) -> Self::F {
        // SAFETY: AVX by the caller.
        unsafe { (_mm256_cvtepi32_ps(v.0), _mm256_cvtepi32_ps(v.1)) }
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> Self::F {
        // SAFETY: 16 aligned readable f32 and AVX by the caller.
        unsafe { (_mm256_load_ps(p), _mm256_load_ps(p.add(8))) }
    }
    #[inline(always)]
    unsafe fn store_f(p: *mut f32, v: Self::F) {
        // SAFETY: 16 aligned writable f32 and AVX by the caller.
        unsafe {
            _mm256_store_ps(p, v.0);
            _mm256_store_ps(p.add(8), v.1);
        }
    }
    #[inline(always)]
    unsafe fn mul_set1(v: Self::F, s: f32) -> Self::F {
        // SAFETY: AVX by the caller.
        unsafe {
            let s = _mm256_set1_ps(s);
            (_mm256_mul_ps(v.0, s), _mm256_mul_ps(v.1, s))
        }
    }
    #[inline(always)]
    unsafe fn mul(a: Self::F, b: Self::F) -> Self::F {
        // SAFETY: AVX by the caller.
        unsafe { (_mm256_mul_ps(a.0, b.0), _mm256_mul_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn add(a: Self::F, b: Self::F) -> Self::F {
        // SAFETY: AVX by the caller.
        unsafe { (_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn decode_hook<F: WFmt>(w: &[u8], rows: usize, x: &[u8], out: &mut [f32]) -> bool {
        // SAFETY: features by the caller.
        unsafe { decode::<Self, F>(w, rows, x, out) }
    }
    #[inline(always)]
    unsafe fn dot_hook<F: WFmt>(w: &[u8], x: &[u8]) -> Option<f32> {
        // SAFETY: features by the caller.
        unsafe { dot::<Self, F>(w, x) }
    }
}

impl Pair for ZmmEmu {
    #[inline(always)]
    unsafe fn pair(lo: __m256i, hi: __m256i) -> Self::I {
        (lo, hi)
    }
    #[inline(always)]
    unsafe fn flip(v: Self::I) -> Self::I {
        // SAFETY: AVX2 by the caller.
        unsafe {
            let k = _mm256_set1_epi8(-128);
            (_mm256_xor_si256(v.0, k), _mm256_xor_si256(v.1, k))
        }
    }
    #[inline(always)]
    unsafe fn dp(acc: Self::I, u: Self::I, a: Self::I) -> Self::I {
        // SAFETY: AVX2 by the caller.
        unsafe { (EmuDp::dp(acc.0, u.0, a.0), EmuDp::dp(acc.1, u.1, a.1)) }
    }
    #[inline(always)]
    unsafe fn reduce4(v: [Self::I; 4]) -> __m256i {
        // SAFETY: AVX2 by the caller.
        unsafe {
            let [a, b, c, d] = v;
            // The same per-128-bit-lane steps as `Zmm` on each half ([L0 | L1]
            // and [L2 | L3]).
            let half = |a: __m256i, b: __m256i, c: __m256i, d: __m256i| {
                let t = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
                let u = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
                _mm256_add_epi32(_mm256_unpacklo_epi64(t, u), _mm256_unpackhi_epi64(t, u))
            };
            let lo = half(a.0, b.0, c.0, d.0);
            let hi = half(a.1, b.1, c.1, d.1);
            _mm256_add_epi32(
                _mm256_permute2x128_si256::<0x20>(lo, hi),
                _mm256_permute2x128_si256::<0x31>(lo, hi),
            )
        }
    }
}

/// 8 lanes in a ymm, `vpdpbusd` by `D` (AVX-VNNI's VEX form, or [`EmuDp`]).
pub(crate) struct Ymm<D>(core::marker::PhantomData<D>);

impl<D: Dp> Wide for Ymm<D> {
    const LANES: usize = 8;
    type I = __m256i;
    type F = __m256;
    #[inline(always)]
    unsafe fn izero() -> __m256i {
        // SAFETY: AVX by the caller.
        unsafe { _mm256_setzero_si256() }
    }
    #[inline(always)]
    unsafe fn fzero() -> __m256 {
        // SAFETY: AVX by the caller.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load_i(p: *const u8) -> __m256i {
        // SAFETY: 32 aligned readable bytes and AVX by the caller.
        unsafe { _mm256_load_si256(p as *const __m256i) }
    }
    #[inline(always)]
    unsafe fn dp_bcast(acc: __m256i, a: __m256i, w4: i32) -> __m256i {
        // SAFETY: D's features by the caller.
        unsafe { D::dp(acc, a, _mm256_set1_epi32(w4)) }
    }
    #[inline(always)]
    unsafe fn sub_set1(v: __m256i, c: i32) -> __m256i {
        // SAFETY: AVX2 by the caller.
        unsafe { _mm256_sub_epi32(v, _mm256_set1_epi32(c)) }
    }
    #[inline(always)]
    unsafe fn cvt(v: __m256i) -> __m256 {
        // SAFETY: AVX by the caller.
        unsafe { _mm256_cvtepi32_ps(v) }
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> __m256 {
        // SAFETY: 8 aligned readable f32 and AVX by the caller.
        unsafe { _mm256_load_ps(p) }
    }
    #[inline(always)]
    unsafe fn store_f(p: *mut f32, v: __m256) {
        // SAFETY: 8 aligned writable f32 and AVX by the caller.
        unsafe { _mm256_store_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn mul_set1(v: __m256, s: f32) -> __m256 {
        // SAFETY: AVX by the caller.
        unsafe { _mm256_mul_ps(v, _mm256_set1_ps(s)) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX by the caller.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX by the caller.
        unsafe { _mm256_add_ps(a, b) }
    }
}

/// Most blocks per row [`gemm`] takes: its packed activations (512 bytes per
/// block) and the prepared rows live on the stack (~80 KB at this bound, GPT-2's
/// 3072-wide FFN input). Wider rows go to the generic tiles.
pub(crate) const MAX_NB: usize = 96;
/// Most tokens per vector (the buffers are sized for it).
const TV: usize = 16;
/// Weight rows per pass (each activation vector loaded once for all of them).
const RP: usize = 4;

/// 64 bytes, 64-byte aligned: one packed activation vector (its first `4 * LANES`).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct V64([u8; 64]);

/// 16 f32, 64-byte aligned: one lane vector of floats (its first `LANES`).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct F16L([f32; TV]);

/// `128 * sum(signed bytes)` of the 32 bytes at `p`, with `vpsadbw` on the bytes
/// made unsigned (each u64 lane sums 8 of `b + 128`).
///
/// # Safety
/// 32 readable bytes at `p`; AVX2 present.
#[inline(always)]
unsafe fn corr32(p: *const u8) -> i32 {
    // SAFETY: the read is covered by the caller's contract; AVX2 present.
    unsafe {
        let v = _mm256_xor_si256(
            _mm256_loadu_si256(p as *const __m256i),
            _mm256_set1_epi8(-128),
        );
        let s = _mm256_sad_epu8(v, _mm256_setzero_si256());
        let s = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        let s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
        // sum(b + 128) <= 32 * 255: fits; minus 32 * 128 gives sum(b).
        128 * (_mm_cvtsi128_si32(s) - 32 * 128)
    }
}

/// One prepared weight row: where block `j`'s 32 signed bytes start
/// (`q + j * qs`), its correction `128 * sum` and its scales.
struct Prepared {
    q: *const u8,
    qs: usize,
    wc: [i32; MAX_NB],
    dw: [f32; MAX_NB],
    mw: [f32; MAX_NB],
}

/// `out[r * n + t] = dot(w row r, x row t)` for `n` tokens of `nb` blocks
/// (see the module docs). Returns false, writing nothing, for shapes it does
/// not take (`nb` of 0 or above [`MAX_NB`], fewer than half a vector of
/// tokens, where most lanes would be padding and the generic tiles, which
/// reduce each block horizontally, do less work; or lengths that do not
/// match); the caller then uses another kernel.
///
/// # Safety
/// `Z`'s features and AVX2 present.
#[inline(always)]
pub(crate) unsafe fn gemm<Z: Wide, F: WFmt>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
) -> bool {
    if n == 1 {
        // SAFETY: features by the caller.
        return unsafe { Z::decode_hook::<F>(w, rows, x, out) };
    }
    if rows == 0 || n < Z::LANES / 2 || Z::LANES > TV || !x.len().is_multiple_of(n * F::AB) {
        return false;
    }
    let nb = x.len() / (n * F::AB);
    let (rb, xb) = (nb * F::WB, nb * F::AB);
    if nb == 0 || nb > MAX_NB || w.len() != rows * rb || out.len() < rows * n {
        return false;
    }
    let mut xa = [V64([0x80; 64]); MAX_NB * 8];
    let mut dx = [F16L([0.0; TV]); MAX_NB];
    let mut sx = [F16L([0.0; TV]); MAX_NB];
    let mut wq = [const { MaybeUninit::<[u8; 32]>::uninit() }; RP * MAX_NB];
    let mut t0 = 0;
    while t0 < n {
        let tn = Z::LANES.min(n - t0);
        pack::<F>(x, xb, t0, tn, Z::LANES, nb, &mut xa, &mut dx, &mut sx);
        let mut r0 = 0;
        while r0 < rows {
            let rn = RP.min(rows - r0);
            // SAFETY: rows r0..r0 + rn < rows hold nb blocks each (checked
            // above), `out` holds rows * n values, `xa`/`dx`/`sx` were packed
            // for nb blocks; features by the caller.
            unsafe {
                match rn {
                    4 => pass::<Z, F, 4>(w, rb, r0, nb, &xa, &dx, &sx, &mut wq, out, n, t0, tn),
                    3 => pass::<Z, F, 3>(w, rb, r0, nb, &xa, &dx, &sx, &mut wq, out, n, t0, tn),
                    2 => pass::<Z, F, 2>(w, rb, r0, nb, &xa, &dx, &sx, &mut wq, out, n, t0, tn),
                    _ => pass::<Z, F, 1>(w, rb, r0, nb, &xa, &dx, &sx, &mut wq, out, n, t0, tn),
                }
            }
            r0 += rn;
        }
        t0 += tn;
    }
    true
}

/// Pack tokens `t0 .. t0 + tn` (tn <= lanes <= 16) of `x` (rows of `xb`
/// bytes, `nb` blocks): `xa[j * 8 + k]` byte `4 * t + b` = quant `4 * k + b` of
/// token `t`'s block `j`, plus 128; `dx[j][t]` (and `sx`) its scales as f32.
/// Lanes `tn <= t < lanes` hold a = 0 and scale 0.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pack<F: WFmt>(
    x: &[u8],
    xb: usize,
    t0: usize,
    tn: usize,
    lanes: usize,
    nb: usize,
    xa: &mut [V64],
    dx: &mut [F16L],
    sx: &mut [F16L],
) {
    let h = |b: &[u8], i: usize| match b.get(i..i + 2) {
        Some(&[lo, hi]) => f16_to_f32(u16::from_le_bytes([lo, hi])),
        _ => 0.0,
    };
    for t in 0..lanes {
        let row = if t < tn {
            x.get((t0 + t) * xb..(t0 + t + 1) * xb)
        } else {
            None
        };
        let blocks = xa.chunks_exact_mut(8).zip(dx.iter_mut().zip(sx.iter_mut()));
        for (j, (vj, (dj, sj))) in blocks.take(nb).enumerate() {
            let blk = row.and_then(|r| r.get(j * F::AB..(j + 1) * F::AB));
            let qs = blk.and_then(|b| b.get(F::AOFF..F::AOFF + 32));
            for (k, v) in vj.iter_mut().enumerate() {
                let src = qs.and_then(|q| q.get(4 * k..4 * k + 4));
                if let (Some(dst), Some(src)) = (v.0.get_mut(4 * t..4 * t + 4), src) {
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d = s ^ 0x80;
                    }
                } else if let Some(dst) = v.0.get_mut(4 * t..4 * t + 4) {
                    dst.fill(0x80);
                }
            }
            let (d, s) = blk.map_or((0.0, 0.0), |b| (h(b, 0), h(b, 2)));
            if let Some(v) = dj.0.get_mut(t) {
                *v = d;
            }
            if F::HAS_M {
                if let Some(v) = sj.0.get_mut(t) {
                    *v = s;
                }
            }
        }
    }
}

/// Rows `r0 .. r0 + RR` against the packed tokens: prepare each row, run the 8
/// lanes one after another, fold, store the `tn` real tokens.
///
/// # Safety
/// Rows `r0 .. r0 + RR` of `w` (rows of `rb = nb * F::WB` bytes) exist, `nb <=
/// MAX_NB`, `xa`, `dx`, `sx` hold the packed tokens for `nb` blocks, `out` holds
/// rows `r0 .. r0 + RR` of `n` values; `Z`'s features and AVX2 present.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_range_loop)]
// r, l index several arrays at once
// INDEXING: r < RR, l < 8 index arrays of those const lengths.
#[allow(clippy::indexing_slicing)]
unsafe fn pass<Z: Wide, F: WFmt, const RR: usize>(
    w: &[u8],
    rb: usize,
    r0: usize,
    nb: usize,
    xa: &[V64],
    dx: &[F16L],
    sx: &[F16L],
    wq: &mut [MaybeUninit<[u8; 32]>],
    out: &mut [f32],
    n: usize,
    t0: usize,
    tn: usize,
) {
    // SAFETY: row r0 + r (r < RR) spans w[(r0 + r) * rb ..][..rb] by the caller;
    // block j < nb of it starts j * WB bytes in, its quants QOFF further (32
    // bytes, or 16 nibble bytes); the prepared bytes of row r, block j are
    // wq[r * MAX_NB + j] (written below before any read; j < nb <= MAX_NB);
    // xa[j * 8 + k] (k < 8), dx[j], sx[j] exist for j < nb by the caller (all
    // 64-byte aligned by their types). Features by the caller.
    unsafe {
        let h = |p: *const u8| f16_to_f32(core::ptr::read_unaligned(p as *const u16));
        let mut prep = [const {
            Prepared {
                q: core::ptr::null(),
                qs: 0,
                wc: [0; MAX_NB],
                dw: [0.0; MAX_NB],
                mw: [0.0; MAX_NB],
            }
        }; RR];
        let wqp = wq.as_mut_ptr() as *mut [u8; 32];
        for (r, p) in prep.iter_mut().enumerate() {
            let wr = w.as_ptr().add((r0 + r) * rb);
            if F::Q4 {
                let dst = wqp.add(r * MAX_NB);
                for j in 0..nb {
                    let mut v = nibbles(wr.add(j * F::WB + F::QOFF));
                    if F::NIB_OFFSET != 0 {
                        v = _mm256_sub_epi8(v, _mm256_set1_epi8(F::NIB_OFFSET as i8));
                    }
                    _mm256_storeu_si256(dst.add(j) as *mut __m256i, v);
                }
                (p.q, p.qs) = (dst as *const u8, 32);
            } else {
                (p.q, p.qs) = (wr.add(F::QOFF), F::WB);
            }
            for j in 0..nb {
                p.wc[j] = corr32(p.q.add(j * p.qs));
                let b = wr.add(j * F::WB);
                p.dw[j] = h(b);
                if F::HAS_M {
                    p.mw[j] = h(b.add(2));
                }
            }
        }
        let xv = xa.as_ptr() as *const u8;
        let mut lanes = [[Z::fzero(); 8]; RR];
        for l in 0..8 {
            let mut acc = [Z::fzero(); RR];
            let mut j = l;
            while j < nb {
                let mut s = [Z::izero(); RR];
                for k in 0..8 {
                    let a = Z::load_i(xv.add((j * 8 + k) * 64));
                    for r in 0..RR {
                        let w4 = core::ptr::read_unaligned(
                            prep[r].q.add(j * prep[r].qs + 4 * k) as *const i32
                        );
                        s[r] = Z::dp_bcast(s[r], a, w4);
                    }
                }
                let dxv = Z::load_f(dx.as_ptr().add(j) as *const f32);
                for r in 0..RR {
                    let p = &prep[r];
                    // (sumi as f32) * (dw * dx), as the reference (a product
                    // of two values rounds the same in either order).
                    let mut term = Z::mul(
                        Z::cvt(Z::sub_set1(s[r], p.wc[j])),
                        Z::mul_set1(dxv, p.dw[j]),
                    );
                    if F::HAS_M {
                        let sxv = Z::load_f(sx.as_ptr().add(j) as *const f32);
                        term = Z::add(term, Z::mul_set1(sxv, p.mw[j]));
                    }
                    acc[r] = Z::add(acc[r], term);
                }
                j += 8;
            }
            for r in 0..RR {
                lanes[r][l] = acc[r];
            }
        }
        for r in 0..RR {
            // fold_lanes: lane i += lane i + 4, then + lane i + 2, then + lane i + 1.
            let [v0, v1, v2, v3, v4, v5, v6, v7] = lanes[r];
            let (v0, v1, v2, v3) = (
                Z::add(v0, v4),
                Z::add(v1, v5),
                Z::add(v2, v6),
                Z::add(v3, v7),
            );
            let (v0, v1) = (Z::add(v0, v2), Z::add(v1, v3));
            let mut o = F16L([0.0; TV]);
            Z::store_f(o.0.as_mut_ptr(), Z::add(v0, v1));
            let at = (r0 + r) * n + t0;
            if let (Some(dst), Some(src)) = (out.get_mut(at..at + tn), o.0.get(..tn)) {
                dst.copy_from_slice(src);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decode: one token, two blocks per 512-bit vector
// ---------------------------------------------------------------------------

/// Most blocks per row [`decode`] takes (its packed token lives on the stack:
/// 32 bytes per block plus 96 per 8 blocks; 16384 columns).
const DMAX_NB: usize = 512;
/// How far ahead of the weights decode prefetches, in bytes (as the AVX2 decode).
const DPF: usize = 3072;

/// 32 bytes, 32-byte aligned (8 lanes of i32 or f32).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct V32([u8; 32]);

/// Decode: `out[r] = dot(w row r, x)` for one token of `nb` blocks, with the
/// 512-bit `vpdpbusd` on pairs of blocks: the weights made unsigned (`w + 128`
/// for Q8_0, the raw nibble for Q4) and `K * sum(a)` per block subtracted
/// (`WFmt::K`, computed once for the token), as the 256-bit VNNI tiles do.
/// Per 8-block group: 4 vectors of blocks `(i, i + 4)` against the token's
/// packed pairs, reduced to the 8 block sums ([`Pair::reduce4`]), then the
/// reference's float steps into lane `j % 8`; the last `nb % 8` blocks go
/// through the reference formula ([`block_term`]) into their lanes. Returns
/// false (nothing written) for shapes it does not take.
///
/// # Safety
/// `Z`'s features and AVX2 + F16C present.
#[inline(always)]
pub(crate) unsafe fn decode<Z: Pair, F: WFmt>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    out: &mut [f32],
) -> bool {
    let nb = x.len() / F::AB;
    let rb = nb * F::WB;
    if rows == 0
        || nb == 0
        || nb > DMAX_NB
        || x.len() != nb * F::AB
        || w.len() != rows * rb
        || out.len() < rows
    {
        return false;
    }
    let ng = nb / 8;
    // Packed token: pair vectors [a_i | a_(i+4)] per group, K * sum(a) per
    // block, and the scales (Q4_1: also the sums `s`) as f32, per group.
    let mut xa = [V64([0; 64]); DMAX_NB / 2];
    let mut koff = [V32([0; 32]); DMAX_NB / 8];
    let mut dx = [V32([0; 32]); DMAX_NB / 8];
    let mut sx = [V32([0; 32]); DMAX_NB / 8];
    let h = |b: &[u8], i: usize| match b.get(i..i + 2) {
        Some(&[lo, hi]) => f16_to_f32(u16::from_le_bytes([lo, hi])),
        _ => 0.0,
    };
    let groups = x.chunks_exact(8 * F::AB).zip(xa.chunks_exact_mut(4));
    for ((xg, va), ((ko, d), s)) in
        groups.zip(koff.iter_mut().zip(dx.iter_mut()).zip(sx.iter_mut()))
    {
        for (j, b) in xg.chunks_exact(F::AB).enumerate() {
            let q = b.get(F::AOFF..F::AOFF + 32).unwrap_or(&[]);
            if let Some(dst) = va
                .get_mut(j % 4)
                .and_then(|v| v.0.get_mut(32 * (j / 4)..32 * (j / 4) + 32))
            {
                for (o, &v) in dst.iter_mut().zip(q) {
                    *o = v;
                }
            }
            let sum: i32 = q.iter().map(|&v| v as i8 as i32).sum();
            if let Some(o) = ko.0.get_mut(4 * j..4 * j + 4) {
                o.copy_from_slice(&(F::K * sum).to_le_bytes());
            }
            if let Some(o) = d.0.get_mut(4 * j..4 * j + 4) {
                o.copy_from_slice(&h(b, 0).to_le_bytes());
            }
            if let Some(o) = s.0.get_mut(4 * j..4 * j + 4) {
                o.copy_from_slice(&h(b, 2).to_le_bytes());
            }
        }
    }
    // SAFETY: row r < rows spans w[r * rb ..][..rb] (length checked above);
    // group g < ng reads its 8 blocks below (g + 1) * 8 * WB <= rb; xa[g * 4
    // + i], koff[g], dx[g], sx[g] exist for g < ng <= DMAX_NB / 8 (all aligned
    // by their types). Prefetches are hints that never fault. Features by the
    // caller.
    unsafe {
        let qload = |p: *const u8| {
            if F::Q4 {
                nibbles(p)
            } else {
                _mm256_loadu_si256(p as *const __m256i)
            }
        };
        for (r, o) in out.iter_mut().take(rows).enumerate() {
            let wr = w.as_ptr().add(r * rb);
            let mut acc = _mm256_setzero_ps();
            for g in 0..ng {
                let wp = wr.add(g * 8 * F::WB);
                let pf = wp.wrapping_add(DPF);
                let mut off = 0;
                while off < 8 * F::WB {
                    _mm_prefetch::<_MM_HINT_T0>(pf.wrapping_add(off) as *const i8);
                    off += 64;
                }
                let mut v = [Z::izero(); 4];
                for (i, vi) in v.iter_mut().enumerate() {
                    let mut u = Z::pair(
                        qload(wp.add(i * F::WB + F::QOFF)),
                        qload(wp.add((i + 4) * F::WB + F::QOFF)),
                    );
                    if !F::Q4 {
                        u = Z::flip(u);
                    }
                    let a = Z::load_i(xa.as_ptr().add(g * 4 + i) as *const u8);
                    *vi = Z::dp(Z::izero(), u, a);
                }
                let s = _mm256_sub_epi32(
                    Z::reduce4(v),
                    _mm256_load_si256(koff.as_ptr().add(g) as *const __m256i),
                );
                let d = _mm256_mul_ps(
                    scales8(wp, F::WB),
                    _mm256_load_ps(dx.as_ptr().add(g) as *const f32),
                );
                let mut term = _mm256_mul_ps(_mm256_cvtepi32_ps(s), d);
                if F::HAS_M {
                    let m = _mm256_mul_ps(
                        scales8(wp.add(2), F::WB),
                        _mm256_load_ps(sx.as_ptr().add(g) as *const f32),
                    );
                    term = _mm256_add_ps(term, m);
                }
                acc = _mm256_add_ps(acc, term);
            }
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
            let row = w.get(r * rb..(r + 1) * rb).unwrap_or(&[]);
            for j in ng * 8..nb {
                let wb = row.get(j * F::WB..(j + 1) * F::WB).unwrap_or(&[]);
                let xb = x.get(j * F::AB..(j + 1) * F::AB).unwrap_or(&[]);
                if let Some(l) = lanes.get_mut(j % 8) {
                    *l += block_term::<F>(wb, xb);
                }
            }
            *o = fold_lanes(lanes);
        }
    }
    true
}

/// One weight row x one token over `min(w.len() / WB, x.len() / AB)` blocks
/// with [`decode`]; None when it does not take the shape.
///
/// # Safety
/// As [`decode`].
#[inline(always)]
pub(crate) unsafe fn dot<Z: Pair, F: WFmt>(w: &[u8], x: &[u8]) -> Option<f32> {
    let nb = (w.len() / F::WB).min(x.len() / F::AB);
    let (w, x) = (w.get(..nb * F::WB)?, x.get(..nb * F::AB)?);
    let mut o = [0.0f32];
    // SAFETY: features by the caller.
    let ok = unsafe { decode::<Z, F>(w, 1, x, &mut o) };
    let [v] = o;
    ok.then_some(v)
}
