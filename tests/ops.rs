//! Unit tests of every scalar kernel and op against straightforward f64 references.

use embergpt::kernels::scalar::*;
use embergpt::ops::{exp, gelu, layer_norm, sin_cos, softmax, sum_lanes};
use embergpt::quant::{dequantize_row, f16_to_f32, quantize_row, BlockQ8_0, BlockQ8_1, GgmlType};

struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f() * scale).collect()
    }
}

fn bytes_of(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn quantized(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut out).unwrap();
    out
}

fn dequantized(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n];
    dequantize_row(ty, b, &mut y).unwrap();
    y
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn float_dots_match_f64() {
    let mut r = Rng(7);
    for n in [1, 15, 16, 17, 64, 100, 768] {
        let (w, x) = (r.vec(n, 1.0), r.vec(n, 1.0));
        let want = dot64(&w, &x);
        let got = vec_dot_f32_f32(&bytes_of(&w), &x) as f64;
        assert!((got - want).abs() <= 1e-5 * (n as f64).sqrt(), "f32 n={n}");
        // F16 weights: the reference uses the f16-rounded weights.
        let wb = quantized(GgmlType::F16, &w);
        let w16 = dequantized(GgmlType::F16, &wb, n);
        let got = vec_dot_f16_f32(&wb, &x) as f64;
        assert!(
            (got - dot64(&w16, &x)).abs() <= 1e-5 * (n as f64).sqrt(),
            "f16 n={n}"
        );
    }
}

/// Quantized dot products equal the f64 dot of the dequantized operands (up to f32 rounding).
#[test]
fn quantized_dots_match_dequantized_f64() {
    let mut r = Rng(11);
    for nb in [1usize, 3, 8, 9, 24, 96] {
        let n = nb * 32;
        let (w, x) = (r.vec(n, 2.0), r.vec(n, 3.0));
        let mut q8 = vec![BlockQ8_0::default(); nb];
        quantize_row_q8_0(&x, &mut q8);
        let mut q81 = vec![BlockQ8_1::default(); nb];
        quantize_row_q8_1(&x, &mut q81);
        let xd: Vec<f32> = q8
            .iter()
            .flat_map(|b| {
                let d = f16_to_f32(b.d);
                b.qs.iter().map(move |&q| d * q as f32)
            })
            .collect();
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            let wb = quantized(ty, &w);
            let wd = dequantized(ty, &wb, n);
            let want = dot64(&wd, &xd);
            let got = match ty {
                GgmlType::Q8_0 => vec_dot_q8_0_q8_0(&wb, &q8),
                GgmlType::Q4_0 => vec_dot_q4_0_q8_0(&wb, &q8),
                _ => vec_dot_q4_1_q8_1(&wb, &q81),
            } as f64;
            // Q4_1 uses s = f16(d * sum q) (ggml's Q8_1 layout): the min term carries
            // that f16 rounding, at most |m| * |s| * 2^-11 per block.
            let s_round: f64 = if ty == GgmlType::Q4_1 {
                wb.chunks(20)
                    .zip(&q81)
                    .map(|(b, a)| {
                        let m = f16_to_f32(u16::from_le_bytes([b[2], b[3]])) as f64;
                        (m * f16_to_f32(a.s) as f64).abs() * 2f64.powi(-11)
                    })
                    .sum()
            } else {
                0.0
            };
            let tol = 1e-4 * (1.0 + want.abs()) + s_round;
            assert!((got - want).abs() <= tol, "{ty:?} nb={nb}: {got} vs {want}");
        }
    }
}

#[test]
fn activation_quantization_error_is_bounded() {
    let mut r = Rng(3);
    let x = r.vec(32 * 16, 5.0);
    let mut q = vec![BlockQ8_0::default(); 16];
    quantize_row_q8_0(&x, &mut q);
    for (xb, b) in x.chunks(32).zip(&q) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = f16_to_f32(b.d);
        for (&v, &qv) in xb.iter().zip(&b.qs) {
            // half a step of rounding plus the f16 rounding of the scale
            assert!((v - d * qv as f32).abs() <= amax / 127.0 * 0.5 + amax * 1e-3);
        }
    }
    // all-zero block: zero scale, zero quants
    let mut z = [BlockQ8_0::default()];
    quantize_row_q8_0(&[0.0; 32], &mut z);
    assert_eq!((z[0].d, z[0].qs), (0, [0i8; 32]));
}

