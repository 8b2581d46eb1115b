//! Sampler tests on hand-made logits, plus a determinism guard against an
//! independent f64 reimplementation of the documented chain (src/sampler.rs).

use embergpt::sampler::{Pcg32, Sampler, SamplerParams};
use embergpt::Error;

/// A sampler whose arena lives for the rest of the test process.
fn sampler(n_vocab: usize, p: SamplerParams) -> Sampler<'static> {
    let size = Sampler::arena_size(n_vocab, &p).expect("arena_size");
    let arena: &'static mut [u8] = Box::leak(vec![0u8; size].into_boxed_slice());
    Sampler::new(n_vocab, &p, arena).expect("new")
}

fn stochastic(seed: u64) -> SamplerParams {
    SamplerParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed,
        ..SamplerParams::greedy()
    }
}

fn draws(s: &mut Sampler<'_>, logits: &[f32], n: usize) -> Vec<u32> {
    (0..n).map(|_| s.sample(logits).expect("sample")).collect()
}

fn counts(seq: &[u32], n_vocab: usize) -> Vec<usize> {
    let mut c = vec![0; n_vocab];
    for &t in seq {
        c[t as usize] += 1;
    }
    c
}

fn ln(p: &[f64]) -> Vec<f32> {
    p.iter().map(|&x| x.ln() as f32).collect()
}

// ---------------------------------------------------------------------------
// greedy, NaN, inf
// ---------------------------------------------------------------------------

#[test]
fn temperature_zero_is_argmax_ties_lowest_id() {
    let mut s = sampler(6, SamplerParams::greedy());
    assert_eq!(s.sample(&[0.1, 3.0, -2.0, 2.9, 0.0, 1.0]).unwrap(), 1);
    assert_eq!(s.sample(&[0.1, 3.0, -2.0, 3.0, 0.0, 3.0]).unwrap(), 1);
    assert_eq!(s.sample(&[-5.0, -4.0, -4.0, -6.0, -7.0, -8.0]).unwrap(), 1);
    // -0.0 and +0.0 tie.
    assert_eq!(s.sample(&[-1.0, -0.0, 0.0, -1.0, -1.0, -1.0]).unwrap(), 1);
    assert_eq!(s.sample(&[-1.0, 0.0, -0.0, -1.0, -1.0, -1.0]).unwrap(), 1);
    // Same on a vocabulary too big to eyeball.
    let logits: Vec<f32> = (0..5000)
        .map(|i| ((i * 7919) % 4999) as f32 * 1e-3)
        .collect();
    let want = (0..5000)
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
        .unwrap();
    let mut s = sampler(5000, SamplerParams::greedy());
    assert_eq!(s.sample(&logits).unwrap() as usize, want);
}

#[test]
fn nan_is_never_selected() {
    let nan = f32::NAN;
    let mut g = sampler(4, SamplerParams::greedy());
    assert_eq!(g.sample(&[nan, 1.0, nan, 0.5]).unwrap(), 1);
    assert_eq!(g.sample(&[nan, f32::NEG_INFINITY, -3.0, nan]).unwrap(), 2);
    let mut s = sampler(4, stochastic(7));
    let seq = draws(&mut s, &[nan, 0.0, nan, 0.0], 2000);
    let c = counts(&seq, 4);
    assert_eq!(c[0] + c[2], 0);
    assert!(c[1] > 800 && c[3] > 800, "{c:?}");
}

#[test]
fn no_candidates() {
    let ninf = f32::NEG_INFINITY;
    for p in [
        SamplerParams::greedy(),
        stochastic(1),
        SamplerParams::default(),
    ] {
        let mut s = sampler(3, p);
        assert_eq!(s.sample(&[ninf; 3]), Err(Error::NoCandidates));
        assert_eq!(s.sample(&[f32::NAN; 3]), Err(Error::NoCandidates));
        assert_eq!(
            s.sample(&[f32::NAN, ninf, f32::NAN]),
            Err(Error::NoCandidates)
        );
        // Still usable afterwards.
        assert_eq!(s.sample(&[ninf, 0.0, ninf]), Ok(1));
    }
}

