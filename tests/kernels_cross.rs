//! The aarch64 (NEON, NEON + dotprod) and wasm32 (simd128) kernels against the
//! scalar reference: bit-identical results on edge shapes, extreme values and
//! seeded random data, and bit-identical GPT-2 fixture logits with the backend
//! forced.
//!
//! On a target where a backend cannot run, its tests print `SKIPPED: ...`.
//! `tests/scripts/cross_test.sh` runs this file under qemu-aarch64 (`-cpu max`
//! and `-cpu cortex-a53`) and Node's WASI, and sets
//! `EMBERGPT_EXPECT_BACKENDS` (must be available, else the test fails) and
//! `EMBERGPT_EXPECT_MISSING` (must be reported unavailable).
//!
//! "Bit-identical" means equal bits, or both NaN: Rust (and wasm) do not
//! specify NaN payloads, so only NaN-ness is part of the contract.

mod common;
use common::*;

use embergpt::kernels::{scalar, Backend, Kernels};
use embergpt::quant::{f16_to_f32, f32_to_f16, BlockQ8_0, BlockQ8_1};
use embergpt::{Context, ContextParams, Error, Model};

/// The backends this file covers.
const MINE: [Backend; 3] = [Backend::Neon, Backend::NeonDotprod, Backend::Simd128];

fn env_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The tables of my backends that this CPU runs; prints a skip line for the others.
fn tables(test: &str) -> Vec<Kernels> {
    let mut out = Vec::new();
    for b in MINE {
        match Kernels::new(b) {
            Ok(k) => out.push(k),
            Err(_) => println!("SKIPPED: {test}: backend {} not available here", b.name()),
        }
    }
    out
}

#[test]
fn availability_matches_expectations() {
    println!(
        "expected available: {:?}, expected missing: {:?}",
        env_list("EMBERGPT_EXPECT_BACKENDS"),
        env_list("EMBERGPT_EXPECT_MISSING")
    );
    for name in env_list("EMBERGPT_EXPECT_BACKENDS") {
        let b = Backend::from_name(&name).unwrap_or_else(|| panic!("unknown backend {name}"));
        assert!(b.is_available(), "backend {name} expected available");
        assert!(Kernels::new(b).is_ok(), "backend {name}: no table");
    }
    for name in env_list("EMBERGPT_EXPECT_MISSING") {
        let b = Backend::from_name(&name).unwrap_or_else(|| panic!("unknown backend {name}"));
        assert!(!b.is_available(), "backend {name} expected unavailable");
        assert_eq!(Kernels::new(b).err(), Some(Error::BackendUnavailable));
    }
    for b in Backend::ALL {
        assert_eq!(b.is_available(), Kernels::new(*b).is_ok(), "{}", b.name());
        if let Ok(k) = Kernels::new(*b) {
            assert_eq!(k.backend, *b);
        }
    }
    // Per-architecture facts that need no CPU model.
    if cfg!(all(
        target_arch = "aarch64",
        target_feature = "neon",
        target_endian = "little"
    )) {
        assert!(Backend::Neon.is_available());
        assert!(!Backend::Simd128.is_available());
    }
    if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        assert!(Backend::Simd128.is_available());
        assert!(!Backend::Neon.is_available() && !Backend::NeonDotprod.is_available());
        assert_eq!(Backend::detect(), Backend::Simd128);
    }
    if !cfg!(any(target_arch = "aarch64", target_arch = "wasm32")) {
        assert!(MINE.iter().all(|b| !b.is_available()));
    }
    println!("detected backend: {}", Backend::detect().name());
}

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// SplitMix64: small, seeded, good enough for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Signed values over many binades, so that a changed summation order shows.
    fn wide(&mut self) -> f32 {
        let e = self.below(41) as i32 - 20;
        self.unit() * 2f32.powi(e)
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_f16(a: u16, b: u16) -> bool {
    a == b || (f16_to_f32(a).is_nan() && f16_to_f32(b).is_nan())
}

/// `v` as little-endian bytes, starting at an odd address (weights are raw file
/// bytes and may have any alignment).
fn unaligned(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(0xa5);
    v.extend_from_slice(bytes);
    v
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| f32_to_f16(*x).to_le_bytes())
        .collect()
}

