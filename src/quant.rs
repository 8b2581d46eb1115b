//! Tensor types and quantized block formats, exactly as ggml/GGUF lay them out.
//!
//! Each block format has one `#[repr(C)]` struct with a compile-time size assert.
//! Weights are read straight from the file bytes (which may have any alignment),
//! so kernels take weight rows as `&[u8]` and decode the little-endian fields by
//! hand; the structs document the layout and type the activation buffers that
//! embergpt quantizes at run time into its arena.

use crate::error::{Error, Result};
use half::f16;

/// Elements per block in every 32-wide format.
pub const QK: usize = 32;

/// ggml tensor types (GGUF type ids). Sizes are known for every listed type so
/// that files using them parse; [`GgmlType::is_supported`] tells which ones the
/// kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
}

impl GgmlType {
    /// Parse a GGUF tensor type id.
    pub fn from_u32(v: u32) -> Result<Self> {
        Ok(match v {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            15 => GgmlType::Q8_K,
            30 => GgmlType::BF16,
            _ => return Err(Error::UnknownTensorType),
        })
    }

    /// Elements per block.
    pub const fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q8_1 => 32,
            _ => 256,
        }
    }

    /// Bytes per block.
    pub const fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q8_1 => 36,
            GgmlType::Q2_K => 84,
            GgmlType::Q3_K => 110,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
            GgmlType::Q8_K => 292,
        }
    }

    /// Bytes of a row of `n` elements, `None` if `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: usize) -> Option<usize> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }

    /// Whether embergpt's kernels run this type.
    pub const fn is_supported(self) -> bool {
        matches!(
            self,
            GgmlType::F32 | GgmlType::F16 | GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1
        )
    }

    /// Lower-case name as llama.cpp prints it.
    pub const fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "f32",
            GgmlType::F16 => "f16",
            GgmlType::Q4_0 => "q4_0",
            GgmlType::Q4_1 => "q4_1",
            GgmlType::Q5_0 => "q5_0",
            GgmlType::Q5_1 => "q5_1",
            GgmlType::Q8_0 => "q8_0",
            GgmlType::Q8_1 => "q8_1",
            GgmlType::Q2_K => "q2_k",
            GgmlType::Q3_K => "q3_k",
            GgmlType::Q4_K => "q4_k",
            GgmlType::Q5_K => "q5_k",
            GgmlType::Q6_K => "q6_k",
            GgmlType::Q8_K => "q8_k",
            GgmlType::BF16 => "bf16",
        }
    }

    /// Parse a lower-case name (`f32`, `q8_0`, ...) of a supported type.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
        ]
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(s))
    }
}

/// Q8_0: 32 int8 values and one f16 scale. `x[i] = d * qs[i]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockQ8_0 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Quants.
    pub qs: [i8; QK],
}
const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);

/// Q4_0: 32 unsigned nibbles with offset 8 and one f16 scale. Byte `j` holds
/// element `j` in its low nibble and element `j + 16` in its high nibble.
/// `x[i] = d * (q[i] - 8)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockQ4_0 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);

/// Q4_1: 32 unsigned nibbles, an f16 scale and an f16 minimum. `x[i] = d * q[i] + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockQ4_1 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Minimum, f16 bits.
    pub m: u16,
    /// Packed nibbles (same order as Q4_0).
    pub qs: [u8; QK / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);

/// Q8_1: Q8_0 plus `s = d * sum(qs)`, the activation format for Q4_1 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockQ8_1 {
    /// Scale, f16 bits.
    pub d: u16,
    /// `d * sum(qs)`, f16 bits.
    pub s: u16,
    /// Quants.
    pub qs: [i8; QK],
}
const _: () = assert!(core::mem::size_of::<BlockQ8_1>() == 36);

/// f16 bits to f32 (exact).
#[inline(always)]
pub fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// f32 to f16 bits, round to nearest even.
#[inline(always)]
pub fn f32_to_f16(v: f32) -> u16 {
    f16::from_f32(v).to_bits()
}

/// Read the little-endian u16 at `b[i..i+2]` (0 when out of range).
#[inline(always)]
#[allow(dead_code)] // used by the wasm32 and aarch64 kernels
pub(crate) fn le_u16(b: &[u8], i: usize) -> u16 {
    match b.get(i..i + 2) {
        Some(&[lo, hi]) => u16::from_le_bytes([lo, hi]),
        _ => 0,
    }
}

