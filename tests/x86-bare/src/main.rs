//! x86-bare: embergpt's x86_64 kernel tables on a CPU this host is not.
//!
//! Boots under Bochs (`tests/scripts/bochs_x86.sh`, CPU model `tigerlake`:
//! AVX2 + FMA + F16C + AVX-512 F/BW/VL/VNNI) with no OS: `boot.S` enters long
//! mode and jumps to `_start` (src/rt.rs), which enables SSE/AVX/AVX-512 state
//! (CR0/CR4/XCR0) so that embergpt's own detection (CPUID + XGETBV) selects the
//! tables. Then, for every x86 table `Kernels::new` returns (AVX-512 VNNI,
//! AVX-VNNI, AVX2), every function in it is compared with the scalar table's,
//! and a bundled model's logits with every backend forced are compared with
//! the scalar backend's. Equality is exact (`f32::to_bits`), except that two
//! NaNs count as equal whatever their payloads (as in tests/kernels.rs: Rust
//! does not specify NaN bit patterns); such pairs are counted and reported.
//!
//! Output goes to Bochs's port 0xE9; the last line is
//! `x86-bare: PASS ...` or `x86-bare: FAIL ...` (with the first mismatch), and
//! the run ends through the Bochs BIOS shutdown port.
#![no_std]
#![no_main]

mod checks;
#[path = "../../common/gen.rs"]
mod gen;
pub mod rt;

use core::fmt::{self, Write};

use embergpt::arena::{Arena, Pod};
use embergpt::kernels::Kernels;
use embergpt::Backend;
use rt::Con;

/// Every byte the checks use (test data, outputs, the contexts' arenas).
const SCRATCH_BYTES: usize = 24 << 20;

#[repr(C, align(64))]
struct Scratch([u8; SCRATCH_BYTES]);

static mut SCRATCH: Scratch = Scratch([0; SCRATCH_BYTES]);

pub use gen::Rng;

/// Named shape parameters of a check (printed with a mismatch).
#[derive(Clone, Copy)]
pub struct Shape {
    names: &'static str,
    v: [usize; 6],
}

impl Shape {
    pub fn new(names: &'static str, v: &[usize]) -> Shape {
        let mut a = [0; 6];
        for (d, s) in a.iter_mut().zip(v) {
            *d = *s;
        }
        Shape { names, v: a }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (n, v)) in self.names.split(' ').zip(self.v).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

/// The first mismatch of a table.
#[derive(Clone, Copy)]
pub struct Mismatch {
    table: &'static str,
    func: &'static str,
    shape: Shape,
    index: usize,
    got: u32,
    want: u32,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} [{}] index {}: got {:#010x} ({:e}) want {:#010x} ({:e})",
            self.table,
            self.func,
            self.shape,
            self.index,
            self.got,
            f32::from_bits(self.got),
            self.want,
            f32::from_bits(self.want)
        )
    }
}

/// Comparison bookkeeping for one table.
pub struct Chk {
    pub table: &'static str,
    pub checks: u64,
    pub values: u64,
    pub bad: u64,
    pub nan_pairs: u64,
    /// The first function where two NaNs differed in their bits.
    pub nan_func: Option<&'static str>,
    /// Calls where a kernel declined the shapes (returned false: the caller
    /// then uses the per-key path, which is checked too).
    pub declined: u64,
    pub first: Option<Mismatch>,
}

/// Mismatches printed per table (all are counted).
const PRINT_MISMATCHES: u64 = 8;

impl Chk {
    pub fn new(table: &'static str) -> Chk {
        Chk {
            table,
            checks: 0,
            values: 0,
            bad: 0,
            nan_pairs: 0,
            nan_func: None,
            declined: 0,
            first: None,
        }
    }

    fn fail(&mut self, func: &'static str, shape: Shape, index: usize, got: u32, want: u32) {
        let m = Mismatch {
            table: self.table,
            func,
            shape,
            index,
            got,
            want,
        };
        self.bad += 1;
        if self.bad <= PRINT_MISMATCHES {
            let _ = writeln!(Con, "MISMATCH {m}");
        }
        if self.first.is_none() {
            self.first = Some(m);
        }
    }