#[test]
fn all_neg_inf_but_one() {
    let ninf = f32::NEG_INFINITY;
    let mut logits = vec![ninf; 300];
    logits[217] = -1e30;
    for seed in 0..20 {
        let p = SamplerParams {
            temperature: 5.0,
            top_k: 10,
            top_p: 0.5,
            min_p: 0.9,
            seed,
            ..SamplerParams::default()
        };
        let mut s = sampler(300, p);
        assert_eq!(s.sample(&logits).unwrap(), 217);
        let mut s = sampler(300, stochastic(seed));
        assert_eq!(s.sample(&logits).unwrap(), 217);
    }
}

#[test]
fn positive_infinity_wins_deterministically() {
    let inf = f32::INFINITY;
    let logits = [1e30, inf, 5.0, inf, f32::NAN];
    let mut g = sampler(5, SamplerParams::greedy());
    assert_eq!(g.sample(&logits).unwrap(), 1);
    // Stochastic: the +inf tokens only, equally likely.
    let mut s = sampler(5, stochastic(3));
    let c = counts(&draws(&mut s, &logits, 4000), 5);
    assert_eq!(c[0] + c[2] + c[4], 0);
    assert!(c[1] > 1800 && c[3] > 1800, "{c:?}");
    // top-k = 1 among tied +inf tokens keeps the lowest id.
    let mut s = sampler(
        5,
        SamplerParams {
            top_k: 1,
            ..stochastic(3)
        },
    );
    assert!(draws(&mut s, &logits, 200).iter().all(|&t| t == 1));
}

// ---------------------------------------------------------------------------
// top-k, top-p, min-p
// ---------------------------------------------------------------------------

#[test]
fn top_k_edges() {
    let logits = ln(&[0.1, 0.2, 0.3, 0.4]);
    // k = 1 is argmax.
    let mut s = sampler(
        4,
        SamplerParams {
            top_k: 1,
            ..stochastic(11)
        },
    );
    assert!(draws(&mut s, &logits, 500).iter().all(|&t| t == 3));
    // k >= n changes nothing: same sequence as no top-k.
    let base = draws(&mut sampler(4, stochastic(11)), &logits, 500);
    for k in [4, 5, 1000] {
        let mut s = sampler(
            4,
            SamplerParams {
                top_k: k,
                ..stochastic(11)
            },
        );
        assert_eq!(draws(&mut s, &logits, 500), base, "k = {k}");
    }
    // k = 2 keeps the two best.
    let mut s = sampler(
        4,
        SamplerParams {
            top_k: 2,
            ..stochastic(11)
        },
    );
    let c = counts(&draws(&mut s, &logits, 2000), 4);
    assert_eq!(c[0] + c[1], 0);
    assert!(c[2] > 600 && c[3] > 900, "{c:?}");
    // Ties at the boundary keep the lowest ids.
    let tied = [1.0, 0.0, 1.0, 1.0, 1.0];
    let mut s = sampler(
        5,
        SamplerParams {
            top_k: 2,
            ..stochastic(5)
        },
    );
    let c = counts(&draws(&mut s, &tied, 2000), 5);
    assert_eq!(c[1] + c[3] + c[4], 0, "{c:?}");
    assert!(c[0] > 800 && c[2] > 800, "{c:?}");
}

#[test]
fn top_k_on_a_large_vocabulary() {
    // 50k logits; with a huge temperature the draw is uniform over the kept set,
    // so every draw must land in the true top 40.
    let n = 50_000;
    let logits: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 49_999) as f32 * 1e-4)
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let top: std::collections::HashSet<u32> = order[..40].iter().map(|&i| i as u32).collect();
    let mut s = sampler(
        n,
        SamplerParams {
            temperature: 1e6,
            top_k: 40,
            ..stochastic(99)
        },
    );
    let seq = draws(&mut s, &logits, 300);
    assert!(seq.iter().all(|t| top.contains(t)));
    let distinct: std::collections::HashSet<u32> = seq.into_iter().collect();
    assert!(distinct.len() > 30, "{}", distinct.len());
}

