//! Armv8.1-M Helium (MVE) kernels (Cortex-M55): `VLDRB` loads 16 bytes,
//! `VMLADAVA.S8` multiplies 16 signed byte pairs and adds all products to a
//! general-purpose register (which must be even-numbered, hence the fixed
//! `r0`/`r2`/`r4`/`r8` accumulators). Stable `asm!`; it assembles only with
//! `-C target-cpu=cortex-m55` (rustc has no thumbv8.1m target).
//!
//! Each asm block names the Q registers it uses and clobbers the matching D
//! registers (`q<n>` is `d<2n>`, `d<2n+1>`). Sums are exact: `|sum| <= 2^19`.
//!
//! Also the activation quantizers (`quantize_row_q8_0`, `quantize_row_q8_1`),
//! bit-identical to the scalar reference; see "activation quantization" below.

use core::arch::asm;
use core::mem::MaybeUninit;

use super::{block_scales, f32_to_f16, fpscr_is_ieee, gemm_by, rows_dot};
use crate::kernels::scalar::{self, fold_lanes};
use crate::quant::{BlockQ8_0, BlockQ8_1, QK};

/// Exact Q8_0 block sums of 4 rows; the activations are loaded once.
///
/// # Safety
/// `a` and every `w[r]` must point to 32 readable bytes.
#[inline(always)]
unsafe fn sums_q8_x4(w: [*const u8; 4], a: *const u8) -> [i32; 4] {
    let (s0, s1, s2, s3): (i32, i32, i32, i32);
    // SAFETY: reads 32 bytes at `a` and at each `w[r]` (guaranteed by the caller);
    // writes only the named registers, whose D halves are declared clobbered.
    unsafe {
        asm!(
            "vldrb.u8 q0, [{a}]",
            "vldrb.u8 q1, [{a}, #16]",
            "vldrb.u8 q2, [{w0}]",
            "vldrb.u8 q3, [{w0}, #16]",
            "vmladav.s8 r0, q2, q0",
            "vldrb.u8 q2, [{w1}]",
            "vmladava.s8 r0, q3, q1",
            "vldrb.u8 q3, [{w1}, #16]",
            "vmladav.s8 r2, q2, q0",
            "vldrb.u8 q2, [{w2}]",
            "vmladava.s8 r2, q3, q1",
            "vldrb.u8 q3, [{w2}, #16]",
            "vmladav.s8 r4, q2, q0",
            "vldrb.u8 q2, [{w3}]",
            "vmladava.s8 r4, q3, q1",
            "vldrb.u8 q3, [{w3}, #16]",
            "vmladav.s8 r8, q2, q0",
            "vmladava.s8 r8, q3, q1",
            a = in(reg) a, w0 = in(reg) w[0], w1 = in(reg) w[1], w2 = in(reg) w[2],
            w3 = in(reg) w[3],
            out("r0") s0, out("r2") s1, out("r4") s2, out("r8") s3,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    [s0, s1, s2, s3]
}

/// Exact Q8_0 block sum of one row.
///
/// # Safety
/// `a` and `w` must point to 32 readable bytes.
#[inline(always)]
unsafe fn sums_q8_x1(w: *const u8, a: *const u8) -> i32 {
    let s: i32;
    // SAFETY: reads 32 bytes at `a` and `w` (guaranteed by the caller); writes
    // only the named registers, whose D halves are declared clobbered.
    unsafe {
        asm!(
            "vldrb.u8 q0, [{a}]",
            "vldrb.u8 q2, [{w}]",
            "vldrb.u8 q1, [{a}, #16]",
            "vmladav.s8 r0, q2, q0",
            "vldrb.u8 q3, [{w}, #16]",
            "vmladava.s8 r0, q3, q1",
            a = in(reg) a, w = in(reg) w, out("r0") s,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    s
}

/// Exact Q4_0 block sums `sum((q - 8) * a)` of 4 rows (16 nibble bytes each:
/// byte `k` holds elements `k` (low) and `k + 16` (high)).
///
/// # Safety
/// `a` must point to 32 readable bytes and every `w[r]` to 16.
#[inline(always)]
unsafe fn sums_q4_x4(w: [*const u8; 4], a: *const u8) -> [i32; 4] {
    let (s0, s1, s2, s3): (i32, i32, i32, i32);
    // SAFETY: reads 32 bytes at `a` and 16 at each `w[r]` (guaranteed by the
    // caller); writes only the named registers, whose D halves are clobbered.
    unsafe {
        asm!(
            "vldrb.u8 q0, [{a}]",
            "vldrb.u8 q1, [{a}, #16]",
            "vmov.i8 q4, #15",
            "vldrb.u8 q2, [{w0}]",
            "vand q3, q2, q4",
            "vshr.u8 q2, q2, #4",
            "vsub.i8 q3, q3, {e}",
            "vsub.i8 q2, q2, {e}",
            "vmladav.s8 r0, q3, q0",
            "vmladava.s8 r0, q2, q1",
            "vldrb.u8 q2, [{w1}]",
            "vand q3, q2, q4",
            "vshr.u8 q2, q2, #4",
            "vsub.i8 q3, q3, {e}",
            "vsub.i8 q2, q2, {e}",
            "vmladav.s8 r2, q3, q0",
            "vmladava.s8 r2, q2, q1",
            "vldrb.u8 q2, [{w2}]",
            "vand q3, q2, q4",
            "vshr.u8 q2, q2, #4",
            "vsub.i8 q3, q3, {e}",
            "vsub.i8 q2, q2, {e}",
            "vmladav.s8 r4, q3, q0",
            "vmladava.s8 r4, q2, q1",
            "vldrb.u8 q2, [{w3}]",
            "vand q3, q2, q4",
            "vshr.u8 q2, q2, #4",
            "vsub.i8 q3, q3, {e}",
            "vsub.i8 q2, q2, {e}",
            "vmladav.s8 r8, q3, q0",
            "vmladava.s8 r8, q2, q1",
            a = in(reg) a, w0 = in(reg) w[0], w1 = in(reg) w[1], w2 = in(reg) w[2],
            w3 = in(reg) w[3], e = in(reg) 8u32,
            out("r0") s0, out("r2") s1, out("r4") s2, out("r8") s3,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _, out("d8") _, out("d9") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    [s0, s1, s2, s3]
}

/// Exact Q4_0 block sum of one row.
///
/// # Safety
/// `a` must point to 32 readable bytes and `w` to 16.
#[inline(always)]
unsafe fn sums_q4_x1(w: *const u8, a: *const u8) -> i32 {
    let s: i32;
    // SAFETY: reads 32 bytes at `a` and 16 at `w` (guaranteed by the caller);
    // writes only the named registers, whose D halves are declared clobbered.
    unsafe {
        asm!(
            "vldrb.u8 q2, [{w}]",
            "vmov.i8 q4, #15",
            "vldrb.u8 q0, [{a}]",
            "vand q3, q2, q4",
            "vldrb.u8 q1, [{a}, #16]",
            "vshr.u8 q2, q2, #4",
            "vsub.i8 q3, q3, {e}",
            "vsub.i8 q2, q2, {e}",
            "vmladav.s8 r0, q3, q0",
            "vmladava.s8 r0, q2, q1",
            a = in(reg) a, w = in(reg) w, e = in(reg) 8u32, out("r0") s,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _, out("d8") _, out("d9") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    s
}

/// One Q8_0 block of 4 rows, integer and float part: the 4 exact sums (as in
/// [`sums_q8_x4`]) go to the lanes of a vector, become f32, are multiplied by
/// `dw * dx` (the 4 row scales gathered with `VLDRH.U32` at `offs`, converted
/// with `VCVTB.F32.F16`) and added to `acc` (`acc[r] += s[r] as f32 * (dw[r] * dx)`,
/// the same roundings in the same order as the scalar reference).
///
/// # Safety
/// `p + offs[r]` (`r < 4`) must point to a readable 34-byte Q8_0 block and be
/// 2-byte aligned; `pa` must point to the 32 quants of a Q8_0 block (its scale
/// in the 2 bytes before); `offs` and `acc` 4 readable (and writable) words.
#[inline(always)]
unsafe fn block_q8_x4(p: [*const u8; 4], offs: &[u32; 4], pa: *const u8, acc: &mut [f32; 4]) {
    // SAFETY: the reads are those the caller guarantees; the only write is `acc`;
    // the registers written are declared (D halves of q0-q3, r0/r2/r4/r8).
    unsafe {
        asm!(
            "vldrb.u8 q0, [{pa}]",
            "vldrb.u8 q1, [{pa}, #16]",
            "vldrb.u8 q2, [{p0}, #2]",
            "vldrb.u8 q3, [{p0}, #18]",
            "vmladav.s8 r0, q2, q0",
            "vldrb.u8 q2, [{p1}, #2]",
            "vmladava.s8 r0, q3, q1",
            "vldrb.u8 q3, [{p1}, #18]",
            "vmladav.s8 r2, q2, q0",
            "vldrb.u8 q2, [{p2}, #2]",
            "vmladava.s8 r2, q3, q1",
            "vldrb.u8 q3, [{p2}, #18]",
            "vmladav.s8 r4, q2, q0",
            "vldrb.u8 q2, [{p3}, #2]",
            "vmladava.s8 r4, q3, q1",
            "vldrb.u8 q3, [{p3}, #18]",
            "vmladav.s8 r8, q2, q0",
            "vmladava.s8 r8, q3, q1",
            // lanes (s0, s1, s2, s3) -> f32
            "vmov q0[2], q0[0], r0, r4",
            "vmov q0[3], q0[1], r2, r8",
            "vcvt.f32.s32 q0, q0",
            // dw of the 4 rows, dx, d = dw * dx
            "vldrw.u32 q1, [{offs}]",
            "vldrh.u32 q2, [{p0}, q1]",
            "ldrh r0, [{pa}, #-2]",
            "vmov s12, r0",
            "vcvtb.f32.f16 s12, s12",
            "vmov r0, s12",
            "vcvtb.f32.f16 q2, q2",
            "vmul.f32 q2, q2, r0",
            // acc += s * d
            "vmul.f32 q0, q0, q2",
            "vldrw.u32 q1, [{acc}]",
            "vadd.f32 q1, q1, q0",
            "vstrw.32 q1, [{acc}]",
            pa = in(reg) pa, p0 = in(reg) p[0], p1 = in(reg) p[1], p2 = in(reg) p[2],
            p3 = in(reg) p[3], offs = in(reg) offs.as_ptr(), acc = in(reg) acc.as_mut_ptr(),
            out("r0") _, out("r2") _, out("r4") _, out("r8") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            options(nostack),
        );
    }
}

/// 4 Q8_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q8_0_q8_0`
/// per row (NaN payloads included, see the end), integer and float parts both in Helium. Needs the rows equally
/// spaced and 2-byte aligned (as [`super::matvec`] passes a GGUF tensor's rows);
/// others take [`rows_q8_0_q8_0`].
pub fn rows4_q8_0_q8_0(w: &[&[u8]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    let base = w[0].as_ptr() as usize;
    let stride = (w[1].as_ptr() as usize).wrapping_sub(base);
    let even = (w.iter().zip(0usize..))
        .all(|(wr, r)| wr.as_ptr() as usize == base.wrapping_add(r.wrapping_mul(stride)));
    let Ok(st) = u32::try_from(stride) else {
        return rows_q8_0_q8_0(w, x);
    };
    if !even || !base.is_multiple_of(2) || !st.is_multiple_of(2) || st > u32::MAX / 3 {
        return rows_q8_0_q8_0(w, x);
    }
    let offs = [0, st, 2 * st, 3 * st];
    let mut nb = x.len();
    for wr in w {
        nb = nb.min(wr.len() / 34);
    }
    // acc[lane][row]: lane j % 8 of the scalar order, for 4 rows at once.
    let mut acc = [[0.0f32; 4]; 8];
    for (j, xb) in x.iter().enumerate().take(nb) {
        let p = w.map(|wr| wr.as_ptr().wrapping_add(j * 34));
        let Some(lane) = acc.get_mut(j % 8) else {
            break; // j % 8 < 8 = acc.len()
        };
        // SAFETY: `j < nb <= w[r].len() / 34`, so block `j` of every row is inside
        // it, at `w[0] + j * 34 + offs[r]` (rows are `stride` apart); `base` and
        // `stride` are even, so the scales are 2-byte aligned; `xb` is a whole
        // block (scale, then 32 quants).
        unsafe { block_q8_x4(p, &offs, xb.qs.as_ptr() as *const u8, lane) };
    }
    // row r's eight lanes are acc[0][r] .. acc[7][r] (r < 4 = the inner length)
    let out: [f32; 4] =
        core::array::from_fn(|r| fold_lanes(acc.map(|lane| lane.get(r).copied().unwrap_or(0.0))));
    // MVE float instructions return the default NaN where the scalar FPU
    // propagates an input NaN's payload and sign. Without NaN inputs both give
    // the same bits (finite f16 scales cannot overflow or underflow here, and
    // invalid operations give the default NaN on both); a NaN input always
    // reaches the result, so redo exactly those row groups the scalar-float way.
    if out.iter().any(|&v| nan_bits(v)) {
        return rows_q8_0_q8_0(w, x);
    }
    out
}

/// Whether `v` is a NaN, tested on its bits: LLVM vectorises `f32::is_nan`
/// over an array into MVE `VCMP`s, which under QEMU 7.2 did not flag NaNs.
#[inline(always)]
fn nan_bits(v: f32) -> bool {
    v.to_bits() & 0x7fff_ffff > 0x7f80_0000
}

/// 4 Q8_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q8_0_q8_0` per row.
pub fn rows_q8_0_q8_0(w: &[&[u8]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    rows_dot(w, x, 34, |j, xb| {
        let p = w.map(|wr| wr.as_ptr().wrapping_add(j * 34 + 2));
        // SAFETY: `rows_dot` calls with `j * 34 + 34 <= w[r].len()`, so 32 bytes
        // follow each `p[r]`; `xb.qs` is 32 bytes.
        unsafe { sums_q8_x4(p, xb.qs.as_ptr() as *const u8) }
    })
}

/// 4 Q4_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q4_0_q8_0` per row.
pub fn rows_q4_0_q8_0(w: &[&[u8]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    rows_dot(w, x, 18, |j, xb| {
        let p = w.map(|wr| wr.as_ptr().wrapping_add(j * 18 + 2));
        // SAFETY: `rows_dot` calls with `j * 18 + 18 <= w[r].len()`, so 16 bytes
        // follow each `p[r]`; `xb.qs` is 32 bytes.
        unsafe { sums_q4_x4(p, xb.qs.as_ptr() as *const u8) }
    })
}

/// Q8_0 weights x Q8_0 activations (the table entry).
pub fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    rows_dot(&[w], x, 34, |j, xb| {
        let p = w.as_ptr().wrapping_add(j * 34 + 2);
        // SAFETY: `rows_dot` calls with `j * 34 + 34 <= w.len()`; `xb.qs` is 32 bytes.
        [unsafe { sums_q8_x1(p, xb.qs.as_ptr() as *const u8) }]
    })[0]
}

/// Q4_0 weights x Q8_0 activations (the table entry).
pub fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    rows_dot(&[w], x, 18, |j, xb| {
        let p = w.as_ptr().wrapping_add(j * 18 + 2);
        // SAFETY: `rows_dot` calls with `j * 18 + 18 <= w.len()`; `xb.qs` is 32 bytes.
        [unsafe { sums_q4_x1(p, xb.qs.as_ptr() as *const u8) }]
    })[0]
}

/// Batched Q8_0 x Q8_0 (the table's `gemm_q8_0_q8_0`): the all-rows kernel
/// ([`q8_all`]) when the shapes allow it (a block count that is a multiple of
/// 4), else 4 rows at a time through [`rows4_q8_0_q8_0`].
pub fn gemm_q8_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    let all = AllRows {
        act: act_q8,
        kernel: q8_all,
        four: rows_q8_0_q8_0,
        one: vec_dot_q8_0_q8_0,
    };
    if !all_rows::<ActQ8, 34, { MAX_NB / 2 }>(w, rows, x, n, out, all) {
        gemm_by::<4>(w, rows, x, n, out, 34, rows4_q8_0_q8_0, vec_dot_q8_0_q8_0)
    }
}

/// Batched Q4_0 x Q8_0 (the table's `gemm_q4_0_q8_0`): the all-rows kernel
/// ([`q4_all`]) when the shapes allow it (a block count that is a multiple of
/// 4), else 4 rows at a time through [`rows_q4_0_q8_0`].
pub fn gemm_q4_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    let all = AllRows {
        act: act_q4,
        kernel: q4_all,
        four: rows_q4_0_q8_0,
        one: vec_dot_q4_0_q8_0,
    };
    if !all_rows::<ActQ4, 18, MAX_NB>(w, rows, x, n, out, all) {
        gemm_by::<4>(w, rows, x, n, out, 18, rows_q4_0_q8_0, vec_dot_q4_0_q8_0)
    }
}

// ---- activation records ------------------------------------------------------
//
// The all-rows kernels below first copy the activations into records that their
// loop reads with post-incremented loads (the f32 scale first, so that no
// register is spent on a second pointer); the copy is made once per activation
// row and shared by all rows of the call (with `matmul`'s n = 1 row tiles, 64
// rows).

/// Most blocks per row the all-rows kernels take (the records are on the stack).
const MAX_NB: usize = 64;

/// Two Q8_0 activation blocks for [`q8_all`]: the scales widened to f32 (one
/// `LDRD` in the kernel), the quants.
#[repr(C)]
#[derive(Clone, Copy)]
struct ActQ8 {
    d: [f32; 2],
    qs: [[i8; 32]; 2],
}

/// A Q8_0 activation block for [`q4_all`]: the scale widened to f32, `-8 *
/// sum(qs)` (so that `sum((q - 8) * a) = sum(q * a) + neg8`), the quants.
#[repr(C)]
#[derive(Clone, Copy)]
struct ActQ4 {
    d: f32,
    neg8: i32,
    qs: [i8; 32],
}

/// The [`ActQ8`] records of `nb` blocks (`nb / 2` records): per block `VCVTB`
/// of the scale, two `VLDRB`/`VSTRB` of the quants.
///
/// # Safety
/// `x` must point to `nb >= 2` blocks (`nb` even), `a` to room for `nb / 2` records.
unsafe fn act_q8(x: *const BlockQ8_0, a: *mut ActQ8, nb: usize) {
    // SAFETY: reads the `nb` blocks and writes the `nb / 2` records the caller
    // guarantees; writes only the declared registers (D halves of q0-q2).
    unsafe {
        asm!(
            "dls lr, {n}",
            "2:",
            "ldrh {t}, [{x}], #2",
            "vmov s0, {t}",
            "vcvtb.f32.f16 s0, s0",
            "vldrb.u8 q1, [{x}], #16",
            "vldrb.u8 q2, [{x}], #16",
            "ldrh {t}, [{x}], #2",
            "vmov s1, {t}",
            "vcvtb.f32.f16 s1, s1",
            "vstmia {a}!, {{s0, s1}}",
            "vstrb.8 q1, [{a}], #16",
            "vstrb.8 q2, [{a}], #16",
            "vldrb.u8 q1, [{x}], #16",
            "vldrb.u8 q2, [{x}], #16",
            "vstrb.8 q1, [{a}], #16",
            "vstrb.8 q2, [{a}], #16",
            "le lr, 2b",
            n = in(reg) nb / 2,
            x = inout(reg) x => _,
            a = inout(reg) a => _,
            t = out(reg) _,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            options(nostack),
        );
    }
}

/// The [`ActQ4`] records of `nb` blocks: as [`act_q8`], plus `VADDV` of the
/// quants for `neg8 = -8 * sum`.
///
/// # Safety
/// As [`act_q8`].
unsafe fn act_q4(x: *const BlockQ8_0, a: *mut ActQ4, nb: usize) {
    // SAFETY: as in `act_q8` (registers: D halves of q0-q2, r0, lr).
    unsafe {
        asm!(
            "dls lr, {n}",
            "2:",
            "ldrh {t}, [{x}], #2",
            "vmov s0, {t}",
            "vcvtb.f32.f16 s0, s0",
            "vstmia {a}!, {{s0}}",
            "vldrb.u8 q1, [{x}], #16",
            "vldrb.u8 q2, [{x}], #16",
            "vaddv.s8 r0, q1",
            "vaddva.s8 r0, q2",
            "lsls r0, r0, #3",
            "rsbs r0, r0, #0",
            "str r0, [{a}], #4",
            "vstrb.8 q1, [{a}], #16",
            "vstrb.8 q2, [{a}], #16",
            "le lr, 2b",
            n = in(reg) nb,
            x = inout(reg) x => _,
            a = inout(reg) a => _,
            t = out(reg) _,
            out("r0") _, out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            options(nostack),
        );
    }
}

// ---- all-rows kernels ----------------------------------------------------------
//
// One asm call runs every 4-row group of the matrix (the loop over groups is in
// the assembly too): per block two activation `VLDRB` and dx (one `LDRD` for two
// blocks in Q8_0, with neg8 in Q4_0) shared by the 4 rows, two `VLDRB` + two
// `VMLADAVA` per row, then the float part for the 4 rows at once: the 4 exact
// sums moved into one vector (two `VMOV`), `VCVT`, the 4 row scales gathered
// (`VLDRH.U32`) and widened (`VCVTB`), `VMUL` by dx, `VMUL` by the sums, each
// row seeing the scalar operations in the scalar order (`(s as f32) * (dw *
// dx)`, then `acc[j % 8] + term`, each rounded once). The lane accumulators hold
// one row per element; in the Q8_0 kernel lanes 0-4 stay in `q4`-`q7` and `q3`
// (lanes 5-7 on the stack; Q4_0: see [`q4_all`]), so most blocks add their terms
// with one `VADD` instead of a load, an add, a store and a pointer wrap. That
// needs a fixed lane per instruction, so the loop body is unrolled to 4 blocks
// (lanes 0-3) + 4 blocks (lanes 4-7), and the block count must be a multiple of
// 4. After a group the lanes are folded by halves with 7 `VADD`s (the 4 rows at
// once), the 4 results stored, and the largest `bits << 1` of all results kept
// to detect NaNs (see [`rows4_q8_0_q8_0`]).
//
// Registers: r1 the records, r3/r5/r9/r10 the 4 rows, r0/r2/r4/r8 the sums (the
// even registers `VMLADAVA` needs), r11/r12 dx (and neg8), lr the block count;
// q0/q1 temporaries, q2 the gather offsets. On the stack: the lanes that are not
// in registers, the `Job` pointer and the running NaN maximum.

/// What the all-rows kernels read (and update: `out`, `groups`).
#[repr(C)]
struct Job {
    /// Row 0's first quants (block 0 + 2).
    p: *const u8,
    /// The activation records.
    a: *const u8,
    /// Blocks per row / 4 (>= 1).
    units: u32,
    /// 4-row groups (>= 1).
    groups: u32,
    /// Where the next group's 4 results go.
    out: *mut f32,
    /// Bytes from one group's results to the next (`16 * n`).
    ostep: u32,
    /// Bytes per row.
    rb: u32,
    _pad: u32,
    /// Offsets of the 4 rows' scales of block `j` from row 0's pointer after it
    /// has moved to block `j + 1`.
    offs: [u32; 4],
    /// Offsets of the 4 results from `out` (`4 * n * r`).
    soffs: [u32; 4],
}

/// One Q8_0 block of 4 rows (registers as in [`q8_all`]): `$dxload` (the LDRD of
/// two blocks' dx, or nothing), dx in `$dx`, the term added by `$acc`.
macro_rules! q8_block {
    ($dxload:literal, $dx:literal, $acc:expr) => {
        concat!(
            $dxload,
            "vldrb.u8 q0, [r1], #16\n",
            "vldrb.u8 q1, [r3], #16\n",
            "vmladav.s8 r0, q1, q0\n",
            "vldrb.u8 q1, [r5], #16\n",
            "vmladav.s8 r2, q1, q0\n",
            "vldrb.u8 q1, [r9], #16\n",
            "vmladav.s8 r4, q1, q0\n",
            "vldrb.u8 q1, [r10], #16\n",
            "vmladav.s8 r8, q1, q0\n",
            "vldrb.u8 q0, [r1], #16\n",
            "vldrb.u8 q1, [r3], #18\n",
            "vmladava.s8 r0, q1, q0\n",
            "vldrb.u8 q1, [r5], #18\n",
            "vmladava.s8 r2, q1, q0\n",
            "vldrb.u8 q1, [r9], #18\n",
            "vmladava.s8 r4, q1, q0\n",
            "vldrb.u8 q1, [r10], #18\n",
            "vmladava.s8 r8, q1, q0\n",
            q_float!($dx),
            $acc
        )
    };
}

/// The float part of one block of 4 rows: sums `r0/r2/r4/r8` -> `q0`, times the
/// 4 rows' `dw` (gathered at `r3 + q2`) times dx (`$dx`); the term is left in `q0`.
macro_rules! q_float {
    ($dx:literal) => {
        concat!(
            "vmov q0[2], q0[0], r0, r4\n",
            "vmov q0[3], q0[1], r2, r8\n",
            "vcvt.f32.s32 q0, q0\n",
            "vldrh.u32 q1, [r3, q2]\n",
            "vcvtb.f32.f16 q1, q1\n",
            "vmul.f32 q1, q1, ",
            $dx,
            "\n",
            "vmul.f32 q0, q0, q1\n",
        )
    };
}

/// Lane in a register: `$q += q0`.
macro_rules! lane_reg {
    ($q:literal) => {
        concat!("vadd.f32 ", $q, ", ", $q, ", q0\n")
    };
}

/// Lane on the stack at `sp + $off`.
macro_rules! lane_mem {
    ($off:literal) => {
        concat!(
            "vldrw.u32 q1, [sp, #",
            $off,
            "]\n",
            "vadd.f32 q1, q1, q0\n",
            "vstrw.32 q1, [sp, #",
            $off,
            "]\n",
        )
    };
}

/// Group loop around `$b0`..`$b7` (the 8 block bodies of lanes 0..7): sets up
/// the row pointers and lanes, runs the blocks, folds, stores, loops.
macro_rules! all_rows_asm {
    ($b0:expr, $b1:expr, $b2:expr, $b3:expr, $b4:expr, $b5:expr, $b6:expr, $b7:expr) => {
        concat!(
            "sub sp, sp, #64\n",
            "str r12, [sp, #48]\n",
            "vldrw.u32 q2, [r12, #32]\n",
            "ldr r3, [r12]\n",
            "mov.w r0, #0\n",
            "str r0, [sp, #52]\n",
            "3:\n",
            "ldr r0, [sp, #48]\n",
            "ldrd r1, lr, [r0, #4]\n",
            "ldr r2, [r0, #24]\n",
            "add r5, r3, r2\n",
            "add r9, r5, r2\n",
            "add r10, r9, r2\n",
            "vmov.i32 q3, #0\n",
            "vmov.i32 q4, #0\n",
            "vmov.i32 q5, #0\n",
            "vmov.i32 q6, #0\n",
            "vmov.i32 q7, #0\n",
            "vstrw.32 q3, [sp]\n",
            "vstrw.32 q3, [sp, #16]\n",
            "vstrw.32 q3, [sp, #32]\n",
            "dls lr, lr\n",
            "4:\n",
            $b0,
            $b1,
            $b2,
            $b3,
            "subs lr, lr, #1\n",
            "beq 5f\n",
            $b4,
            $b5,
            $b6,
            $b7,
            "le lr, 4b\n",
            "5:\n",
            // fold by halves, 4 rows at once: L0 += L4, L1 += L5, L2 += L6,
            // L3 += L7; L0 += L2, L1 += L3; L0 += L1
            "vadd.f32 q4, q4, q3\n",
            "vldrw.u32 q0, [sp]\n",
            "vadd.f32 q5, q5, q0\n",
            "vldrw.u32 q0, [sp, #16]\n",
            "vadd.f32 q6, q6, q0\n",
            "vldrw.u32 q0, [sp, #32]\n",
            "vadd.f32 q7, q7, q0\n",
            "vadd.f32 q4, q4, q6\n",
            "vadd.f32 q5, q5, q7\n",
            "vadd.f32 q4, q4, q5\n",
            "ldr r0, [sp, #48]\n",
            "ldrd r2, r4, [r0, #16]\n",
            "vldrw.u32 q1, [r0, #48]\n",
            "vstrw.32 q4, [r2, q1]\n",
            "add r2, r2, r4\n",
            "str r2, [r0, #16]\n",
            "vshl.i32 q0, q4, #1\n",
            "ldr r4, [sp, #52]\n",
            "vmaxv.u32 r4, q0\n",
            "str r4, [sp, #52]\n",
            "mov r3, r10\n",
            "ldr r2, [r0, #12]\n",
            "subs r2, r2, #1\n",
            "str r2, [r0, #12]\n",
            "bne 3b\n",
            "ldr r12, [sp, #52]\n",
            "add sp, sp, #64\n",
        )
    };
}

/// The all-rows Q8_0 kernel: every 4-row group of `job` (see [`Job`]) times
/// the [`ActQ8`] records; returns the largest `bits << 1` of the results.
///
/// # Safety
/// `job.groups * 4` rows of `job.units * 4` 34-byte blocks, `job.rb` bytes
/// apart, must be readable from `job.p - 2` (an even address, `job.rb` even),
/// the records (`job.units * 2` [`ActQ8`]) readable, and `job.groups * 4`
/// results writable at `job.out + job.soffs[r] + g * job.ostep`.
unsafe fn q8_all(job: &mut Job) -> u32 {
    let max: u32;
    // SAFETY: reads the rows and records and writes the results the caller
    // guarantees, and `job`; uses 64 bytes of stack below `sp` (restored);
    // writes only the declared registers (D halves of q0-q7).
    unsafe {
        asm!(
            all_rows_asm!(
                q8_block!("ldrd r11, r12, [r1], #8\n", "r11", lane_reg!("q4")),
                q8_block!("", "r12", lane_reg!("q5")),
                q8_block!("ldrd r11, r12, [r1], #8\n", "r11", lane_reg!("q6")),
                q8_block!("", "r12", lane_reg!("q7")),
                q8_block!("ldrd r11, r12, [r1], #8\n", "r11", lane_reg!("q3")),
                q8_block!("", "r12", lane_mem!("0")),
                q8_block!("ldrd r11, r12, [r1], #8\n", "r11", lane_mem!("16")),
                q8_block!("", "r12", lane_mem!("32"))
            ),
            inout("r12") job as *mut Job => max,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            out("d6") _, out("d7") _, out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
        );
    }
    max
}

/// An all-rows kernel and its companions.
struct AllRows<A> {
    /// Writes the records of the activation blocks (`(blocks, records, count)`).
    act: unsafe fn(*const BlockQ8_0, *mut A, usize),
    /// See [`q8_all`].
    kernel: unsafe fn(&mut Job) -> u32,
    /// 4 rows with scalar float arithmetic (for NaN results).
    four: fn(&[&[u8]; 4], &[BlockQ8_0]) -> [f32; 4],
    /// One row.
    one: fn(&[u8], &[BlockQ8_0]) -> f32,
}

/// The batched form (the layout and shape checks of `scalar::gemm_with`)
/// through an all-rows kernel; the rows left over through `one`, row groups
/// whose result has a NaN again through `four`. Returns false (doing nothing)
/// if the shapes do not fit the kernel: a block count that is not a multiple
/// of 4 or more than [`MAX_NB`], or an odd weight address.
#[inline(always)]
fn all_rows<A: Copy, const BS: usize, const RECS: usize>(
    w: &[u8],
    rows: usize,
    x: &[BlockQ8_0],
    n: usize,
    out: &mut [f32],
    k: AllRows<A>,
) -> bool {
    if rows == 0 || n == 0 || !x.len().is_multiple_of(n) || n > 1 << 20 {
        return false;
    }
    let nb = x.len() / n;
    let rb = nb * BS;
    if nb == 0 || !nb.is_multiple_of(4) || nb > MAX_NB || w.len() != rows * rb {
        return false;
    }
    if out.len() < rows * n {
        return false;
    }
    let (Ok(st), Ok(groups), Ok(n4)) = (
        u32::try_from(rb),
        u32::try_from(rows / 4),
        u32::try_from(4 * n),
    ) else {
        return false;
    };
    if !(w.as_ptr() as usize).is_multiple_of(2) || st > u32::MAX / 4 {
        return false;
    }
    let back = BS as u32 + 2;
    let offs = [
        0u32.wrapping_sub(back),
        st.wrapping_sub(back),
        (2 * st).wrapping_sub(back),
        (3 * st).wrapping_sub(back),
    ];
    // RECS records hold MAX_NB blocks (one or two per record)
    let mut recs = [const { MaybeUninit::<A>::uninit() }; RECS];
    let row = |r: usize| w.get(r * rb..(r + 1) * rb).unwrap_or(&[]);
    for t in 0..n {
        let xr = x.get(t * nb..(t + 1) * nb).unwrap_or(&[]);
        if xr.len() != nb {
            return true; // unreachable: `x.len() == n * nb`
        }
        // SAFETY: `xr` is `nb <= MAX_NB` blocks (`nb` a multiple of 4), `recs` has
        // room for the records of MAX_NB blocks.
        unsafe { (k.act)(xr.as_ptr(), recs.as_mut_ptr().cast::<A>(), nb) };
        if groups > 0 {
            let mut job = Job {
                p: w.as_ptr().wrapping_add(2),
                a: recs.as_ptr().cast::<u8>(),
                units: (nb / 4) as u32,
                groups,
                out: out.as_mut_ptr().wrapping_add(t),
                rb: st,
                ostep: 4 * n4,
                _pad: 0,
                offs,
                soffs: [0, n4, 2 * n4, 3 * n4],
            };
            // SAFETY: `groups * 4 <= rows` rows of `nb = 4 * units` blocks, `rb`
            // apart, are inside `w` (`w.len() == rows * rb`), starting at an even
            // address (`rb` is even: BS is); the first `nb` records were written
            // above; result `r` of group `g` goes to `out[(4 * g + r) * n + t]`,
            // inside `out` (`out.len() >= rows * n`).
            let max = unsafe { (k.kernel)(&mut job) };
            if max > 0xff00_0000 {
                // MVE float instructions return the default NaN where the scalar
                // FPU propagates an input NaN's payload (see `rows4_q8_0_q8_0`).
                for g in 0..rows / 4 {
                    let r = 4 * g;
                    let nan = (r..r + 4).any(|i| out.get(i * n + t).is_some_and(|&v| nan_bits(v)));
                    if nan {
                        let res = (k.four)(&core::array::from_fn(|i| row(r + i)), xr);
                        for (i, v) in res.into_iter().enumerate() {
                            if let Some(o) = out.get_mut((r + i) * n + t) {
                                *o = v;
                            }
                        }
                    }
                }
            }
        }
        for r in (rows / 4) * 4..rows {
            if let Some(o) = out.get_mut(r * n + t) {
                *o = (k.one)(row(r), xr);
            }
        }
    }
    true
}

/// One Q4_0 block of 4 rows (registers as in [`q4_all`]), the term added by `$acc`.
macro_rules! q4_block {
    ($acc:expr) => {
        concat!(
            "ldrd r11, r12, [r1], #8\n",
            "vldrb.u8 q0, [r1], #16\n",
            "vldrb.u8 q1, [r1], #16\n",
            q4_row!("r3", "r0", "vmladav"),
            q4_row!("r5", "r2", "vmladav"),
            q4_row!("r9", "r4", "vmladav"),
            q4_row!("r10", "r8", "vmladav"),
            "vmov q0[2], q0[0], r0, r4\n",
            "vmov q0[3], q0[1], r2, r8\n",
            "vadd.i32 q0, q0, r12\n",
            "vcvt.f32.s32 q0, q0\n",
            "vldrh.u32 q1, [r3, q2]\n",
            "vcvtb.f32.f16 q1, q1\n",
            "vmul.f32 q1, q1, r11\n",
            "vmul.f32 q0, q0, q1\n",
            $acc
        )
    };
}

/// One row of a Q4_0 block: the 16 nibble bytes at `$p` (which moves to the
/// next block's), low nibbles (`q4`, mask `q5`) times `q0`, high (`q3`) times `q1`.
macro_rules! q4_row {
    ($p:literal, $s:literal, $op:literal) => {
        concat!(
            "vldrb.u8 q3, [",
            $p,
            "], #18\n",
            "vand q4, q3, q5\n",
            "vshr.u8 q3, q3, #4\n",
            $op,
            ".s8 ",
            $s,
            ", q4, q0\n",
            "vmladava.s8 ",
            $s,
            ", q3, q1\n",
        )
    };
}

/// Lane in a register for [`q4_all`]: `$q += q0`.
macro_rules! lane_reg4 {
    ($q:literal) => {
        concat!("vadd.f32 ", $q, ", ", $q, ", q0\n")
    };
}

/// The all-rows Q4_0 kernel: as [`q8_all`] for 18-byte Q4_0 blocks times the
/// [`ActQ4`] records (`job.offs[r] = r * rb - 20`). Per row one `VLDRB` of the
/// 16 nibble bytes, `VAND`/`VSHR` to the low and high nibbles (0..=15) and two
/// `VMLADAVA`; the offset 8 is taken out once per block for the 4 rows (`+ neg8`
/// on the vector of sums; dx and neg8 come with one `LDRD`). The nibble work
/// needs two more Q registers and the mask, so only lanes 0 and 1 stay in
/// registers (`q6`, `q7`), lanes 2-7 are on the stack.
///
/// # Safety
/// As [`q8_all`], with 18-byte blocks and `job.units * 4` [`ActQ4`] records.
unsafe fn q4_all(job: &mut Job) -> u32 {
    let max: u32;
    // SAFETY: reads the rows and records and writes the results the caller
    // guarantees, and `job`; uses 112 bytes of stack below `sp` (restored);
    // writes only the declared registers (D halves of q0-q7).
    unsafe {
        asm!(
            concat!(
                "sub sp, sp, #112\n",
                "str r12, [sp, #96]\n",
                "vldrw.u32 q2, [r12, #32]\n",
                "ldr r3, [r12]\n",
                "mov.w r0, #0\n",
                "str r0, [sp, #100]\n",
                "vmov.i8 q5, #15\n",
                "3:\n",
                "ldr r0, [sp, #96]\n",
                "ldrd r1, lr, [r0, #4]\n",
                "ldr r2, [r0, #24]\n",
                "add r5, r3, r2\n",
                "add r9, r5, r2\n",
                "add r10, r9, r2\n",
                "vmov.i32 q6, #0\n",
                "vmov.i32 q7, #0\n",
                "vmov.i32 q3, #0\n",
                "vstrw.32 q3, [sp]\n",
                "vstrw.32 q3, [sp, #16]\n",
                "vstrw.32 q3, [sp, #32]\n",
                "vstrw.32 q3, [sp, #48]\n",
                "vstrw.32 q3, [sp, #64]\n",
                "vstrw.32 q3, [sp, #80]\n",
                "dls lr, lr\n",
                "4:\n",
                q4_block!(lane_reg4!("q6")),
                q4_block!(lane_reg4!("q7")),
                q4_block!(lane_mem!("0")),
                q4_block!(lane_mem!("16")),
                "subs lr, lr, #1\n",
                "beq 5f\n",
                q4_block!(lane_mem!("32")),
                q4_block!(lane_mem!("48")),
                q4_block!(lane_mem!("64")),
                q4_block!(lane_mem!("80")),
                "le lr, 4b\n",
                "5:\n",
                // fold by halves, 4 rows at once (L0 q6, L1 q7, L2-L7 on the stack)
                "vldrw.u32 q0, [sp, #32]\n",
                "vadd.f32 q6, q6, q0\n",
                "vldrw.u32 q0, [sp, #48]\n",
                "vadd.f32 q7, q7, q0\n",
                "vldrw.u32 q0, [sp]\n",
                "vldrw.u32 q1, [sp, #64]\n",
                "vadd.f32 q0, q0, q1\n",
                "vldrw.u32 q1, [sp, #16]\n",
                "vldrw.u32 q3, [sp, #80]\n",
                "vadd.f32 q1, q1, q3\n",
                "vadd.f32 q6, q6, q0\n",
                "vadd.f32 q7, q7, q1\n",
                "vadd.f32 q6, q6, q7\n",
                "ldr r0, [sp, #96]\n",
                "ldrd r2, r4, [r0, #16]\n",
                "vldrw.u32 q1, [r0, #48]\n",
                "vstrw.32 q6, [r2, q1]\n",
                "add r2, r2, r4\n",
                "str r2, [r0, #16]\n",
                "vshl.i32 q0, q6, #1\n",
                "ldr r4, [sp, #100]\n",
                "vmaxv.u32 r4, q0\n",
                "str r4, [sp, #100]\n",
                "mov r3, r10\n",
                "ldr r2, [r0, #12]\n",
                "subs r2, r2, #1\n",
                "str r2, [r0, #12]\n",
                "bne 3b\n",
                "ldr r12, [sp, #100]\n",
                "add sp, sp, #112\n",
            ),
            inout("r12") job as *mut Job => max,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            out("d6") _, out("d7") _, out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
        );
    }
    max
}

// ---- activation quantization -------------------------------------------------
//
// Per 32-value block, as `scalar::quantize_row_q8_0`: `amax = max |x|` (f32::max,
// so NaNs are skipped), `d = amax / 127`, `id = 1 / d` (0 if d == 0), `q =
// round_half_even(x * id) as i8`, `d` stored as f16. Two asm steps around the
// scalar divisions:
// - amax on the bits: `max(bits(x) << 1)` (`VSHL` + `VMAXV.U32`) is `bits(|x|) << 1`
//   of the largest magnitude, exact for subnormals, and above `0xff00_0000`
//   exactly when the block holds a NaN;
// - `VMUL.F32` by `id`, `VCVTN.S32.F32` (round to nearest, ties to even, NaN to
//   0, saturating), then two saturating narrowings (`VQMOVNB/T.S32`, `.S16`),
//   which is `as i8`'s saturation; `VLD4` de-interleaves the loads so that the
//   bottom/top narrowings put the bytes back in order.
// MVE float arithmetic flushes subnormal inputs to zero and gives the default
// NaN, where the scalar FPU does neither. So the vector step takes only blocks
// without NaN (the scalar amax then does not depend on how `f32::max` treats a
// signalling NaN, which `VMAXNM` does not skip) and with `amax == 0` or `amax
// >= 2^-100`: then `id <= ~2^107`, every subnormal `x` has `|x * id| < 2^-19`
// (0 after rounding either way), every product of normals is rounded
// identically, and a product the vector flushes is below 2^-126 (0 either way).
// The other blocks go through the scalar reference itself (a test that lets
// subnormal-amax blocks through fails under QEMU). Blocks with amax = inf take
// the vector step: `id = 0`, and `x * 0` is 0 or NaN (-> 0) on both. Rows
// run under an FPSCR without the IEEE defaults ([`super::fpscr_is_ieee`]) go
// through the scalar reference whole (the scalar float steps and `VCVTB`
// follow FPSCR, the software rounding and f16 conversion do not).

/// `max(bits(x[i]) << 1)` over one block of 32 values.
///
/// # Safety
/// `x` must point to 32 readable, 4-byte aligned f32.
#[inline(always)]
unsafe fn amax2_block(x: *const f32) -> u32 {
    let m: u32;
    // SAFETY: reads 128 bytes at `x`, 4-byte aligned (guaranteed by the caller);
    // integer vector instructions only (no flags); q0/q1 declared clobbered.
    unsafe {
        asm!(
            "vldrw.u32 q0, [{x}]",
            "vldrw.u32 q1, [{x}, #16]",
            "vshl.i32 q0, q0, #1",
            "vshl.i32 q1, q1, #1",
            "vmaxv.u32 {m}, q0",
            "vldrw.u32 q0, [{x}, #32]",
            "vmaxv.u32 {m}, q1",
            "vldrw.u32 q1, [{x}, #48]",
            "vshl.i32 q0, q0, #1",
            "vshl.i32 q1, q1, #1",
            "vmaxv.u32 {m}, q0",
            "vldrw.u32 q0, [{x}, #64]",
            "vmaxv.u32 {m}, q1",
            "vldrw.u32 q1, [{x}, #80]",
            "vshl.i32 q0, q0, #1",
            "vshl.i32 q1, q1, #1",
            "vmaxv.u32 {m}, q0",
            "vldrw.u32 q0, [{x}, #96]",
            "vmaxv.u32 {m}, q1",
            "vldrw.u32 q1, [{x}, #112]",
            "vshl.i32 q0, q0, #1",
            "vshl.i32 q1, q1, #1",
            "vmaxv.u32 {m}, q0",
            "vmaxv.u32 {m}, q1",
            x = in(reg) x,
            m = inout(reg) 0u32 => m,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    m
}

/// 16 values from `{x}` (post-incremented by 64) times `{id}`, rounded and
/// saturated to 16 bytes in `q6` (in order); uses q0-q6.
macro_rules! quant16 {
    () => {
        concat!(
            "vld40.32 {{q0, q1, q2, q3}}, [{x}]\n",
            "vld41.32 {{q0, q1, q2, q3}}, [{x}]\n",
            "vld42.32 {{q0, q1, q2, q3}}, [{x}]\n",
            "vld43.32 {{q0, q1, q2, q3}}, [{x}]!\n",
            // q0 = x0, x4, x8, x12; q1 = x1, x5, ..; q2 = x2, x6, ..; q3 = x3, x7, ..
            "vmul.f32 q0, q0, {id}\n",
            "vmul.f32 q1, q1, {id}\n",
            "vmul.f32 q2, q2, {id}\n",
            "vmul.f32 q3, q3, {id}\n",
            "vcvtn.s32.f32 q0, q0\n",
            "vcvtn.s32.f32 q1, q1\n",
            "vcvtn.s32.f32 q2, q2\n",
            "vcvtn.s32.f32 q3, q3\n",
            // q4 = x0, x2, x4, .., x14 and q5 = x1, x3, .., x15 (i16)
            "vqmovnb.s32 q4, q0\n",
            "vqmovnt.s32 q4, q2\n",
            "vqmovnb.s32 q5, q1\n",
            "vqmovnt.s32 q5, q3\n",
            // q6 = x0, x1, .., x15 (i8)
            "vqmovnb.s16 q6, q4\n",
            "vqmovnt.s16 q6, q5\n",
        )
    };
}

/// `q[i] = round_half_even(x[i] * id)` saturated to i8, for one block of 32.
///
/// # Safety
/// `x` must point to 32 readable, 4-byte aligned f32 and `q` to 32 writable bytes.
#[inline(always)]
unsafe fn quant_block(x: *const f32, id: f32, q: *mut i8) {
    // SAFETY: reads 128 bytes at `x` (4-byte aligned) and writes 32 at `q`
    // (guaranteed by the caller); q0-q6 declared clobbered; the float and
    // saturating instructions may set FPSCR flags, hence no `preserves_flags`.
    unsafe {
        asm!(
            quant16!(),
            "vstrb.8 q6, [{q}]",
            quant16!(),
            "vstrb.8 q6, [{q}, #16]",
            x = inout(reg) x => _,
            id = in(reg) id.to_bits(),
            q = in(reg) q,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            out("d6") _, out("d7") _, out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _,
            options(nostack),
        );
    }
}

/// As [`quant_block`], returning `sum(q)` (`VADDV.S8`).
///
/// # Safety
/// As [`quant_block`].
#[inline(always)]
unsafe fn quant_block_sum(x: *const f32, id: f32, q: *mut i8) -> i32 {
    let s: i32;
    // SAFETY: as in `quant_block`, plus r0 (declared).
    unsafe {
        asm!(
            quant16!(),
            "vstrb.8 q6, [{q}]",
            "vaddv.s8 r0, q6",
            quant16!(),
            "vstrb.8 q6, [{q}, #16]",
            "vaddva.s8 r0, q6",
            x = inout(reg) x => _,
            id = in(reg) id.to_bits(),
            q = in(reg) q,
            out("r0") s,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            out("d6") _, out("d7") _, out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _,
            options(nostack),
        );
    }
    s
}

/// Quantize activations to Q8_0 blocks, bit-identical to
/// `scalar::quantize_row_q8_0` (`x.len() == 32 * y.len()`; extra input or
/// output is left alone, as there).
pub fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    if !fpscr_is_ieee() {
        return scalar::quantize_row_q8_0(x, y);
    }
    for (xb, yb) in x.chunks_exact(QK).zip(y.iter_mut()) {
        // SAFETY: `xb` is 32 f32 (a slice of f32 is 4-byte aligned).
        let m = unsafe { amax2_block(xb.as_ptr()) };
        let Some((d, id)) = block_scales(m) else {
            scalar::quantize_row_q8_0(xb, core::slice::from_mut(yb));
            continue;
        };
        // SAFETY: as above; `yb.qs` is 32 writable bytes.
        unsafe { quant_block(xb.as_ptr(), id, yb.qs.as_mut_ptr()) };
        yb.d = f32_to_f16(d);
    }
}

/// Quantize activations to Q8_1 blocks, bit-identical to
/// `scalar::quantize_row_q8_1` (Q8_0 plus `s = d * sum(qs)`).
pub fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    if !fpscr_is_ieee() {
        return scalar::quantize_row_q8_1(x, y);
    }
    for (xb, yb) in x.chunks_exact(QK).zip(y.iter_mut()) {
        // SAFETY: `xb` is 32 f32 (a slice of f32 is 4-byte aligned).
        let m = unsafe { amax2_block(xb.as_ptr()) };
        let Some((d, id)) = block_scales(m) else {
            scalar::quantize_row_q8_1(xb, core::slice::from_mut(yb));
            continue;
        };
        // SAFETY: as above; `yb.qs` is 32 writable bytes.
        let sum = unsafe { quant_block_sum(xb.as_ptr(), id, yb.qs.as_mut_ptr()) };
        yb.d = f32_to_f16(d);
        yb.s = f32_to_f16(d * sum as f32);
    }
}
