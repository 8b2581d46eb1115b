//! Armv8.1-M Helium (MVE) kernels (Cortex-M55): `VLDRB` loads 16 bytes,
//! `VMLADAVA.S8` multiplies 16 signed byte pairs and adds all products to a
//! general-purpose register (which must be even-numbered, hence the fixed
//! `r0`/`r2`/`r4`/`r8` accumulators). Stable `asm!`; it assembles only with
//! `-C target-cpu=cortex-m55` (rustc has no thumbv8.1m target).
//!
//! Each asm block names the Q registers it uses and clobbers the matching D
//! registers (`q<n>` is `d<2n>`, `d<2n+1>`). Sums are exact: `|sum| <= 2^19`.

use core::arch::asm;

use super::rows_dot;
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

/// 4 Q8_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q8_0_q8_0` per row.
pub fn rows_q8_0_q8_0(w: &[&[u8]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    rows_dot(w, x, 34, |j, xb| {
        let p = core::array::from_fn(|r| w[r][j * 34 + 2..].as_ptr());
        // SAFETY: `rows_dot` calls with `j * 34 + 34 <= w[r].len()`, so 32 bytes
        // follow each `p[r]`; `xb.qs` is 32 bytes.
        unsafe { sums_q8_x4(p, xb.qs.as_ptr() as *const u8) }
    })
}

/// 4 Q4_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q4_0_q8_0` per row.
pub fn rows_q4_0_q8_0(w: &[&[u8]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    rows_dot(w, x, 18, |j, xb| {
        let p = core::array::from_fn(|r| w[r][j * 18 + 2..].as_ptr());
        // SAFETY: `rows_dot` calls with `j * 18 + 18 <= w[r].len()`, so 16 bytes
        // follow each `p[r]`; `xb.qs` is 32 bytes.
        unsafe { sums_q4_x4(p, xb.qs.as_ptr() as *const u8) }
    })
}

/// Q8_0 weights x Q8_0 activations (the table entry).
pub fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    rows_dot(&[w], x, 34, |j, xb| {
        let p = w[j * 34 + 2..].as_ptr();
        // SAFETY: `rows_dot` calls with `j * 34 + 34 <= w.len()`; `xb.qs` is 32 bytes.
        [unsafe { sums_q8_x1(p, xb.qs.as_ptr() as *const u8) }]
    })[0]
}

/// Q4_0 weights x Q8_0 activations (the table entry).
pub fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    rows_dot(&[w], x, 18, |j, xb| {
        let p = w[j * 18 + 2..].as_ptr();
        // SAFETY: `rows_dot` calls with `j * 18 + 18 <= w.len()`; `xb.qs` is 32 bytes.
        [unsafe { sums_q4_x1(p, xb.qs.as_ptr() as *const u8) }]
    })[0]
}