#[test]
fn top_p_edges() {
    let logits = ln(&[0.2, 0.5, 0.3]);
    // p = 1 keeps everything (same as the default of no nucleus).
    let mut s = sampler(
        3,
        SamplerParams {
            top_p: 1.0,
            ..stochastic(2)
        },
    );
    let c = counts(&draws(&mut s, &logits, 3000), 3);
    assert!(c.iter().all(|&x| x > 400), "{c:?}");
    // tiny p: only the best.
    let mut s = sampler(
        3,
        SamplerParams {
            top_p: 1e-9,
            ..stochastic(2)
        },
    );
    assert!(draws(&mut s, &logits, 300).iter().all(|&t| t == 1));
    // p = 0.45: the best alone reaches it; 0.79: best two; 0.81: all three.
    for (p, kept) in [
        (0.45f32, vec![1u32]),
        (0.79, vec![1, 2]),
        (0.81, vec![0, 1, 2]),
    ] {
        let mut s = sampler(
            3,
            SamplerParams {
                top_p: p,
                ..stochastic(4)
            },
        );
        let c = counts(&draws(&mut s, &logits, 3000), 3);
        for t in 0..3u32 {
            assert_eq!(c[t as usize] > 0, kept.contains(&t), "p {p}: {c:?}");
        }
    }
    // Ties: tiny p keeps the lowest id among the best.
    let mut s = sampler(
        4,
        SamplerParams {
            top_p: 1e-6,
            ..stochastic(8)
        },
    );
    assert!(draws(&mut s, &[0.0, 2.0, 2.0, 2.0], 300)
        .iter()
        .all(|&t| t == 1));
}

