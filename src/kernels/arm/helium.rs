//! Armv8.1-M Helium (MVE) kernels (Cortex-M55): `VLDRB` loads 16 bytes,
//! `VMLADAVA.S8` multiplies 16 signed byte pairs and adds all products to a
//! general-purpose register (which must be even-numbered, hence the fixed
//! `r0`/`r2`/`r4`/`r8` accumulators). Stable `asm!`; it assembles only with
//! `-C target-cpu=cortex-m55` (rustc has no thumbv8.1m target).
//!
//! Each asm block names the Q registers it uses and clobbers the matching D
//! registers (`q<n>` is `d<2n>`, `d<2n+1>`). Sums are exact: `|sum| <= 2^19`.

use core::arch::asm;

use super::{gemm_by, rows_dot};
use crate::kernels::scalar::fold_lanes;
use crate::quant::BlockQ8_0;

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
    if out.iter().any(|v: &f32| v.is_nan()) {
        return rows_q8_0_q8_0(w, x);
    }
    out
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

/// Batched Q8_0 x Q8_0 (the table's `gemm_q8_0_q8_0`): 4 rows at a time.
pub fn gemm_q8_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    gemm_by::<4>(w, rows, x, n, out, 34, rows4_q8_0_q8_0, vec_dot_q8_0_q8_0)
}

/// Batched Q4_0 x Q8_0 (the table's `gemm_q4_0_q8_0`): 4 rows at a time.
pub fn gemm_q4_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    gemm_by::<4>(w, rows, x, n, out, 18, rows_q4_0_q8_0, vec_dot_q4_0_q8_0)
}