#[test]
fn weight_quantization_round_trips_within_one_step() {
    let mut r = Rng(5);
    let x = r.vec(32 * 8, 1.0);
    for (ty, steps) in [
        (GgmlType::Q8_0, 127.0f32),
        (GgmlType::Q4_0, 8.0),
        (GgmlType::Q4_1, 15.0),
    ] {
        let y = dequantized(ty, &quantized(ty, &x), x.len());
        for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
            let range = match ty {
                GgmlType::Q4_1 => {
                    xb.iter().fold(f32::MIN, |m, &v| m.max(v))
                        - xb.iter().fold(f32::MAX, |m, &v| m.min(v))
                }
                _ => xb.iter().fold(0f32, |m, v| m.max(v.abs())),
            };
            for (a, b) in xb.iter().zip(yb) {
                assert!((a - b).abs() <= range / steps * 1.01 + 1e-6, "{ty:?}");
            }
        }
    }
}

/// The documented order, written out independently: 8 running sums (element i
/// into sum i % 8), then sums 0-3 += 4-7, 0-1 += 2-3, 0 += 1. Every length up
/// to 3 full groups and a tail, bit for bit; and close to the f64 sum.
#[test]
fn sum_lanes_is_the_documented_order() {
    for n in 0..40usize {
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 113) as f32 * 0.37 - 19.0)
            .collect();
        let mut l = [0.0f32; 8];
        for (i, &v) in x.iter().enumerate() {
            l[i % 8] += v * 2.0;
        }
        for i in 0..4 {
            l[i] += l[i + 4];
        }
        for i in 0..2 {
            l[i] += l[i + 2];
        }
        l[0] += l[1];
        let got = sum_lanes(&x, |v| v * 2.0);
        assert_eq!(got.to_bits(), l[0].to_bits(), "n={n}");
        let want: f64 = x.iter().map(|&v| v as f64 * 2.0).sum();
        assert!(
            (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "n={n}"
        );
    }
}

#[test]
fn layer_norm_gelu_softmax_match_f64() {
    let mut r = Rng(9);
    let n = 96;
    let x = r.vec(n, 3.0);
    let w = r.vec(n, 1.0);
    let b = r.vec(n, 0.5);
    let mut out = vec![0f32; n];
    layer_norm(&x, &bytes_of(&w), &bytes_of(&b), 1e-5, &mut out);
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    for i in 0..n {
        let want = (x[i] as f64 - mean) / (var + 1e-5).sqrt() * w[i] as f64 + b[i] as f64;
        assert!((out[i] as f64 - want).abs() < 1e-5, "layer_norm {i}");
    }

    let mut g = x.clone();
    gelu(&mut g);
    for (&v, &o) in x.iter().zip(&g) {
        let v = v as f64;
        let want = 0.5
            * v
            * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh());
        assert!((o as f64 - want).abs() < 1e-5, "gelu({v})");
    }

    let mut s = x.clone();
    softmax(&mut s);
    let m = x.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
    let z: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
    for (&v, &o) in x.iter().zip(&s) {
        assert!((o as f64 - (v as f64 - m).exp() / z).abs() < 1e-6);
    }
}

/// Distance in units in the last place between `got` and the f64 value `want`,
/// measured at `want`'s f32 rounding (both finite, same sign).
fn ulps(got: f32, want: f64) -> f64 {
    let w = want as f32;
    let ulp = (f32::from_bits(w.to_bits() + 1) - w) as f64;
    (got as f64 - want).abs() / ulp
}

#[test]
fn exp_is_within_two_ulp_of_f64_over_the_whole_range() {
    // Every 97th f32 in [-104, 89] (about 11 M values), plus the edges.
    let mut worst = (0.0f64, 0.0f32);
    let mut check = |x: f32| {
        let want = (x as f64).exp();
        let got = exp(x);
        if want > f32::MAX as f64 {
            assert_eq!(got, f32::INFINITY, "exp({x}) overflows");
        } else if want >= f32::MIN_POSITIVE as f64 {
            let u = ulps(got, want);
            assert!(u <= 2.0, "exp({x}) = {got}, f64 {want}: {u} ulp");
            if u > worst.0 {
                worst = (u, x);
            }
        } else {
            // Subnormal results: within one subnormal step (2^-149) of the truth.
            let step = f32::from_bits(1) as f64;
            assert!(
                (got as f64 - want).abs() <= step,
                "exp({x}) = {got}, f64 {want}"
            );
        }
    };
    for bits in (0u32..=0xff80_0000).step_by(97) {
        let x = f32::from_bits(bits);
        if (-104.0..=89.0).contains(&x) {
            check(x);
        }
    }
    for x in [
        0.0, -0.0, 1.0, -1.0, 88.72, 88.73, -87.33, -103.9, 1e-30, -1e-30,
    ] {
        check(x);
    }
    println!("exp: worst {:.3} ulp at {}", worst.0, worst.1);
    assert_eq!(exp(0.0), 1.0);
    assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp(-1000.0), 0.0);
    assert_eq!(exp(f32::INFINITY), f32::INFINITY);
    assert_eq!(exp(1000.0), f32::INFINITY);
    assert!(exp(f32::NAN).is_nan());
}