#[test]
fn min_p() {
    let logits = ln(&[0.5, 0.3, 0.19, 0.01]);
    for (m, kept) in [
        (0.0f32, vec![0u32, 1, 2, 3]),
        (0.1, vec![0, 1, 2]),
        (0.5, vec![0, 1]),
        (0.7, vec![0]),
        (1.0, vec![0]),
    ] {
        let mut s = sampler(
            4,
            SamplerParams {
                min_p: m,
                ..stochastic(21)
            },
        );
        let c = counts(&draws(&mut s, &logits, 20000), 4);
        for t in 0..4u32 {
            assert_eq!(c[t as usize] > 0, kept.contains(&t), "min_p {m}: {c:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// penalties
// ---------------------------------------------------------------------------

fn penalised(p: SamplerParams, history: &[u32], logits: &[f32]) -> u32 {
    let mut s = sampler(logits.len(), p);
    for &t in history {
        s.accept(t);
    }
    s.sample(logits).unwrap()
}

#[test]
fn repetition_penalty_divides_positive_multiplies_negative() {
    let rp = SamplerParams {
        repeat_penalty: 1.1,
        penalty_last_n: 8,
        ..SamplerParams::greedy()
    };
    let pos = [2.0, 1.9, -1.0, -1.05];
    assert_eq!(penalised(rp, &[], &pos), 0);
    assert_eq!(penalised(rp, &[0], &pos), 1); // 2.0 / 1.1 < 1.9
    let neg = [-1.0, -1.05, -9.0, -9.0];
    assert_eq!(penalised(rp, &[], &neg), 0);
    assert_eq!(penalised(rp, &[0], &neg), 1); // -1.0 * 1.1 < -1.05
                                              // Penalty below 1 favours repeats.
    let fav = SamplerParams {
        repeat_penalty: 0.5,
        ..rp
    };
    assert_eq!(penalised(fav, &[1], &pos), 1);
    // Applied once per distinct token, however often it occurs.
    assert_eq!(penalised(rp, &[0, 0, 0, 0, 0], &[2.0, 1.75, 0.0, 0.0]), 0);
    // Ids outside the vocabulary are ignored.
    assert_eq!(penalised(rp, &[4, 1000, u32::MAX], &pos), 0);
}

#[test]
fn presence_and_frequency_penalties() {
    let pres = |v| SamplerParams {
        presence_penalty: v,
        penalty_last_n: 8,
        ..SamplerParams::greedy()
    };
    let logits = [2.0, 1.9, 0.0];
    assert_eq!(penalised(pres(0.05), &[0, 0, 0, 0], &logits), 0); // once: 1.95
    assert_eq!(penalised(pres(0.2), &[0], &logits), 1);
    let freq = SamplerParams {
        frequency_penalty: 0.05,
        penalty_last_n: 8,
        ..SamplerParams::greedy()
    };
    assert_eq!(penalised(freq, &[0], &logits), 0); // 1.95
    assert_eq!(penalised(freq, &[0, 0, 0, 0], &logits), 1); // 1.8
}

#[test]
fn penalty_window_is_the_last_n_tokens() {
    let p = SamplerParams {
        presence_penalty: 1.0,
        penalty_last_n: 2,
        ..SamplerParams::greedy()
    };
    let logits = [2.0, 1.5, 0.0, 0.0];
    assert_eq!(penalised(p, &[0, 2, 3], &logits), 0); // 0 fell out of the window
    assert_eq!(penalised(p, &[2, 0, 3], &logits), 1);
    // A window shrunk with set_params drops older tokens; reset forgets them all.
    let mut s = sampler(
        4,
        SamplerParams {
            penalty_last_n: 3,
            ..p
        },
    );
    for t in [0, 2, 3] {
        s.accept(t);
    }
    assert_eq!(s.sample(&logits).unwrap(), 1);
    s.set_params(&p).unwrap();
    assert_eq!(s.sample(&logits).unwrap(), 0);
    s.set_params(&SamplerParams {
        penalty_last_n: 3,
        ..p
    })
    .unwrap();
    assert_eq!(s.sample(&logits).unwrap(), 1);
    s.reset();
    assert_eq!(s.sample(&logits).unwrap(), 0);
    // Growing the window past the arena's is refused.
    assert_eq!(
        s.set_params(&SamplerParams {
            penalty_last_n: 4,
            ..p
        }),
        Err(Error::BadParameter)
    );
}

// ---------------------------------------------------------------------------
// seeds and distribution
// ---------------------------------------------------------------------------

#[test]
fn seeds() {
    let logits = vec![0.0f32; 10];
    let a = draws(&mut sampler(10, stochastic(1234)), &logits, 64);
    let b = draws(&mut sampler(10, stochastic(1234)), &logits, 64);
    let c = draws(&mut sampler(10, stochastic(1235)), &logits, 64);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // reset and set_seed restart the stream.
    let mut s = sampler(10, stochastic(1234));
    let _ = draws(&mut s, &logits, 10);
    s.reset();
    assert_eq!(draws(&mut s, &logits, 64), a);
    s.set_seed(1235);
    assert_eq!(draws(&mut s, &logits, 64), c);
    // Greedy draws no random numbers.
    let mut s = sampler(10, stochastic(1234));
    s.set_params(&SamplerParams {
        temperature: 0.0,
        ..stochastic(1234)
    })
    .unwrap();
    assert_eq!(s.sample(&logits).unwrap(), 0);
    s.set_params(&stochastic(1234)).unwrap();
    assert_eq!(draws(&mut s, &logits, 64), a);
}

/// Pearson chi-square of observed counts against probabilities.
fn chi2(c: &[usize], p: &[f64]) -> f64 {
    let n: usize = c.iter().sum();
    c.iter()
        .zip(p)
        .map(|(&o, &q)| {
            let e = q * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

#[test]
fn three_token_distribution_chi_square() {
    // df = 2: P(chi2 > 13.8) = 0.001. Fixed seeds, so the outcome is deterministic.
    let p = [0.2, 0.3, 0.5];
    let logits = ln(&p);
    let n = 30_000;
    let c = counts(&draws(&mut sampler(3, stochastic(42)), &logits, n), 3);
    assert!(chi2(&c, &p) < 13.8, "{c:?} chi2 {}", chi2(&c, &p));
    // Temperature 2: probabilities proportional to sqrt(p).
    let s: f64 = p.iter().map(|x| x.sqrt()).sum();
    let pt: Vec<f64> = p.iter().map(|x| x.sqrt() / s).collect();
    let mut smp = sampler(
        3,
        SamplerParams {
            temperature: 2.0,
            ..stochastic(43)
        },
    );
    let c = counts(&draws(&mut smp, &logits, n), 3);
    assert!(chi2(&c, &pt) < 13.8, "{c:?} chi2 {}", chi2(&c, &pt));
    // Top-k 2 renormalises over the two best.
    let mut smp = sampler(
        3,
        SamplerParams {
            top_k: 2,
            ..stochastic(44)
        },
    );
    let c = counts(&draws(&mut smp, &logits, n), 3);
    assert_eq!(c[0], 0);
    let c2 = [c[1], c[2]];
    let p2 = [0.3 / 0.8, 0.5 / 0.8];
    assert!(chi2(&c2, &p2) < 10.8, "{c:?}"); // df = 1
}

// ---------------------------------------------------------------------------
// validation
// ---------------------------------------------------------------------------

#[test]
fn parameter_validation() {
    let bad = [
        SamplerParams {
            temperature: -0.1,
            ..Default::default()
        },
        SamplerParams {
            temperature: f32::NAN,
            ..Default::default()
        },
        SamplerParams {
            temperature: f32::INFINITY,
            ..Default::default()
        },
        SamplerParams {
            top_p: 0.0,
            ..Default::default()
        },
        SamplerParams {
            top_p: -0.5,
            ..Default::default()
        },
        SamplerParams {
            top_p: 1.01,
            ..Default::default()
        },
        SamplerParams {
            top_p: f32::NAN,
            ..Default::default()
        },
        SamplerParams {
            min_p: -0.01,
            ..Default::default()
        },
        SamplerParams {
            min_p: 1.5,
            ..Default::default()
        },
        SamplerParams {
            min_p: f32::NAN,
            ..Default::default()
        },
        SamplerParams {
            repeat_penalty: 0.0,
            ..Default::default()
        },
        SamplerParams {
            repeat_penalty: -1.0,
            ..Default::default()
        },
        SamplerParams {
            repeat_penalty: f32::NAN,
            ..Default::default()
        },
        SamplerParams {
            repeat_penalty: f32::INFINITY,
            ..Default::default()
        },
        SamplerParams {
            presence_penalty: f32::INFINITY,
            ..Default::default()
        },
        SamplerParams {
            frequency_penalty: f32::NAN,
            ..Default::default()
        },
    ];
    let mut buf = vec![0u8; 1 << 16];
    for p in bad {
        assert_eq!(p.validate(), Err(Error::BadParameter), "{p:?}");
        assert_eq!(
            Sampler::arena_size(10, &p),
            Err(Error::BadParameter),
            "{p:?}"
        );
        assert!(matches!(
            Sampler::new(10, &p, &mut buf),
            Err(Error::BadParameter)
        ));
        let mut s = sampler(10, SamplerParams::default());
        assert_eq!(s.set_params(&p), Err(Error::BadParameter));
    }
    let ok = SamplerParams::default();
    assert_eq!(Sampler::arena_size(0, &ok), Err(Error::BadParameter));
    assert_eq!(
        Sampler::arena_size(usize::MAX / 2, &ok),
        Err(Error::BadParameter)
    );
    let need = Sampler::arena_size(100, &ok).unwrap();
    let mut small = vec![0u8; need - 1];
    assert!(matches!(
        Sampler::new(100, &ok, &mut small),
        Err(Error::ArenaTooSmall { needed, available }) if needed == need && available == need - 1
    ));
    // Exactly the planned size works, whatever the buffer's alignment.
    let mut big = vec![0u8; need + 64];
    for off in 0..64 {
        assert!(Sampler::new(100, &ok, &mut big[off..off + need]).is_ok());
    }
    let mut s = sampler(100, ok);
    assert_eq!(s.sample(&[0.0; 99]), Err(Error::BadParameter));
    assert_eq!(s.sample(&[0.0; 101]), Err(Error::BadParameter));
}

// ---------------------------------------------------------------------------
// cross-platform determinism guard
// ---------------------------------------------------------------------------

/// The documented chain, written again from its description in f64 with a full
/// sort, sharing no code with the crate.
mod reference {
    pub struct Pcg {
        state: u64,
        inc: u64,
    }
    impl Pcg {
        pub fn new(seed: u64, seq: u64) -> Pcg {
            let mut r = Pcg {
                state: 0,
                inc: (seq << 1) | 1,
            };
            r.next();
            r.state = r.state.wrapping_add(seed);
            r.next();
            r
        }
        pub fn next(&mut self) -> u32 {
            let old = self.state;
            self.state = old.wrapping_mul(6364136223846793005).wrapping_add(self.inc);
            let x = (((old >> 18) ^ old) >> 27) as u32;
            x.rotate_right((old >> 59) as u32)
        }
    }

    pub struct P {
        pub temp: f64,
        pub top_k: usize,
        pub top_p: f64,
        pub min_p: f64,
        pub rep: f64,
        pub pres: f64,
        pub freq: f64,
        pub last_n: usize,
    }

    pub fn run(logits: &[f32], p: &P, seed: u64, steps: usize) -> Vec<u32> {
        let mut rng = Pcg::new(seed, 0);
        let mut hist: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for _ in 0..steps {
            let mut l: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
            let window = &hist[hist.len().saturating_sub(p.last_n)..];
            let mut count = std::collections::HashMap::new();
            for &t in window {
                *count.entry(t).or_insert(0usize) += 1;
            }
            for (&t, &c) in &count {
                let v = &mut l[t as usize];
                *v = if *v <= 0.0 { *v * p.rep } else { *v / p.rep };
                *v -= c as f64 * p.freq + p.pres;
            }
            let mut order: Vec<usize> = (0..l.len()).collect();
            order.sort_by(|&a, &b| l[b].partial_cmp(&l[a]).unwrap().then(a.cmp(&b)));
            let max = l[order[0]];
            let tok = if p.temp == 0.0 {
                order[0]
            } else {
                let mut kept = order.clone();
                if p.top_k > 0 && p.top_k < kept.len() {
                    kept.truncate(p.top_k);
                }
                if p.top_p < 1.0 {
                    let z: f64 = kept.iter().map(|&i| (l[i] - max).exp()).sum();
                    let mut cum = 0.0;
                    let mut n = kept.len();
                    for (j, &i) in kept.iter().enumerate() {
                        cum += (l[i] - max).exp() / z;
                        if cum >= p.top_p {
                            n = j + 1;
                            break;
                        }
                    }
                    kept.truncate(n);
                }
                if p.min_p > 0.0 {
                    let thr = max + p.min_p.ln();
                    kept.retain(|&i| l[i] >= thr);
                }
                kept.sort();
                let w: Vec<f64> = kept
                    .iter()
                    .map(|&i| ((l[i] - max) / p.temp).exp())
                    .collect();
                let z: f64 = w.iter().sum();
                let u = (rng.next() >> 8) as f64 / 16777216.0;
                let target = u * z;
                let mut cum = 0.0;
                let mut pick = *kept.last().unwrap();
                for (&i, &wi) in kept.iter().zip(&w) {
                    cum += wi;
                    if cum > target {
                        pick = i;
                        break;
                    }
                }
                pick
            };
            hist.push(tok as u32);
            out.push(tok as u32);
        }
        out
    }
}

fn guard(n_vocab: usize, p: SamplerParams, seed: u64, steps: usize) {
    // Logits from an integer formula: exact on every platform.
    let logits: Vec<f32> = (0..n_vocab)
        .map(|i| ((i * 37 + 11) % 101) as f32 / 10.0 - 5.0 + (i / 101) as f32 * 0.013)
        .collect();
    let r = reference::P {
        temp: p.temperature as f64,
        top_k: p.top_k,
        top_p: p.top_p as f64,
        min_p: p.min_p as f64,
        rep: p.repeat_penalty as f64,
        pres: p.presence_penalty as f64,
        freq: p.frequency_penalty as f64,
        last_n: p.penalty_last_n,
    };
    let want = reference::run(&logits, &r, seed, steps);
    let mut s = sampler(n_vocab, SamplerParams { seed, ..p });
    let mut got = Vec::new();
    for _ in 0..steps {
        let t = s.sample(&logits).unwrap();
        s.accept(t);
        got.push(t);
    }
    assert_eq!(got, want);
    let distinct: std::collections::HashSet<_> = got.iter().collect();
    assert!(
        p.temperature == 0.0 || distinct.len() > 3,
        "degenerate: {got:?}"
    );
}

#[test]
fn determinism_guard_full_chain() {
    let p = SamplerParams {
        temperature: 0.7,
        top_k: 50,
        top_p: 0.9,
        min_p: 0.02,
        repeat_penalty: 1.37,
        presence_penalty: 0.23,
        frequency_penalty: 0.11,
        penalty_last_n: 16,
        seed: 0,
    };
    guard(100, p, 2024, 400);
    guard(100, p, 7, 400);
}

#[test]
fn determinism_guard_plain_and_greedy() {
    guard(256, stochastic(0), 1, 400);
    guard(
        256,
        SamplerParams {
            temperature: 1.9,
            ..stochastic(0)
        },
        99,
        400,
    );
    let g = SamplerParams {
        repeat_penalty: 1.37,
        presence_penalty: 0.23,
        penalty_last_n: 32,
        ..SamplerParams::greedy()
    };
    guard(256, g, 0, 100);
}

#[test]
fn determinism_guard_large_vocab_nucleus() {
    // 50k tokens, top-p without top-k: exercises the doubling partial selection.
    let p = SamplerParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 0.6,
        min_p: 0.0,
        ..SamplerParams::greedy()
    };
    guard(50_000, p, 5, 40);
    guard(
        50_000,
        SamplerParams {
            top_k: 1000,
            top_p: 0.3,
            ..p
        },
        6,
        40,
    );
}

#[test]
fn pcg32_matches_reference_generator() {
    let mut a = Pcg32::new(0xdead_beef, 0);
    let mut b = reference::Pcg::new(0xdead_beef, 0);
    for _ in 0..1000 {
        assert_eq!(a.next_u32(), b.next());
    }
}

// ---------------------------------------------------------------------------
// robustness: random hostile inputs never panic and never pick NaN / -inf
// ---------------------------------------------------------------------------

#[test]
fn random_hostile_inputs() {
    let mut r = reference::Pcg::new(2718, 1);
    let mut unit = move || r.next() as f64 / 4294967296.0;
    for case in 0..3000 {
        let n = 1 + (unit() * 300.0) as usize;
        let pick = |u: f64| -> f32 {
            match (u * 20.0) as u32 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                3 => f32::MAX,
                4 => -f32::MAX,
                5 => -0.0,
                6 => f32::MIN_POSITIVE / 4.0,
                _ => ((u - 0.5) * 60.0) as f32,
            }
        };
        let mut logits: Vec<f32> = (0..n).map(|_| pick(unit())).collect();
        if case % 7 == 0 {
            let v = pick(unit());
            logits.iter_mut().for_each(|x| *x = v);
        }
        let penalties = case % 3 == 0;
        let p = SamplerParams {
            temperature: [0.0, 1e-30, 0.5, 1.0, 3.0, 1e30][case % 6],
            top_k: [0, 1, 2, 40, 1000][(unit() * 5.0) as usize],
            top_p: [1.0, 0.5, 1e-9, 0.999][(unit() * 4.0) as usize],
            min_p: [0.0, 0.05, 1.0][(unit() * 3.0) as usize],
            repeat_penalty: if penalties {
                [0.5, 1.3, 1e30][(unit() * 3.0) as usize]
            } else {
                1.0
            },
            presence_penalty: if penalties {
                [-1e30, 0.0, 2.0][(unit() * 3.0) as usize]
            } else {
                0.0
            },
            frequency_penalty: if penalties { 0.7 } else { 0.0 },
            penalty_last_n: if penalties { 8 } else { 0 },
            seed: case as u64,
        };
        let mut s = sampler(n, p);
        for _ in 0..(unit() * 12.0) as usize {
            s.accept((unit() * (n as f64 + 3.0)) as u32);
        }
        for _ in 0..3 {
            match s.sample(&logits) {
                Ok(t) => {
                    let l = logits[t as usize];
                    assert!(
                        !l.is_nan() && l != f32::NEG_INFINITY,
                        "case {case}: {t} {l}"
                    );
                    if !penalties && logits.contains(&f32::INFINITY) {
                        assert_eq!(l, f32::INFINITY, "case {case}");
                    }
                    s.accept(t);
                }
                Err(e) => {
                    assert_eq!(e, Error::NoCandidates, "case {case}");
                    if !penalties {
                        assert!(logits.iter().all(|l| l.is_nan() || *l == f32::NEG_INFINITY));
                    }
                }
            }
        }
    }
}