/// Float vectors of length `n` in several flavours.
fn float_cases(rng: &mut Rng, n: usize) -> Vec<(&'static str, Vec<f32>)> {
    let mut special = vec![0.0f32; n];
    let pool = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::MIN_POSITIVE,
        1e-45,
        -1e-40,
        3e38,
        -3e38,
        65504.0,
        6e-8,
        1e20,
        -1e20,
    ];
    for v in special.iter_mut() {
        *v = pool[rng.below(pool.len() as u64) as usize];
    }
    let mut with_inf = (0..n).map(|_| rng.unit()).collect::<Vec<_>>();
    let mut with_nan = with_inf.clone();
    if n > 0 {
        with_inf[n / 2] = f32::INFINITY;
        with_nan[n - 1] = f32::NAN;
    }
    vec![
        ("unit", (0..n).map(|_| rng.unit()).collect()),
        ("wide", (0..n).map(|_| rng.wide()).collect()),
        ("special", special),
        ("inf", with_inf),
        ("nan", with_nan),
    ]
}

const FLOAT_LENS: [usize; 18] = [
    0, 1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 100, 768, 3072, 3077,
];

// ---------------------------------------------------------------------------
// Float dots
// ---------------------------------------------------------------------------

#[test]
fn vec_dot_f32_f32_bit_identical() {
    let ks = tables("vec_dot_f32_f32");
    let mut rng = Rng(1);
    let mut order_sensitive = 0;
    let mut checked = 0;
    for n in FLOAT_LENS {
        let ws = float_cases(&mut rng, n);
        let xs = float_cases(&mut rng, n);
        for ((wn, w), (xn, x)) in ws.iter().zip(&xs) {
            let wb = unaligned(&f32_bytes(w));
            let wb = &wb[1..];
            let want = scalar::vec_dot_f32_f32(wb, x);
            // The data must be able to tell orders apart: a plain sequential
            // sum differs from the 16-lane order on most wide vectors.
            let seq = w.iter().zip(x).fold(0.0f32, |a, (p, q)| a + p * q);
            if *wn == "wide" && n >= 32 && !same(seq, want) {
                order_sensitive += 1;
            }
            for k in &ks {
                let got = (k.vec_dot_f32_f32)(wb, x);
                assert!(
                    same(got, want),
                    "{}: n={n} w={wn} x={xn}: {got:e} vs scalar {want:e}",
                    k.backend.name()
                );
                // Mismatched lengths only shorten the loop.
                let short = &x[..n / 2];
                assert!(same(
                    (k.vec_dot_f32_f32)(wb, short),
                    scalar::vec_dot_f32_f32(wb, short)
                ));
                let trail = &wb[..wb.len().saturating_sub(3)];
                assert!(same(
                    (k.vec_dot_f32_f32)(trail, x),
                    scalar::vec_dot_f32_f32(trail, x)
                ));
                checked += 1;
            }
        }
    }
    assert!(
        order_sensitive >= 4,
        "test data too tame: {order_sensitive}"
    );
    println!("vec_dot_f32_f32: {checked} cases bit-identical");
}

#[test]
fn vec_dot_f16_f32_bit_identical() {
    let ks = tables("vec_dot_f16_f32");
    let mut rng = Rng(2);
    let mut checked = 0;
    for n in FLOAT_LENS {
        let ws = float_cases(&mut rng, n);
        let xs = float_cases(&mut rng, n);
        for ((wn, w), (xn, x)) in ws.iter().zip(&xs) {
            let wb = unaligned(&f16_bytes(w));
            let wb = &wb[1..];
            let want = scalar::vec_dot_f16_f32(wb, x);
            for k in &ks {
                let got = (k.vec_dot_f16_f32)(wb, x);
                assert!(
                    same(got, want),
                    "{}: n={n} w={wn} x={xn}: {got:e} vs scalar {want:e}",
                    k.backend.name()
                );
                let short = &x[..n / 2];
                assert!(same(
                    (k.vec_dot_f16_f32)(wb, short),
                    scalar::vec_dot_f16_f32(wb, short)
                ));
                checked += 1;
            }
        }
    }
    println!("vec_dot_f16_f32: {checked} cases bit-identical");
}