#[test]
fn sin_cos_are_within_1_2e_minus_7_of_f64_up_to_8192() {
    // Every 61st f32 in [-8192, 8192] (about 35 M values): absolute error at most
    // 1.2e-7 (2 ulp of values in [0.5, 1)).
    let mut worst = (0.0f64, 0.0f32);
    for bits in (0u32..=0xc600_0000).step_by(61) {
        let x = f32::from_bits(bits);
        if !(-8192.0..=8192.0).contains(&x) {
            continue;
        }
        let (c, s) = sin_cos(x);
        let (wc, ws) = ((x as f64).cos(), (x as f64).sin());
        let e = (c as f64 - wc).abs().max((s as f64 - ws).abs());
        assert!(e <= 1.2e-7, "sin_cos({x}) = ({c}, {s}), f64 ({wc}, {ws})");
        if e > worst.0 {
            worst = (e, x);
        }
    }
    println!("sin_cos: worst {:.3e} at {}", worst.0, worst.1);
    assert_eq!(sin_cos(0.0), (1.0, 0.0));
    let (c, s) = sin_cos(f32::INFINITY);
    assert!(c.is_nan() && s.is_nan());
    let (c, s) = sin_cos(f32::NAN);
    assert!(c.is_nan() && s.is_nan());
}

/// `ops::mix` (several keys per pass over `out`) gives, bit for bit, the
/// one-key-at-a-time definition `out = 0; out[i] += a_j * v_j[i]` for j in order,
/// for head sizes that are and are not multiples of the key group, key counts
/// around it, and strided rows at an offset (as in the KV cache).
#[test]
fn mix_matches_key_by_key_accumulation_bit_for_bit() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for hd in [1usize, 3, 8, 15, 16, 17, 32, 33, 64, 80] {
        for t in [1usize, 2, 3, 4, 5, 7, 8, 9, 31, 64] {
            let (stride, off) = (hd * 3 + 5, hd + 2);
            let vals = rng.vec(t * stride, 2.0);
            let a = rng.vec(t, 1.0);
            let mut want = vec![0f32; hd];
            for (j, &w) in a.iter().enumerate() {
                let v = &vals[j * stride + off..][..hd];
                for (o, &x) in want.iter_mut().zip(v) {
                    *o += w * x;
                }
            }
            let mut got = vec![f32::NAN; hd];
            embergpt::ops::mix(&a, &vals, stride, off, &mut got);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "hd {hd} t {t}");
        }
    }
}

/// `ops::scores` is `dot(q, k_j) * scale` per strided key on every available
/// backend, and equals the scalar reference `vec_dot_f32_f32` bit for bit.
#[test]
fn scores_match_the_scalar_dot_on_every_backend() {
    use embergpt::kernels::{Backend, Kernels};
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for hd in [8usize, 17, 32, 64] {
        let (t, stride, off) = (13usize, hd * 2 + 3, hd + 1);
        let keys = rng.vec(t * stride, 1.5);
        let q = rng.vec(hd, 1.0);
        let want: Vec<u32> = (0..t)
            .map(|j| {
                let k = &keys[j * stride + off..][..hd];
                (vec_dot_f32_f32(&bytes_of(k), &q) * 0.125).to_bits()
            })
            .collect();
        for b in Backend::ALL.iter().filter(|b| b.is_available()) {
            let kern = Kernels::new(*b).unwrap();
            let mut got = vec![0f32; t];
            embergpt::ops::scores(&kern, &q, &keys, stride, off, 0.125, &mut got);
            let got: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want, "hd {hd} backend {}", b.name());
        }
    }
}