    /// One check: `got` and `want` bit for bit (NaN == NaN).
    pub fn f32s(&mut self, func: &'static str, shape: Shape, got: &[f32], want: &[f32]) {
        self.checks += 1;
        if got.len() != want.len() {
            self.fail(func, shape, usize::MAX, got.len() as u32, want.len() as u32);
            return;
        }
        self.values += got.len() as u64;
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            if a.to_bits() != b.to_bits() {
                if a.is_nan() && b.is_nan() {
                    self.nan_pairs += 1;
                    self.nan_func.get_or_insert(func);
                    continue;
                }
                self.fail(func, shape, i, a.to_bits(), b.to_bits());
                return;
            }
        }
    }

    pub fn f32_1(&mut self, func: &'static str, shape: Shape, got: f32, want: f32) {
        self.f32s(func, shape, &[got], &[want]);
    }

    /// One check of quantized blocks, each block as its u16 fields then its
    /// bytes (index = block * 40 + field; f16 fields are compared as bits).
    pub fn words(
        &mut self,
        func: &'static str,
        shape: Shape,
        got: impl Iterator<Item = u32>,
        want: impl Iterator<Item = u32>,
    ) {
        self.checks += 1;
        for (i, (a, b)) in got.zip(want).enumerate() {
            self.values += 1;
            if a != b {
                self.fail(func, shape, i, a, b);
                return;
            }
        }
    }
}

/// `n` zeroed values of `T` from a scratch arena (a bug in the test's sizes
/// panics, which reports FAIL).
pub fn take<'a, T: Pod>(a: &mut Arena<'a>, n: usize) -> &'a mut [T] {
    match a.alloc::<T>(n) {
        Ok(s) => s,
        Err(e) => panic!("scratch too small for {n} values: {e:?}"),
    }
}

/// CPUID.(7,1).EAX bit 4: the CPU model reports AVX-VNNI (whether the table
/// should exist; only used to tell a skip from a detection failure).
fn cpu_has_avxvnni() -> bool {
    use core::arch::x86_64::__cpuid_count;
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 7 is read only when the
    // highest leaf (leaf 0 eax) reaches it. (Safe functions in newer Rust.)
    #[allow(unused_unsafe)]
    unsafe {
        if __cpuid_count(0, 0).eax < 7 || __cpuid_count(7, 0).eax < 1 {
            return false;
        }
        __cpuid_count(7, 1).eax & (1 << 4) != 0
    }
}

