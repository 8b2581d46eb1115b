//! On-target tests of the Cortex-M kernels (src/kernels/arm/) against the scalar
//! reference, bit for bit, run under QEMU with semihosting:
//!
//! ```text
//! cargo test --target thumbv7em-none-eabihf --features dsp --test cortex_m
//! cargo test --target thumbv8m.main-none-eabihf --features dsp,helium --test cortex_m
//! ```
//! (runners and link flags in .cargo/config.toml). Prints `N passed, N failed`
//! and exits through semihosting with status 0 only if all passed.
//!
//! Also the instructions-per-MAC probe of c-examples/cortex-m (`make macs`):
//! when QEMU preloads a nonzero word at [`MODE_ADDR`], the binary runs one
//! 64 x 512 Q8_0 matrix-vector product (1 = scalar, 2 = DSP, 3 = Helium, 4 = none;
//! 5..=8 the same with Q4_0 weights) and exits; differences of instruction totals
//! between modes give the cost. Modes 9..=15: one 768-value activation row
//! quantized (see `probe_quant`).
//!
//! On hosted targets this file prints that it skipped.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    println!(
        "SKIPPED: tests/cortex_m.rs runs only on thumbv7em/thumbv8m under QEMU \
         (c-examples/cortex-m/ci.sh)"
    );
}

#[cfg(target_os = "none")]
mod target {
    use core::fmt::Write;
    use cortex_m_rt::entry;
    use cortex_m_semihosting::{debug, hio};
    use embergpt::kernels::{self, scalar, Backend, Kernels, Matrix, QuantScratch};
    use embergpt::quant::{f32_to_f16, BlockQ8_0, BlockQ8_1, GgmlType};

    /// Where `make macs` preloads the probe mode (`-device loader,...,data=N`):
    /// PSRAM on mps2-an386, DDR on mps3-an547, both outside the linked image.
    const MODE_ADDR: usize = if cfg!(feature = "helium") {
        0x6000_0000
    } else {
        0x2100_0000
    };