/// Dequantize one row of `ty` (bytes of exactly `y.len()` elements) into `y`.
/// Returns `BadBlockShape` if the lengths disagree and `UnsupportedTensorType`
/// for types the kernels do not run.
pub fn dequantize_row(ty: GgmlType, x: &[u8], y: &mut [f32]) -> Result<()> {
    if ty.row_bytes(y.len()) != Some(x.len()) {
        return Err(Error::BadBlockShape);
    }
    match ty {
        GgmlType::F32 => {
            for (o, &c) in y.iter_mut().zip(x.as_chunks::<4>().0) {
                *o = f32::from_le_bytes(c);
            }
        }
        GgmlType::F16 => {
            for (o, &c) in y.iter_mut().zip(x.as_chunks::<2>().0) {
                *o = f16_to_f32(u16::from_le_bytes(c));
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in y.chunks_exact_mut(QK).zip(x.as_chunks::<34>().0) {
                let [d0, d1, qs @ ..] = b;
                let d = f16_to_f32(u16::from_le_bytes([*d0, *d1]));
                for (oi, &q) in o.iter_mut().zip(qs) {
                    *oi = d * (q as i8) as f32;
                }
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in y.chunks_exact_mut(QK).zip(x.as_chunks::<18>().0) {
                let [d0, d1, qs @ ..] = b;
                let d = f16_to_f32(u16::from_le_bytes([*d0, *d1]));
                let (olo, ohi) = o.split_at_mut(QK / 2); // o has exactly QK values
                for ((lo, hi), &q) in olo.iter_mut().zip(ohi).zip(qs) {
                    *lo = d * ((q & 0x0f) as i32 - 8) as f32;
                    *hi = d * ((q >> 4) as i32 - 8) as f32;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, b) in y.chunks_exact_mut(QK).zip(x.as_chunks::<20>().0) {
                let [d0, d1, m0, m1, qs @ ..] = b;
                let d = f16_to_f32(u16::from_le_bytes([*d0, *d1]));
                let m = f16_to_f32(u16::from_le_bytes([*m0, *m1]));
                let (olo, ohi) = o.split_at_mut(QK / 2); // o has exactly QK values
                for ((lo, hi), &q) in olo.iter_mut().zip(ohi).zip(qs) {
                    *lo = d * (q & 0x0f) as f32 + m;
                    *hi = d * (q >> 4) as f32 + m;
                }
            }
        }
        _ => return Err(Error::UnsupportedTensorType),
    }
    Ok(())
}

/// Quantize a row of weights (length a multiple of the block size) into `ty`'s
/// bytes, with ggml's reference rounding. Used by tools and tests; the forward
/// pass never quantizes weights.
pub fn quantize_row(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<()> {
    if ty.row_bytes(x.len()) != Some(out.len()) {
        return Err(Error::BadBlockShape);
    }
    match ty {
        GgmlType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for (o, v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&f32_to_f16(*v).to_le_bytes());
            }
        }
        GgmlType::Q8_0 => {
            for (o, xb) in out
                .as_chunks_mut::<34>()
                .0
                .iter_mut()
                .zip(x.chunks_exact(QK))
            {
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let [d0, d1, qs @ ..] = o;
                [*d0, *d1] = f32_to_f16(d).to_le_bytes();
                for (q, v) in qs.iter_mut().zip(xb) {
                    *q = libm::roundf(v * id) as i8 as u8;
                }
            }
        }
        GgmlType::Q4_0 => {
            for (o, xb) in out
                .as_chunks_mut::<18>()
                .0
                .iter_mut()
                .zip(x.chunks_exact(QK))
            {
                let (mut amax, mut max) = (0.0f32, 0.0f32);
                for &v in xb {
                    if v.abs() > amax {
                        amax = v.abs();
                        max = v;
                    }
                }
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let [d0, d1, qs @ ..] = o;
                [*d0, *d1] = f32_to_f16(d).to_le_bytes();
                let (xlo, xhi) = xb.split_at(QK / 2); // xb has exactly QK values
                for ((q, &v0), &v1) in qs.iter_mut().zip(xlo).zip(xhi) {
                    let q0 = ((v0 * id + 8.5) as i8).min(15) as u8;
                    let q1 = ((v1 * id + 8.5) as i8).min(15) as u8;
                    *q = q0 | (q1 << 4);
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, xb) in out
                .as_chunks_mut::<20>()
                .0
                .iter_mut()
                .zip(x.chunks_exact(QK))
            {
                let min = xb.iter().fold(f32::INFINITY, |m, &v| m.min(v));
                let max = xb.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let [d0, d1, m0, m1, qs @ ..] = o;
                [*d0, *d1] = f32_to_f16(d).to_le_bytes();
                [*m0, *m1] = f32_to_f16(min).to_le_bytes();
                let (xlo, xhi) = xb.split_at(QK / 2); // xb has exactly QK values
                for ((q, &v0), &v1) in qs.iter_mut().zip(xlo).zip(xhi) {
                    let q0 = (((v0 - min) * id + 0.5) as i8).min(15) as u8;
                    let q1 = (((v1 - min) * id + 0.5) as i8).min(15) as u8;
                    *q = q0 | (q1 << 4);
                }
            }
        }
        _ => return Err(Error::UnsupportedTensorType),
    }
    Ok(())
}
