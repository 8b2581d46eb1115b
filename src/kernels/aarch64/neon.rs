//! Plain NEON integer dots: widening multiplies (`smull`/`smlal`) and pairwise
//! widening adds.

use core::arch::aarch64::*;

use super::{dot_q4_0, dot_q4_1, dot_q8_0, BlockDot};
use crate::quant::{BlockQ8_0, BlockQ8_1};

/// Block dots with `smull` + `sadalp`.
pub(super) struct Mull;

impl BlockDot for Mull {
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn dot_i8(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int32x4_t {
        // i8 * i8 fits i16 (|p| <= 2^14), a sum of two might not: widen each.
        let s = vpaddlq_s16(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)));
        let s = vpadalq_s16(s, vmull_high_s8(a0, b0));
        let s = vpadalq_s16(s, vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
        vpadalq_s16(s, vmull_high_s8(a1, b1))
    }

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn dot_i4(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int32x4_t {
        // |a| <= 15: four products per i16 lane stay below 4 * 15 * 128 < 2^15.
        let p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
        let p = vmlal_high_s8(p, a0, b0);
        let p = vmlal_s8(p, vget_low_s8(a1), vget_low_s8(b1));
        vpaddlq_s16(vmlal_high_s8(p, a1, b1))
    }
}

/// Q8_0 x Q8_0 (NEON).
pub(super) fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    // SAFETY: `Mull` uses base Advanced SIMD only, which this module's cfg requires.
    unsafe { dot_q8_0::<Mull>(w, x) }
}

/// Q4_0 x Q8_0 (NEON).
pub(super) fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    // SAFETY: as above.
    unsafe { dot_q4_0::<Mull>(w, x) }
}

/// Q4_1 x Q8_1 (NEON).
pub(super) fn vec_dot_q4_1_q8_1(w: &[u8], x: &[BlockQ8_1]) -> f32 {
    // SAFETY: as above.
    unsafe { dot_q4_1::<Mull>(w, x) }
}