/// Every one of the 65536 f16 bit patterns (normals, subnormals, +-0, Inf,
/// NaN) as a weight, once against 1.0 in lane 0 (the dot is then the widened
/// value itself, except that -0 becomes +0) and once in full 16-lane vectors.
#[test]
fn vec_dot_f16_f32_every_f16_pattern() {
    let ks = tables("vec_dot_f16_f32 every pattern");
    if ks.is_empty() {
        return;
    }
    let mut rng = Rng(3);
    let x1 = [1.0f32];
    let x16: Vec<f32> = (0..16).map(|_| rng.unit()).collect();
    for k in &ks {
        for h in 0..=u16::MAX {
            let wb = h.to_le_bytes();
            let got = (k.vec_dot_f16_f32)(&wb, &x1);
            let want = scalar::vec_dot_f16_f32(&wb, &x1);
            assert!(
                same(got, want),
                "{}: f16 {h:#06x}: {got:e} vs {want:e}",
                k.backend.name()
            );
        }
        let all: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        for row in all.chunks(32) {
            let got = (k.vec_dot_f16_f32)(row, &x16);
            assert!(
                same(got, scalar::vec_dot_f16_f32(row, &x16)),
                "{}",
                k.backend.name()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Quantized dots
// ---------------------------------------------------------------------------

const BLOCK_COUNTS: [usize; 17] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 96, 97];

/// An f16 scale: mostly ordinary values, sometimes zero, subnormal, huge or
/// negative, rarely Inf/NaN when `special`.
fn scale(rng: &mut Rng, special: bool) -> u16 {
    match rng.below(if special { 12 } else { 10 }) {
        0 => 0,
        1 => 0x8000,
        2 => 1 + rng.below(0x3ff) as u16,       // subnormal
        3 => 0x7bff,                            // 65504
        4 => 0xfbff,                            // -65504
        10 => 0x7c00,                           // +Inf
        11 => 0x7e00 | rng.below(0x100) as u16, // NaN
        _ => f32_to_f16(rng.wide() * 0.01),
    }
}

/// Random Q8_0 activation blocks: raw random quants and scales, or the
/// scalar quantization of random floats.
fn q8_0_acts(rng: &mut Rng, nb: usize, flavour: u32) -> Vec<BlockQ8_0> {
    let mut v = vec![BlockQ8_0::default(); nb];
    match flavour {
        0 => {
            let x: Vec<f32> = (0..32 * nb).map(|_| rng.wide()).collect();
            scalar::quantize_row_q8_0(&x, &mut v);
        }
        1 => {
            for b in v.iter_mut() {
                b.d = scale(rng, false);
                b.qs.iter_mut().for_each(|q| *q = rng.byte() as i8);
            }
        }
        3 => {
            // Large positive quants: block sums with many significant bits, so
            // that a changed order of the f32 block-term operations shows.
            for b in v.iter_mut() {
                b.d = scale(rng, false);
                b.qs.iter_mut().for_each(|q| *q = 64 + rng.below(64) as i8);
            }
        }
        _ => {
            // Extremes: every quant -128 (the largest products).
            for b in v.iter_mut() {
                b.d = scale(rng, true);
                b.qs = [-128; 32];
            }
        }
    }
    v
}

fn q8_1_acts(rng: &mut Rng, nb: usize, flavour: u32) -> Vec<BlockQ8_1> {
    let mut v = vec![BlockQ8_1::default(); nb];
    match flavour {
        0 => {
            let x: Vec<f32> = (0..32 * nb).map(|_| rng.wide()).collect();
            scalar::quantize_row_q8_1(&x, &mut v);
        }
        1 => {
            for b in v.iter_mut() {
                b.d = scale(rng, false);
                b.s = scale(rng, false);
                b.qs.iter_mut().for_each(|q| *q = rng.byte() as i8);
            }
        }
        3 => {
            for b in v.iter_mut() {
                b.d = scale(rng, false);
                b.s = scale(rng, false);
                b.qs.iter_mut().for_each(|q| *q = 64 + rng.below(64) as i8);
            }
        }
        _ => {
            for b in v.iter_mut() {
                b.d = scale(rng, true);
                b.s = scale(rng, true);
                b.qs = [-128; 32];
            }
        }
    }
    v
}

/// Random weight blocks of `size` bytes with `n_scales` f16 fields first.
fn weights(rng: &mut Rng, nb: usize, size: usize, n_scales: usize, flavour: u32) -> Vec<u8> {
    let mut w = Vec::with_capacity(nb * size);
    for _ in 0..nb {
        for _ in 0..n_scales {
            w.extend_from_slice(&scale(rng, flavour == 2).to_le_bytes());
        }
        for _ in 0..size - 2 * n_scales {
            w.push(match flavour {
                // Extremes: 0x80 = -128 for Q8_0, 0x00/0xff nibbles for Q4.
                2 => [0x80, 0x00, 0xff][rng.below(3) as usize],
                // Large positive values (Q8_0: 64..127, Q4: nibbles 12..15) for
                // block sums with many significant bits.
                3 if size == 34 => 64 + rng.below(64) as u8,
                3 => (12 + rng.below(4) as u8) | (12 + rng.below(4) as u8) << 4,
                _ => rng.byte(),
            });
        }
    }
    w
}

#[test]
fn vec_dot_q8_0_q8_0_bit_identical() {
    let ks = tables("vec_dot_q8_0_q8_0");
    let mut rng = Rng(4);
    for nb in BLOCK_COUNTS {
        for flavour in 0..4 {
            let w = unaligned(&weights(&mut rng, nb, 34, 1, flavour));
            let w = &w[1..];
            let x = q8_0_acts(&mut rng, nb, flavour);
            let want = scalar::vec_dot_q8_0_q8_0(w, &x);
            for k in &ks {
                let got = (k.vec_dot_q8_0_q8_0)(w, &x);
                assert!(
                    same(got, want),
                    "{}: nb={nb} flavour={flavour}: {got:e} vs {want:e}",
                    k.backend.name()
                );
                let xs = &x[..nb / 2];
                assert!(same(
                    (k.vec_dot_q8_0_q8_0)(w, xs),
                    scalar::vec_dot_q8_0_q8_0(w, xs)
                ));
                let wt = &w[..w.len().saturating_sub(5)];
                assert!(same(
                    (k.vec_dot_q8_0_q8_0)(wt, &x),
                    scalar::vec_dot_q8_0_q8_0(wt, &x)
                ));
            }
        }
    }
}

#[test]
fn vec_dot_q4_0_q8_0_bit_identical() {
    let ks = tables("vec_dot_q4_0_q8_0");
    let mut rng = Rng(5);
    for nb in BLOCK_COUNTS {
        for flavour in 0..4 {
            let w = unaligned(&weights(&mut rng, nb, 18, 1, flavour));
            let w = &w[1..];
            let x = q8_0_acts(&mut rng, nb, flavour);
            let want = scalar::vec_dot_q4_0_q8_0(w, &x);
            for k in &ks {
                let got = (k.vec_dot_q4_0_q8_0)(w, &x);
                assert!(
                    same(got, want),
                    "{}: nb={nb} flavour={flavour}: {got:e} vs {want:e}",
                    k.backend.name()
                );
                let xs = &x[..nb / 2];
                assert!(same(
                    (k.vec_dot_q4_0_q8_0)(w, xs),
                    scalar::vec_dot_q4_0_q8_0(w, xs)
                ));
                let wt = &w[..w.len().saturating_sub(5)];
                assert!(same(
                    (k.vec_dot_q4_0_q8_0)(wt, &x),
                    scalar::vec_dot_q4_0_q8_0(wt, &x)
                ));
            }
        }
    }
}

#[test]
fn vec_dot_q4_1_q8_1_bit_identical() {
    let ks = tables("vec_dot_q4_1_q8_1");
    let mut rng = Rng(6);
    for nb in BLOCK_COUNTS {
        for flavour in 0..4 {
            let w = unaligned(&weights(&mut rng, nb, 20, 2, flavour));
            let w = &w[1..];
            let x = q8_1_acts(&mut rng, nb, flavour);
            let want = scalar::vec_dot_q4_1_q8_1(w, &x);
            for k in &ks {
                let got = (k.vec_dot_q4_1_q8_1)(w, &x);
                assert!(
                    same(got, want),
                    "{}: nb={nb} flavour={flavour}: {got:e} vs {want:e}",
                    k.backend.name()
                );
                let xs = &x[..nb / 2];
                assert!(same(
                    (k.vec_dot_q4_1_q8_1)(w, xs),
                    scalar::vec_dot_q4_1_q8_1(w, xs)
                ));
                let wt = &w[..w.len().saturating_sub(5)];
                assert!(same(
                    (k.vec_dot_q4_1_q8_1)(wt, &x),
                    scalar::vec_dot_q4_1_q8_1(wt, &x)
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Quantize
// ---------------------------------------------------------------------------

/// Activation rows for the quantizers, block by block.
fn quant_rows(rng: &mut Rng) -> Vec<(String, Vec<f32>)> {
    let mut rows = Vec::new();
    for nb in [1usize, 2, 3, 24, 96] {
        rows.push((
            format!("unit nb={nb}"),
            (0..32 * nb).map(|_| rng.unit()).collect(),
        ));
        rows.push((
            format!("wide nb={nb}"),
            (0..32 * nb).map(|_| rng.wide()).collect(),
        ));
    }
    // Ties: with amax = 127, d = 1 and id = 1, so x = k + 0.5 rounds half to even.
    let mut ties = vec![127.0f32];
    ties.extend((0..31).map(|i| (i as f32 - 15.0) + 0.5));
    rows.push(("ties".into(), ties));
    // Edge blocks, one per row.
    let edge: Vec<(&str, Vec<f32>)> = vec![
        ("zeros", vec![0.0; 32]),
        ("neg zeros", vec![-0.0; 32]),
        (
            "one nonzero",
            (0..32).map(|i| if i == 7 { -3.5 } else { 0.0 }).collect(),
        ),
        (
            "subnormal",
            (0..32).map(|i| (i as f32 - 16.0) * 1e-45).collect(),
        ),
        (
            "small subnormal amax",
            (0..32).map(|i| if i == 3 { 1e-44 } else { 0.0 }).collect(),
        ),
        (
            "near f16 underflow",
            (0..32).map(|i| (i as f32 - 16.0) * 1e-9).collect(),
        ),
        ("huge", (0..32).map(|i| (i as f32 - 16.0) * 2e37).collect()),
        (
            "max",
            (0..32)
                .map(|i| if i % 2 == 0 { f32::MAX } else { -f32::MAX })
                .collect(),
        ),
        ("f16 overflow d", (0..32).map(|i| i as f32 * 1e7).collect()),
        (
            "inf",
            (0..32)
                .map(|i| if i == 5 { f32::INFINITY } else { i as f32 })
                .collect(),
        ),
        (
            "-inf",
            (0..32)
                .map(|i| if i == 9 { f32::NEG_INFINITY } else { 1.0 })
                .collect(),
        ),
        (
            "nan",
            (0..32)
                .map(|i| if i == 0 { f32::NAN } else { i as f32 * 0.1 })
                .collect(),
        ),
        (
            "nan last",
            (0..32)
                .map(|i| if i == 31 { f32::NAN } else { -(i as f32) })
                .collect(),
        ),
        ("all nan", vec![f32::NAN; 32]),
    ];
    for (name, v) in edge {
        rows.push((name.into(), v));
    }
    rows
}

#[test]
fn quantize_row_q8_0_bit_identical() {
    let ks = tables("quantize_row_q8_0");
    let mut rng = Rng(7);
    for (name, x) in quant_rows(&mut rng) {
        let nb = x.len() / 32;
        let mut want = vec![BlockQ8_0::default(); nb];
        scalar::quantize_row_q8_0(&x, &mut want);
        for k in &ks {
            // Poisoned output and one spare block that must stay untouched
            // when y is longer than x / 32.
            let mut got = vec![
                BlockQ8_0 {
                    d: 0x5555,
                    qs: [0x55; 32]
                };
                nb + 1
            ];
            (k.quantize_row_q8_0)(&x, &mut got);
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    same_f16(g.d, w.d),
                    "{}: {name} block {j}: d {:#06x} vs {:#06x}",
                    k.backend.name(),
                    g.d,
                    w.d
                );
                assert_eq!(g.qs, w.qs, "{}: {name} block {j}", k.backend.name());
            }
            assert_eq!(
                got[nb],
                BlockQ8_0 {
                    d: 0x5555,
                    qs: [0x55; 32]
                }
            );
            // y shorter than x / 32 only shortens the loop.
            if nb > 1 {
                let mut short = vec![BlockQ8_0::default(); 1];
                (k.quantize_row_q8_0)(&x, &mut short);
                assert_eq!(short[0].qs, want[0].qs);
            }
        }
    }
}

#[test]
fn quantize_row_q8_1_bit_identical() {
    let ks = tables("quantize_row_q8_1");
    let mut rng = Rng(8);
    for (name, x) in quant_rows(&mut rng) {
        let nb = x.len() / 32;
        let mut want = vec![BlockQ8_1::default(); nb];
        scalar::quantize_row_q8_1(&x, &mut want);
        for k in &ks {
            let mut got = vec![
                BlockQ8_1 {
                    d: 0x5555,
                    s: 0x5555,
                    qs: [0x55; 32]
                };
                nb
            ];
            (k.quantize_row_q8_1)(&x, &mut got);
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                let b = k.backend.name();
                assert!(
                    same_f16(g.d, w.d),
                    "{b}: {name} block {j}: d {:#06x} vs {:#06x}",
                    g.d,
                    w.d
                );
                assert!(
                    same_f16(g.s, w.s),
                    "{b}: {name} block {j}: s {:#06x} vs {:#06x}",
                    g.s,
                    w.s
                );
                assert_eq!(g.qs, w.qs, "{b}: {name} block {j}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Whole model
// ---------------------------------------------------------------------------

fn logits(bytes: &[u8], tokens: &[u32], backend: Backend, chunk: usize) -> Vec<f32> {
    let model = Model::load(bytes).expect("load");
    let p = ContextParams {
        n_batch: chunk,
        logits_all: true,
        backend: Some(backend),
        ..Default::default()
    };
    let mut arena = arena(Context::arena_size(&model, &p).unwrap());
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    assert_eq!(ctx.backend(), backend);
    let mut out = Vec::new();
    for c in tokens.chunks(chunk) {
        ctx.eval_all(c).unwrap();
        out.extend_from_slice(ctx.all_logits().unwrap());
    }
    out
}

/// Every GPT-2 fixture (3 models x f32/f16/q8_0/q4_0/q4_1) with each of my
/// backends forced gives logits bit-identical to the scalar backend.
#[test]
fn golden_fixtures_bit_identical_to_scalar() {
    let ks = tables("golden fixtures");
    if ks.is_empty() {
        return;
    }
    let m = manifest();
    for model in m["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let tokens: Vec<u32> = model["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        for ty in model["types"].as_array().unwrap() {
            let ty = ty.as_str().unwrap();
            let bytes = read_fixture(&format!("gpt2/{name}.{ty}.gguf"));
            let want = logits(&bytes, &tokens, Backend::Scalar, tokens.len());
            for k in &ks {
                for chunk in [tokens.len(), 3] {
                    let got = logits(&bytes, &tokens, k.backend, chunk);
                    assert_eq!(got.len(), want.len());
                    let bad = got.iter().zip(&want).position(|(a, b)| !same(*a, *b));
                    assert!(
                        bad.is_none(),
                        "{name}.{ty} {} chunk {chunk}: first difference at {bad:?}",
                        k.backend.name()
                    );
                }
                println!("{name}.{ty}: {} bit-identical to scalar", k.backend.name());
            }
        }
    }
}