    struct Out(Option<hio::HostStream>);
    impl Write for Out {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            match &mut self.0 {
                Some(h) => h.write_str(s),
                None => Ok(()),
            }
        }
    }

    fn out() -> Out {
        Out(hio::hstdout().ok())
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        let _ = writeln!(out(), "PANIC: {info}");
        debug::exit(debug::EXIT_FAILURE);
        loop {
            core::hint::spin_loop();
        }
    }

    /// xorshift32: deterministic test data.
    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> u32 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.0 = x;
            x
        }
        fn byte(&mut self) -> u8 {
            (self.next() >> 24) as u8
        }
        /// A finite f16 scale of either sign, mostly normal magnitudes.
        fn scale(&mut self) -> u16 {
            let v = (self.next() % 2000) as f32 / 1000.0 - 1.0;
            f32_to_f16(v * 0.05)
        }
    }

    /// Special f16 scales: 0, -0, smallest and largest subnormal, largest finite,
    /// inf, -inf, quiet NaN, signalling NaN, negative NaN with payload.
    const SPECIAL: [u16; 10] = [
        0x0000, 0x8000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7d00, 0xfe01,
    ];

    const MAX_ROWS: usize = 9;
    const MAX_NB: usize = 34;
    const WBUF: usize = MAX_ROWS * MAX_NB * 34 + 4;

    /// Weight bytes starting word-aligned, so that offset 0 takes the kernels'
    /// whole-row paths (word-aligned rows on the DSP, 2-byte aligned on Helium)
    /// and offsets 1..=3 their fallbacks.
    #[repr(C, align(4))]
    struct WBuf([u8; WBUF]);
    const MAX_COLS: usize = MAX_NB * 32;

    struct Stats {
        passed: u32,
        failed: u32,
    }

    impl Stats {
        fn check(&mut self, what: &str, backend: Backend, case: usize, got: f32, want: f32) {
            if got.to_bits() == want.to_bits() {
                self.passed += 1;
            } else {
                self.failed += 1;
                let _ = writeln!(
                    out(),
                    "FAIL {what} [{}] case {case}: got {got:e} ({:#010x}) want {want:e} ({:#010x})",
                    backend.name(),
                    got.to_bits(),
                    want.to_bits()
                );
            }
        }
    }

    impl Stats {
        /// One quantized block: scale bits (and `s` for Q8_1) and every quant.
        fn check_block(
            &mut self,
            what: &str,
            backend: Backend,
            case: usize,
            got: (u16, u16, &[i8; 32]),
            want: (u16, u16, &[i8; 32]),
            x: &[f32],
        ) {
            if got.0 == want.0 && got.1 == want.1 && got.2 == want.2 {
                self.passed += 1;
                return;
            }
            self.failed += 1;
            let mut o = out();
            let _ = writeln!(
                o,
                "FAIL {what} [{}] case {case}: d {:#06x} want {:#06x}, s {:#06x} want {:#06x}",
                backend.name(),
                got.0,
                want.0,
                got.1,
                want.1
            );
            for (i, (g, w)) in got.2.iter().zip(want.2).enumerate() {
                if g != w {
                    let xi = x.get(i).map_or(0, |v| v.to_bits());
                    let _ = writeln!(o, "  q[{i}] = {g} want {w} (x = {xi:#010x})");
                }
            }
        }

        /// [`Self::check_block`] of one block's Q8_0 and Q8_1 quantizations
        /// (`got` from the backend, `want` from scalar), labelled `what[0]` / `what[1]`.
        fn check_q8_pair(
            &mut self,
            what: [&str; 2],
            backend: Backend,
            case: usize,
            got: (&BlockQ8_0, &BlockQ8_1),
            want: (&BlockQ8_0, &BlockQ8_1),
            x: &[f32],
        ) {
            let ((g0, g1), (r0, r1)) = (got, want);
            self.check_block(
                what[0],
                backend,
                case,
                (g0.d, 0, &g0.qs),
                (r0.d, 0, &r0.qs),
                x,
            );
            self.check_block(
                what[1],
                backend,
                case,
                (g1.d, g1.s, &g1.qs),
                (r1.d, r1.s, &r1.qs),
                x,
            );
        }
    }

    /// Fill weights of type `ty` (`rows` x `nb` blocks, starting `off` bytes into
    /// `buf` to test any alignment) and return the row bytes.
    #[allow(clippy::too_many_arguments)]
    fn fill_weights<'a>(
        rng: &mut Rng,
        buf: &'a mut [u8],
        off: usize,
        ty: GgmlType,
        rows: usize,
        nb: usize,
        extreme: bool,
        special: Option<u16>,
    ) -> &'a [u8] {
        let bs = if ty == GgmlType::Q8_0 { 34 } else { 18 };
        let data = &mut buf[off..off + rows * nb * bs];
        for blk in data.chunks_exact_mut(bs) {
            let d = special.unwrap_or_else(|| rng.scale());
            blk[..2].copy_from_slice(&d.to_le_bytes());
            for q in &mut blk[2..] {
                // Q8_0 extremes: -128 (not produced by quantizing, but legal in files).
                *q = if extreme {
                    if ty == GgmlType::Q8_0 {
                        0x80
                    } else {
                        0x00
                    }
                } else {
                    rng.byte()
                };
            }
        }
        data
    }

    fn fill_act(rng: &mut Rng, x: &mut [BlockQ8_0], extreme: bool, special: Option<u16>) {
        for b in x {
            b.d = special.unwrap_or_else(|| rng.scale());
            for q in &mut b.qs {
                *q = if extreme { -128 } else { rng.byte() as i8 };
            }
        }
    }

    fn arm_backends() -> impl Iterator<Item = Backend> {
        [Backend::CortexMDsp, Backend::Helium]
            .into_iter()
            .filter(|b| b.is_available())
    }

    /// The backend's 4-row Q8_0 kernel.
    fn rows4(b: Backend, w: &[&[u8]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
        match b {
            #[cfg(feature = "dsp")]
            Backend::CortexMDsp => kernels::arm::dsp::rows4_q8_0_q8_0(w, x),
            #[cfg(feature = "helium")]
            Backend::Helium => kernels::arm::helium::rows4_q8_0_q8_0(w, x),
            _ => [f32::NAN; 4],
        }
    }

    /// Table entries (one row) and the multi-row matvec against scalar.
    fn test_dots(st: &mut Stats) {
        let mut rng = Rng(0x1234_5678);
        let mut wbuf = WBuf([0u8; WBUF]);
        let wbuf = &mut wbuf.0;
        let mut x = [BlockQ8_0::default(); MAX_NB];
        let mut outv = [0.0f32; MAX_ROWS];
        // Even block counts up to 32 take the DSP whole-row kernel, up to 64 the
        // Helium one (at even offsets); the others their fallbacks.
        let nbs = [0usize, 1, 2, 3, 4, 6, 7, 8, 9, 15, 16, 17, 32, 33, 34];
        let mut case = 0;
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0] {
            let bs = if ty == GgmlType::Q8_0 { 34 } else { 18 };
            for &nb in &nbs {
                for rows in [1usize, 3, 4, 5, 8, 9] {
                    for variant in 0..(3 + SPECIAL.len()) {
                        case += 1;
                        let off = case % 4;
                        let extreme = variant == 1;
                        let special = variant.checked_sub(3).map(|i| SPECIAL[i]);
                        let w = fill_weights(&mut rng, wbuf, off, ty, rows, nb, extreme, special);
                        // Activations: specials on the activation side for odd cases.
                        let sx = if case % 2 == 1 { special } else { None };
                        fill_act(&mut rng, &mut x[..nb], extreme, sx);
                        let x = &x[..nb];
                        let sref = if ty == GgmlType::Q8_0 {
                            scalar::vec_dot_q8_0_q8_0
                        } else {
                            scalar::vec_dot_q4_0_q8_0
                        };
                        for b in arm_backends() {
                            let k = match Kernels::new(b) {
                                Ok(k) => k,
                                Err(_) => {
                                    st.failed += 1;
                                    continue;
                                }
                            };
                            let kd = if ty == GgmlType::Q8_0 {
                                k.vec_dot_q8_0_q8_0
                            } else {
                                k.vec_dot_q4_0_q8_0
                            };
                            if nb == 0 {
                                st.check("vec_dot empty", b, case, kd(&[], x), sref(&[], x));
                                continue;
                            }
                            for (r, wr) in w.chunks_exact(nb * bs).enumerate() {
                                st.check("vec_dot", b, case * 16 + r, kd(wr, x), sref(wr, x));
                            }
                            let handled =
                                kernels::arm::matvec(b, ty, w, nb * bs, x, &mut outv[..rows]);
                            if !handled {
                                st.check("matvec handled", b, case, 0.0, 1.0);
                                continue;
                            }
                            for (r, wr) in w.chunks_exact(nb * bs).enumerate() {
                                st.check("matvec", b, case * 16 + r, outv[r], sref(wr, x));
                            }
                            // Rows not evenly spaced (the 4-row kernels' other path).
                            if ty == GgmlType::Q8_0 && rows >= 4 {
                                let rb = nb * bs;
                                let pick = [2usize, 0, 3, 1];
                                let wr: [&[u8]; 4] =
                                    core::array::from_fn(|i| &w[pick[i] * rb..(pick[i] + 1) * rb]);
                                let got = rows4(b, &wr, x);
                                for i in 0..4 {
                                    st.check(
                                        "rows4 uneven",
                                        b,
                                        case * 16 + i,
                                        got[i],
                                        sref(wr[i], x),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        // Shorter activations than the row (the scalar loop stops at the shorter).
        let w = fill_weights(&mut rng, wbuf, 1, GgmlType::Q8_0, 1, 9, false, None);
        fill_act(&mut rng, &mut x[..5], false, None);
        for b in arm_backends() {
            if let Ok(k) = Kernels::new(b) {
                st.check(
                    "short x",
                    b,
                    0,
                    (k.vec_dot_q8_0_q8_0)(w, &x[..5]),
                    scalar::vec_dot_q8_0_q8_0(w, &x[..5]),
                );
            }
        }
    }

    /// `kernels::matmul` (quantize + matvec) through each backend's table against
    /// the scalar table, for n = 1..3 activation rows.
    fn test_matmul(st: &mut Stats) {
        let mut rng = Rng(0x9e37_79b9);
        let mut wbuf = WBuf([0u8; WBUF]);
        let wbuf = &mut wbuf.0;
        let mut xf = [0.0f32; 3 * MAX_COLS];
        let mut q8_0 = [BlockQ8_0::default(); 3 * MAX_NB];
        let mut q8_1 = [BlockQ8_1::default(); 3 * MAX_NB];
        let mut o_ref = [0.0f32; 3 * MAX_ROWS];
        let mut o_got = [0.0f32; 3 * MAX_ROWS];
        let sk = match Kernels::new(Backend::Scalar) {
            Ok(k) => k,
            Err(_) => return,
        };
        let mut case = 0;
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0] {
            for nb in [1usize, 2, 4, 16, 32, 33] {
                for rows in [1usize, 4, 7, 9] {
                    for n in 1..=3usize {
                        case += 1;
                        let cols = nb * 32;
                        let data =
                            fill_weights(&mut rng, wbuf, case % 4, ty, rows, nb, false, None);
                        let m = Matrix {
                            ty,
                            rows,
                            cols,
                            data,
                        };
                        for v in &mut xf[..n * cols] {
                            *v = (rng.next() % 20001) as f32 / 1000.0 - 10.0;
                        }
                        let x = &xf[..n * cols];
                        let mut s = QuantScratch {
                            q8_0: &mut q8_0,
                            q8_1: &mut q8_1,
                        };
                        let r = kernels::matmul(&sk, &m, x, n, &mut o_ref[..n * rows], &mut s);
                        if r.is_err() {
                            st.check("matmul ref ok", Backend::Scalar, case, 0.0, 1.0);
                            continue;
                        }
                        for b in arm_backends() {
                            let Ok(k) = Kernels::new(b) else { continue };
                            let mut s = QuantScratch {
                                q8_0: &mut q8_0,
                                q8_1: &mut q8_1,
                            };
                            o_got[..n * rows].fill(f32::NAN);
                            match kernels::matmul(&k, &m, x, n, &mut o_got[..n * rows], &mut s) {
                                Ok(()) => {
                                    for i in 0..n * rows {
                                        st.check("matmul", b, case * 64 + i, o_got[i], o_ref[i]);
                                    }
                                }
                                Err(_) => st.check("matmul ok", b, case, 0.0, 1.0),
                            }
                        }
                    }
                }
            }
        }
    }

    /// Special f32 values for the quantizer: signed zeros, subnormals (smallest,
    /// largest, middle), smallest normal, largest finite, infinities, quiet and
    /// signalling NaNs of both signs with payloads, and the Helium kernel's
    /// amax threshold 2^-100 with its neighbours.
    const QSPECIAL: [u32; 22] = [
        0x0000_0000,
        0x8000_0000,
        0x0000_0001,
        0x8000_0001,
        0x007f_ffff,
        0x807f_ffff,
        0x0040_0000,
        0x0080_0000,
        0x7f7f_ffff,
        0xff7f_ffff,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0xffc0_0000,
        0x7fa0_0000,
        0x7f80_0001,
        0xff80_0001,
        0x7fc1_2345,
        0x0d80_0000,
        0x0d7f_ffff,
        0x0d80_0001,
        0x8d80_0000,
    ];

    impl Rng {
        /// A random f32 with exponent field `e` (clamped to 0..=254) and random
        /// sign and mantissa.
        fn with_exp(&mut self, e: i32) -> f32 {
            let r = self.next();
            let e = e.clamp(0, 254) as u32;
            f32::from_bits((r & 0x8000_0000) | (e << 23) | (self.next() & 0x007f_ffff))
        }
    }

    /// The magnitude of f16 bits `m` (`m <= 0x7c00`; 0x7c00 gives 65536, the
    /// value IEEE rounding treats as the successor of 65504), exact in f32.
    fn f16_mag(m: u32) -> f32 {
        let (e, f) = (m >> 10, m & 0x3ff);
        if e == 0 {
            f as f32 * f32::from_bits(0x3380_0000) // 2^-24
        } else {
            (1024 + f) as f32 * f32::from_bits((e + 127 - 25) << 23)
        }
    }

    /// Whether f32 -> f16 of `v` is a rounding tie (`|v|` exactly halfway
    /// between two neighbouring f16 magnitudes, the top one possibly 65536).
    fn f16_tie(v: f32) -> bool {
        let a = v.abs();
        if a.is_nan() || a >= 65536.0 {
            return false;
        }
        let h = (f32_to_f16(a) & 0x7fff) as u32;
        let hv = f16_mag(h);
        if hv == a {
            return false;
        }
        let lo = if hv < a { h } else { h - 1 };
        (f16_mag(lo) + f16_mag(lo + 1)) / 2.0 == a
    }

    /// The midpoint above f16 magnitude `m` (`m < 0x7c00`): exact in f32.
    fn f16_mid(m: u32) -> f32 {
        (f16_mag(m) + f16_mag(m + 1)) / 2.0
    }

    /// A random f16 magnitude below 0x7c00, often an edge (0, the largest
    /// subnormal, the smallest normal, the largest finite).
    fn f16_edge(rng: &mut Rng) -> u32 {
        match rng.next() % 8 {
            0 => 0,
            1 => 0x3ff,
            2 => 0x400,
            3 => 0x7bff,
            4 => 0x7bfe,
            _ => rng.next() % 0x7c00,
        }
    }

    /// One block of 32 test values of kind `kind` (see the match).
    fn fill_qblock(rng: &mut Rng, x: &mut [f32], kind: u32) {
        match kind % 16 {
            // near ties of `x * id` for a random amax: x = t / id (t = k + 0.5)
            // moved by -2..=2 ulps, with `x * id` an exact tie for some of them
            12 => {
                let e = 90 + (rng.next() % 80) as i32;
                let amax = rng.with_exp(e).abs();
                let d = amax / 127.0;
                let id = 1.0 / d;
                x.iter_mut().for_each(|v| {
                    let t = ((rng.next() % 254) as i32 - 127) as f32 + 0.5;
                    let b = (t / id).to_bits() as i32 + (rng.next() % 5) as i32 - 2;
                    let y = f32::from_bits(b as u32);
                    *v = if y.abs() <= amax {
                        y
                    } else {
                        t.signum() * amax
                    };
                });
                let i = (rng.next() % 32) as usize;
                x[i] = if rng.next().is_multiple_of(2) {
                    amax
                } else {
                    -amax
                };
            }
            // `d` an exact f16 tie: amax = 127 * (an f16 midpoint), exact, so
            // d = amax / 127 is that midpoint (0/2^-24, subnormal/normal, 65520)
            13 => {
                let amax = 127.0 * f16_mid(f16_edge(rng));
                x.iter_mut().for_each(|v| {
                    let r = (rng.next() % 20001) as f32 / 10000.0 - 1.0;
                    *v = r * amax
                });
                let i = (rng.next() % 32) as usize;
                x[i] = if rng.next().is_multiple_of(2) {
                    amax
                } else {
                    -amax
                };
            }
            // Q8_1 `s = d * sum` an exact f16 tie: sum = +-2^k (a quant of 127,
            // one of sum - 127, the rest pairs +-j * d that cancel), d = mid / sum
            14 => {
                let k = 5 + rng.next() % 3; // sum 32, 64 or 128
                let sign = if rng.next().is_multiple_of(2) {
                    1.0
                } else {
                    -1.0
                };
                let sum = sign * (1u32 << k) as f32;
                let d = f16_mid(f16_edge(rng)) / sum.abs();
                let amax = 127.0 * d;
                x.iter_mut().for_each(|v| *v = 0.0);
                for p in x.chunks_exact_mut(2) {
                    let j = (rng.next() % 127) as f32 * d;
                    p[0] = j;
                    p[1] = -j;
                }
                x[0] = sign * amax;
                x[1] = (sum - sign * 127.0) * d;
            }
            // every value at or just below +-amax (products 127 or just above)
            15 => {
                let e = 1 + (rng.next() % 253) as i32;
                let amax = rng.with_exp(e).abs();
                x.iter_mut().for_each(|v| {
                    let m = f32::from_bits(amax.to_bits() - rng.next() % 4);
                    *v = if rng.next().is_multiple_of(2) { m } else { -m }
                });
                x[(rng.next() % 32) as usize] = amax;
            }
            // random magnitudes within 2^10 of a random exponent over the whole range
            0 => {
                let e = (rng.next() % 256) as i32;
                x.iter_mut().for_each(|v| {
                    let k = (rng.next() % 11) as i32;
                    *v = rng.with_exp(e - k)
                });
            }
            // typical activations, uniform in [-10, 10] with 1/1000 steps
            1 => x
                .iter_mut()
                .for_each(|v| *v = (rng.next() % 20001) as f32 / 1000.0 - 10.0),
            // arbitrary bits (NaNs and infinities 1 in 256)
            2 => x.iter_mut().for_each(|v| *v = f32::from_bits(rng.next())),
            // a normal block with 1 to 3 specials at random places
            3 => {
                x.iter_mut().for_each(|v| {
                    *v = {
                        let k = (rng.next() % 16) as i32;
                        rng.with_exp(120 + k)
                    }
                });
                for _ in 0..1 + rng.next() % 3 {
                    let i = (rng.next() % 32) as usize;
                    let s = QSPECIAL[(rng.next() as usize) % QSPECIAL.len()];
                    x[i] = f32::from_bits(s);
                }
            }
            // one special value everywhere, or mixed with zeros
            4 => {
                let s = f32::from_bits(QSPECIAL[(rng.next() as usize) % QSPECIAL.len()]);
                let zeros = rng.next().is_multiple_of(2);
                x.iter_mut().for_each(|v| {
                    *v = if zeros && rng.next().is_multiple_of(2) {
                        0.0
                    } else {
                        s
                    }
                });
            }
            // exact ties: amax = 127 * 2^k, so d = 2^k, id = 2^-k and x * id = m + 0.5
            5 => {
                let k = (rng.next() % 41) as i32 - 20;
                let p = f32::from_bits(((127 + k) as u32) << 23);
                x.iter_mut().for_each(|v| {
                    let m = (rng.next() % 254) as f32 - 127.0;
                    *v = (m + 0.5) * p
                });
                let i = (rng.next() % 32) as usize;
                x[i] = if rng.next().is_multiple_of(2) {
                    127.0 * p
                } else {
                    -127.0 * p
                };
            }
            // subnormal blocks (amax subnormal: d tiny or 0, id huge or inf)
            6 => {
                let bits = 1 + rng.next() % 23;
                x.iter_mut().for_each(|v| {
                    let r = rng.next();
                    *v = f32::from_bits((r & 0x8000_0000) | (rng.next() >> (32 - bits)))
                });
            }
            // around the Helium threshold 2^-100, with subnormals mixed in
            7 => {
                let e = 27 + (rng.next() % 3) as i32 - 1;
                x.iter_mut().for_each(|v| {
                    *v = if rng.next().is_multiple_of(3) {
                        f32::from_bits(rng.next() & 0x807f_ffff)
                    } else {
                        {
                            let k = (rng.next() % 30) as i32;
                            rng.with_exp(e - k)
                        }
                    }
                });
            }
            // huge values (amax near f32::MAX: d large, id tiny but normal)
            8 => x.iter_mut().for_each(|v| {
                *v = {
                    let k = (rng.next() % 4) as i32;
                    rng.with_exp(254 - k)
                }
            }),
            // signed zeros
            9 => x.iter_mut().for_each(|v| {
                *v = if rng.next().is_multiple_of(2) {
                    0.0
                } else {
                    -0.0
                }
            }),
            // random values plus an infinity
            10 => {
                x.iter_mut().for_each(|v| {
                    *v = {
                        let k = (rng.next() % 8) as i32;
                        rng.with_exp(127 + k)
                    }
                });
                let i = (rng.next() % 32) as usize;
                x[i] = if rng.next().is_multiple_of(2) {
                    f32::INFINITY
                } else {
                    f32::NEG_INFINITY
                };
            }
            // random values with NaNs of random payloads at random places
            _ => {
                x.iter_mut().for_each(|v| {
                    *v = {
                        let k = (rng.next() % 40) as i32;
                        rng.with_exp(100 + k)
                    }
                });
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() % 32) as usize;
                    let nan = 0x7f80_0000 | (rng.next() & 0x807f_ffff) | 1;
                    x[i] = f32::from_bits(nan);
                }
            }
        }
    }

    /// The backends' `quantize_row_q8_0` / `quantize_row_q8_1` against scalar,
    /// block by block (scale bits, `s` bits, every quant), on random and special
    /// blocks, including rows whose lengths disagree (the extra is left alone).
    fn test_quantize(st: &mut Stats) {
        const NB: usize = 8;
        let mut rng = Rng(0x0bad_cafe);
        let mut x = [0.0f32; NB * 32 + 40];
        let sk = match Kernels::new(Backend::Scalar) {
            Ok(k) => k,
            Err(_) => return,
        };
        let fill0 = BlockQ8_0 {
            d: 0x5555,
            qs: [0x55; 32],
        };
        let fill1 = BlockQ8_1 {
            d: 0x5555,
            s: 0x5555,
            qs: [0x55; 32],
        };
        // how many rounding ties the data holds (each kind must occur)
        let (mut ties_q, mut ties_d, mut ties_s) = (0u32, 0u32, 0u32);
        for case in 0..600usize {
            for (j, xb) in x.chunks_exact_mut(32).enumerate() {
                fill_qblock(&mut rng, xb, (case * NB + j) as u32 / 3);
            }
            {
                let mut y = [fill1; NB];
                (sk.quantize_row_q8_1)(&x[..NB * 32], &mut y);
                for (xb, yb) in x.chunks_exact(32).zip(&y) {
                    let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let d = amax / 127.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    for &v in xb {
                        let p = v * id;
                        if p.abs() < 1e6 && (p - (p as i32) as f32).abs() == 0.5 {
                            ties_q += 1;
                        }
                    }
                    let sum: i32 = yb.qs.iter().map(|&q| q as i32).sum();
                    ties_d += f16_tie(d) as u32;
                    ties_s += f16_tie(d * sum as f32) as u32;
                }
            }
            // lengths: whole rows mostly, sometimes fewer blocks or a ragged tail
            let (nx, ny) = match case % 8 {
                0 => (NB * 32 + 17, NB),
                1 => (3 * 32, NB),
                2 => (NB * 32, 5),
                _ => (NB * 32, NB),
            };
            let xs = &x[..nx];
            for b in arm_backends() {
                let Ok(k) = Kernels::new(b) else { continue };
                let (mut y0r, mut y0g) = ([fill0; NB], [fill0; NB]);
                (sk.quantize_row_q8_0)(xs, &mut y0r[..ny]);
                (k.quantize_row_q8_0)(xs, &mut y0g[..ny]);
                let (mut y1r, mut y1g) = ([fill1; NB], [fill1; NB]);
                (sk.quantize_row_q8_1)(xs, &mut y1r[..ny]);
                (k.quantize_row_q8_1)(xs, &mut y1g[..ny]);
                for j in 0..NB {
                    let xb = x.get(j * 32..j * 32 + 32).unwrap_or(&[]);
                    st.check_q8_pair(
                        ["q8_0", "q8_1"],
                        b,
                        case * NB + j,
                        (&y0g[j], &y1g[j]),
                        (&y0r[j], &y1r[j]),
                        xb,
                    );
                }
            }
        }
        let _ = writeln!(
            out(),
            "quantize: {ties_q} ties of x * id, {ties_d} f16 ties of d, {ties_s} of s"
        );
        for (what, n) in [("x * id", ties_q), ("d", ties_d), ("s", ties_s)] {
            if n < 50 {
                let _ = writeln!(out(), "FAIL quantize test data: only {n} ties of {what}");
                st.failed += 1;
            }
        }
    }

    /// FPSCR (`VMRS`).
    fn fpscr() -> u32 {
        let r: u32;
        // SAFETY: reads FPSCR into a register; the FPU is enabled (eabihf).
        unsafe {
            core::arch::asm!("vmrs {r}, fpscr", r = out(reg) r,
                             options(nomem, nostack, preserves_flags))
        };
        r
    }

    /// Writes FPSCR (`VMSR`).
    fn set_fpscr(v: u32) {
        // SAFETY: writes FPSCR; the callers restore the value they read.
        unsafe { core::arch::asm!("vmsr fpscr, {v}", v = in(reg) v, options(nomem, nostack)) };
    }

    /// The quantizers with FPSCR modes other than the IEEE defaults (each
    /// rounding mode, flush to zero, default NaN, alternative half precision,
    /// FZ16 on the M55):
    /// still bit-identical to the scalar reference run in the same mode. The
    /// mode is set only around the two calls (Rust assumes the default
    /// environment; firmware in C may not), and restored before comparing.
    fn test_fpscr_modes(st: &mut Stats) {
        const NB: usize = 16;
        let mut rng = Rng(0x0f95_c3a1);
        let mut x = [0.0f32; NB * 32];
        let Ok(sk) = Kernels::new(Backend::Scalar) else {
            return;
        };
        let saved = fpscr();
        let _ = writeln!(out(), "FPSCR at test start: {saved:#010x}");
        // RMode 1..=3, FZ, DN, AHP, all of them; FZ16 where it exists (M55)
        let fz16 = if cfg!(feature = "helium") {
            1 << 19
        } else {
            1 << 24
        };
        let modes = [
            1 << 22,
            2 << 22,
            3 << 22,
            1 << 24,
            1 << 25,
            1 << 26,
            0x0740_0000,
            fz16,
        ];
        for (case, &mode) in modes.iter().cycle().take(4 * modes.len()).enumerate() {
            for (j, xb) in x.chunks_exact_mut(32).enumerate() {
                fill_qblock(&mut rng, xb, (case * NB + j) as u32);
            }
            for b in arm_backends() {
                let Ok(k) = Kernels::new(b) else { continue };
                let (mut y0r, mut y0g) = ([BlockQ8_0::default(); NB], [BlockQ8_0::default(); NB]);
                let (mut y1r, mut y1g) = ([BlockQ8_1::default(); NB], [BlockQ8_1::default(); NB]);
                set_fpscr((saved & !0x07c8_0000) | mode);
                (sk.quantize_row_q8_0)(&x, &mut y0r);
                (k.quantize_row_q8_0)(&x, &mut y0g);
                (sk.quantize_row_q8_1)(&x, &mut y1r);
                (k.quantize_row_q8_1)(&x, &mut y1g);
                set_fpscr(saved);
                for (j, xb) in x.chunks_exact(32).enumerate() {
                    st.check_q8_pair(
                        ["q8_0 fpscr", "q8_1 fpscr"],
                        b,
                        case * NB + j,
                        (&y0g[j], &y1g[j]),
                        (&y0r[j], &y1r[j]),
                        xb,
                    );
                }
            }
        }
    }

    /// The DSP and Helium quantizers' f32 -> f16 (`VCVTB.F16.F32`) against
    /// `quant::f32_to_f16`: every sign and exponent, with the mantissa's top 10
    /// bits from a sweep and the low 13 (the rounded-off part) at every rounding
    /// boundary, plus random bits.
    fn test_f32_to_f16(st: &mut Stats) {
        let mut rng = Rng(0x5eed_1234);
        let lows = [0u32, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x0800, 0x17ff];
        let mut bad = 0u32;
        let mut n = 0u32;
        for se in 0..512u32 {
            for k in 0..40u32 {
                let hi = match k {
                    0 => 0,
                    1 => 0x3ff,
                    2 => 0x200,
                    3 => 1,
                    _ => rng.next() & 0x3ff,
                };
                for &lo in &lows {
                    for bits in [(se << 23) | (hi << 13) | lo, rng.next()] {
                        let v = f32::from_bits(bits);
                        let (g, w) = (kernels::arm::f32_to_f16(v), f32_to_f16(v));
                        n += 1;
                        if g != w {
                            bad += 1;
                            if bad <= 8 {
                                let _ = writeln!(
                                    out(),
                                    "FAIL f32_to_f16 {bits:#010x}: got {g:#06x} want {w:#06x}"
                                );
                            }
                        }
                    }
                }
            }
        }
        if bad == 0 {
            st.passed += n;
        } else {
            st.failed += bad;
            st.passed += n - bad;
        }
    }

    /// The instructions-per-MAC probe: one 64 x 512 matrix-vector product, Q8_0
    /// weights for modes 1..=4, Q4_0 for 5..=8 (in each four: scalar reference,
    /// DSP, Helium, setup only), through `kernels::arm::matvec`: the batched
    /// kernel with all 64 rows in one call, as `kernels::matmul` calls it for
    /// one activation row.
    fn probe(mode: u32) {
        const ROWS: usize = 64;
        const NB: usize = 16;
        /// Word-aligned, as a GGUF tensor's data is.
        #[repr(C, align(4))]
        struct Probe([u8; ROWS * NB * 34]);
        static mut W: Probe = Probe([0; ROWS * NB * 34]);
        let mut rng = Rng(7);
        type Dot = fn(&[u8], &[BlockQ8_0]) -> f32;
        let (ty, bs, sref): (_, _, Dot) = if mode <= 4 {
            (GgmlType::Q8_0, 34, scalar::vec_dot_q8_0_q8_0)
        } else {
            (GgmlType::Q4_0, 18, scalar::vec_dot_q4_0_q8_0)
        };
        // SAFETY: single-threaded bare-metal code; the only reference to W.
        let w: &mut [u8] = unsafe { &mut (*core::ptr::addr_of_mut!(W)).0 };
        let w = fill_weights(&mut rng, w, 0, ty, ROWS, NB, false, None);
        let mut x = [BlockQ8_0::default(); NB];
        fill_act(&mut rng, &mut x, false, None);
        let mut o = [0.0f32; ROWS];
        match (mode - 1) % 4 {
            0 => {
                for (r, wr) in w.chunks_exact(NB * bs).enumerate() {
                    o[r] = sref(core::hint::black_box(wr), &x);
                }
            }
            k @ (1 | 2) => {
                let b = if k == 1 {
                    Backend::CortexMDsp
                } else {
                    Backend::Helium
                };
                if !kernels::arm::matvec(b, ty, core::hint::black_box(w), NB * bs, &x, &mut o) {
                    let _ = writeln!(out(), "probe: backend {} not built in", b.name());
                    debug::exit(debug::EXIT_FAILURE);
                }
            }
            _ => {}
        }
        core::hint::black_box(&o);
        let _ = writeln!(out(), "probe mode {mode}: o[0] = {:#010x}", o[0].to_bits());
        debug::exit(debug::EXIT_SUCCESS);
    }

    /// The quantization probe: one 768-value row (24 blocks) of typical
    /// activations (uniform in [-10, 10]) quantized by the table entries:
    /// mode 9 = setup only, 10 / 11 / 14 = Q8_0 scalar / Helium / DSP, 12 / 13 /
    /// 15 = Q8_1.
    fn probe_quant(mode: u32) {
        const N: usize = 768;
        let mut rng = Rng(11);
        let mut x = [0.0f32; N];
        for v in &mut x {
            *v = (rng.next() % 20001) as f32 / 1000.0 - 10.0;
        }
        let mut y0 = [BlockQ8_0::default(); N / 32];
        let mut y1 = [BlockQ8_1::default(); N / 32];
        let b = match mode {
            11 | 13 => Backend::Helium,
            14 | 15 => Backend::CortexMDsp,
            _ => Backend::Scalar,
        };
        let Ok(k) = Kernels::new(b) else {
            let _ = writeln!(out(), "probe: backend {} not built in", b.name());
            debug::exit(debug::EXIT_FAILURE);
            return;
        };
        match mode {
            10 | 11 | 14 => (k.quantize_row_q8_0)(core::hint::black_box(&x), &mut y0),
            12 | 13 | 15 => (k.quantize_row_q8_1)(core::hint::black_box(&x), &mut y1),
            _ => {}
        }
        core::hint::black_box((&y0, &y1));
        let _ = writeln!(
            out(),
            "probe mode {mode}: d[0] = {:#06x}",
            y0[0].d | y1[0].d
        );
        debug::exit(debug::EXIT_SUCCESS);
    }

    #[entry]
    fn main() -> ! {
        // SAFETY: MODE_ADDR is emulated RAM outside the image (zero unless preloaded).
        let mode = unsafe { core::ptr::read_volatile(MODE_ADDR as *const u32) };
        if (1..=8).contains(&mode) {
            probe(mode);
        }
        if (9..=15).contains(&mode) {
            probe_quant(mode);
        }
        let mut st = Stats {
            passed: 0,
            failed: 0,
        };
        if arm_backends().next().is_none() {
            let _ = writeln!(
                out(),
                "no Cortex-M backend built in: pass --features dsp (and helium on M55)"
            );
            st.failed += 1;
        }
        for b in arm_backends() {
            let _ = writeln!(out(), "testing backend {}", b.name());
        }
        test_dots(&mut st);
        test_matmul(&mut st);
        test_quantize(&mut st);
        test_fpscr_modes(&mut st);
        test_f32_to_f16(&mut st);
        let _ = writeln!(
            out(),
            "cortex_m: {} passed, {} failed",
            st.passed,
            st.failed
        );
        debug::exit(if st.failed == 0 {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        });
        loop {
            core::hint::spin_loop();
        }
    }
}