/// Failures that are not value mismatches (detection, setup).
#[derive(Default)]
struct Problems {
    failures: u32,
    list: [Option<&'static str>; 4],
}

impl Problems {
    fn note(&mut self, p: &'static str) {
        let _ = writeln!(Con, "FAIL: {p}");
        self.failures += 1;
        if let Some(slot) = self.list.iter_mut().find(|s| s.is_none()) {
            *slot = Some(p);
        }
    }
}

extern "C" fn main() -> ! {
    let p = &raw mut SCRATCH;
    // SAFETY: `main` runs once (called from `_start`, which never returns to
    // it), so this is the only reference to SCRATCH ever made.
    let scratch: &'static mut [u8] = unsafe { &mut (*p).0 };
    rt::install_idt();
    let _ = writeln!(Con, "x86-bare: embergpt x86_64 kernel tables under Bochs");
    let detected = Backend::detect();
    let _ = writeln!(Con, "Backend::detect() = {}", detected.name());

    let mut pr = Problems::default();
    if detected != Backend::Avx512Vnni {
        pr.note("Backend::detect() is not avx512vnni on a CPU model with AVX-512 VNNI");
    }
    if Kernels::detect().backend != detected {
        pr.note("Kernels::detect() differs from Backend::detect()");
    }
    match checks::default_backend(scratch) {
        Ok(b) if b == detected => {
            let _ = writeln!(Con, "Context with backend None runs {}", b.name());
        }
        Ok(_) => pr.note("a Context with backend None does not run the detected backend"),
        Err(e) => pr.note(e),
    }

    let Ok(s) = Kernels::new(Backend::Scalar) else {
        pr.note("Kernels::new(Scalar) failed");
        finish(&pr, &[], &[], None);
    };

    // The tables under test, in Backend::ALL order; each gets its own counts.
    let want = [Backend::Avx512Vnni, Backend::AvxVnni, Backend::Avx2];
    let mut chks = [
        Chk::new("avx512vnni"),
        Chk::new("avxvnni"),
        Chk::new("avx2"),
    ];
    let mut tested = [false; 3];
    for (i, &b) in want.iter().enumerate() {
        match Kernels::new(b) {
            Ok(k) => {
                if k.backend != b {
                    pr.note("Kernels::new returned another backend's table");
                    continue;
                }
                tested[i] = true;
                let _ = writeln!(Con, "== table {}: every function against scalar", b.name());
                checks::all(&mut chks[i], &k, &s, scratch);
                let c = &chks[i];
                let _ = writeln!(
                    Con,
                    "   {}: {} checks, {} values, {} mismatches, {} declined (false/None: the caller's fallback is checked too)",
                    c.table, c.checks, c.values, c.bad, c.declined
                );
                if let Some(f) = c.nan_func {
                    let _ = writeln!(
                        Con,
                        "   {}: {} NaN/NaN pairs with other NaN bits (equal by the rule; first in {f})",
                        c.table, c.nan_pairs
                    );
                }
            }
            Err(e) => {
                let required = match b {
                    Backend::AvxVnni => cpu_has_avxvnni(),
                    _ => true,
                };
                let _ = writeln!(
                    Con,
                    "SKIPPED: table {} ({e:?}: not provided by this CPU model)",
                    b.name()
                );
                if required {
                    pr.note("a table this CPU model provides was not returned");
                }
            }
        }
    }

    // Whole model with every backend forced, against the scalar backend.
    let _ = writeln!(
        Con,
        "== golden logits: bundled model and GPT-2 fixtures, every backend forced"
    );
    let golden_backends = [Backend::Avx512Vnni, Backend::AvxVnni, Backend::Avx2];
    let mut gchk: [Chk; 3] = [
        Chk::new("avx512vnni"),
        Chk::new("avxvnni"),
        Chk::new("avx2"),
    ];
    if let Err(what) = checks::golden(&golden_backends, &tested, &mut gchk, scratch) {
        pr.note(what);
    }
    for ((c, g), _) in chks.iter_mut().zip(&gchk).zip(tested).filter(|(_, t)| *t) {
        let _ = writeln!(
            Con,
            "   {}: {} logits checks ({} values), {} mismatches",
            g.table, g.checks, g.values, g.bad
        );
        c.checks += g.checks;
        c.values += g.values;
        c.bad += g.bad;
        c.nan_pairs += g.nan_pairs;
        if c.first.is_none() {
            c.first = g.first;
        }
    }
    let first = chks.iter().find_map(|c| c.first);
    if chks.iter().any(|c| c.bad > 0) {
        pr.failures += 1;
    }
    finish(&pr, &chks, &tested, first)
}

/// Print the summary and the final PASS/FAIL line, then leave Bochs.
fn finish(pr: &Problems, chks: &[Chk], tested: &[bool], first: Option<Mismatch>) -> ! {
    let failures = pr.failures;
    let mut o = Con;
    let _ = writeln!(o, "== summary");
    for (c, t) in chks.iter().zip(tested.iter()) {
        if *t {
            let _ = writeln!(
                o,
                "   {:<11} {:>6} checks {:>9} values {:>3} mismatches",
                c.table, c.checks, c.values, c.bad
            );
        } else {
            let _ = writeln!(o, "   {:<11} skipped (not on this CPU model)", c.table);
        }
    }
    let _ = write!(
        o,
        "x86-bare: {}",
        if failures == 0 { "PASS" } else { "FAIL" }
    );
    for (c, t) in chks.iter().zip(tested.iter()) {
        if *t {
            let _ = write!(o, " {}={}", c.table, c.checks);
        } else {
            let _ = write!(o, " {}=skipped", c.table);
        }
    }
    if let Some(m) = first {
        let _ = write!(o, " first mismatch: {m}");
    }
    for p in pr.list.iter().flatten() {
        let _ = write!(o, " [{p}]");
    }
    let _ = writeln!(o);
    rt::shutdown()
}
