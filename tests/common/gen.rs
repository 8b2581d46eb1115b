//! Test data shared by `tests/kernels.rs` and the bare-metal payload
//! `tests/x86-bare` (so no std: each generator returns one value or writes
//! through a callback). f16 scales include zero, subnormal, 65504, infinity and
//! negative ones; weight blocks can be all zero or hold 0x80/0x7f/0xff/0x00;
//! activations include 1e30, subnormals, signed zeros and exact halves; raw
//! activation blocks hold arbitrary bytes (-128 included).

use embergpt::quant::{f32_to_f16, BlockQ8_0, BlockQ8_1};
use embergpt::GgmlType;

/// splitmix64: a small seeded generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Element-wise inputs at the edges: infinities, NaN, signed zero, subnormals,
/// `exp`'s clamp bounds and just past them, values whose cubes overflow in GELU.
pub const SPECIAL: [f32; 12] = [
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    -0.0,
    1.0e-42,
    88.7,
    -104.0,
    // past exp's clamp bounds, and cubes that overflow in GELU
    89.5,
    -105.0,
    1.0e30,
    -1.0e30,
    -1.0e-42,
];

/// Attention mix shapes `(hd, stride, off, short)`: n keys of a head of `hd`
/// values, rows of `stride` at offset `off`, the last row cut short by `short`.
pub const MIX_SHAPES: [(usize, usize, usize, usize); 7] = [
    (64, 64, 0, 0),
    (7, 12, 3, 0),
    (1, 1, 0, 0),
    // more than one register strip, a tail of 8 and of 4 values
    (136, 144, 8, 0),
    (20, 24, 4, 0),
    (60, 64, 2, 0),
    // the last key's row cut short (its values count as absent)
    (64, 64, 0, 1),
];

/// Interesting f16 scales: normal, zero, subnormal, largest, inf, negative.
const SCALES: [f32; 9] = [
    0.01,
    0.5,
    0.0,
    6.0e-8,
    3.0e-5,
    65504.0,
    f32::INFINITY,
    -0.02,
    1.5,
];

/// One of `a` (not empty).
pub fn pick<T: Copy>(rng: &mut Rng, a: &[T]) -> T {
    match a.get(rng.below(a.len())) {
        Some(v) => *v,
        None => panic!("pick from an empty list"),
    }
}

/// A random f16 scale; with `extreme`, one of [`SCALES`] a quarter of the time.
pub fn scale_bits(rng: &mut Rng, extreme: bool) -> u16 {
    if extreme && rng.below(4) == 0 {
        f32_to_f16(pick(rng, &SCALES))
    } else {
        f32_to_f16(rng.unit() * 0.05)
    }
}

/// A random weight row of `cols` elements of `ty` (F32, F16, Q8_0, Q4_0 or
/// Q4_1), its raw bytes handed to `out` in order.
pub fn weight_row(
    rng: &mut Rng,
    ty: GgmlType,
    cols: usize,
    extreme: bool,
    out: &mut impl FnMut(&[u8]),
) {
    match ty {
        GgmlType::F32 => {
            for _ in 0..cols {
                let v = if extreme && rng.below(50) == 0 {
                    1.0e30
                } else {
                    rng.unit()
                };
                out(&v.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for _ in 0..cols {
                let v = if extreme && rng.below(20) == 0 {
                    pick(rng, &[6.0e-8, 65504.0, f32::INFINITY, -3.0e-6])
                } else {
                    rng.unit()
                };
                out(&f32_to_f16(v).to_le_bytes());
            }
        }
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 => {
            for _ in 0..cols / 32 {
                out(&scale_bits(rng, extreme).to_le_bytes());
                if ty == GgmlType::Q4_1 {
                    out(&scale_bits(rng, extreme).to_le_bytes());
                }
                let nq = if ty == GgmlType::Q8_0 { 32 } else { 16 };
                let zero = extreme && rng.below(5) == 0;
                for _ in 0..nq {
                    let q = if zero {
                        if ty == GgmlType::Q4_0 {
                            0x88
                        } else {
                            0
                        }
                    } else if extreme && rng.below(4) == 0 {
                        pick(rng, &[0x80u8, 0x7f, 0xff, 0x00])
                    } else {
                        rng.byte()
                    };
                    out(&[q]);
                }
            }
        }
        _ => panic!("weight_row: unsupported type"),
    }
}

/// Random activation `i` of a row: mostly unit-scale, extreme values when asked.
pub fn activation(rng: &mut Rng, i: usize, extreme: bool) -> f32 {
    if extreme {
        match rng.below(12) {
            0 => 1.0e30 * rng.unit(),
            1 => 1.0e-40,
            2 => 0.0,
            3 => -0.0,
            4 if (i / 32).is_multiple_of(3) => 0.0,
            5 => (rng.below(255) as f32 - 127.0) * 0.5, // exact halves
            _ => rng.unit() * 10.0,
        }
    } else {
        rng.unit() * 3.0
    }
}

/// An activation block with arbitrary bytes (-128 included) and scale.
pub fn raw_q8_0(rng: &mut Rng, extreme: bool) -> BlockQ8_0 {
    BlockQ8_0 {
        d: scale_bits(rng, extreme),
        qs: core::array::from_fn(|_| rng.byte() as i8),
    }
}

/// A Q8_1 activation block with arbitrary bytes and scales.
pub fn raw_q8_1(rng: &mut Rng, extreme: bool) -> BlockQ8_1 {
    BlockQ8_1 {
        d: scale_bits(rng, extreme),
        s: scale_bits(rng, extreme),
        qs: core::array::from_fn(|_| rng.byte() as i8),
    }
}
