//! Soak: one long-lived context runs many greedy generations interleaved with
//! prefills, rewinds and resets; after every step its logits must be bit-identical
//! to those of a fresh context that evaluated the same token history in one go.
//! Any state leaking across rewinds (stale KV rows, stale logits, scratch reuse)
//! shows up as a bit difference. Bounded: a fixed number of steps on small
//! fixtures (a few seconds in a debug build on an idle machine).

mod common;
use common::*;
use embergpt::{Context, ContextParams, Error, Model};
use std::collections::HashMap;

/// xorshift64*: a deterministic step chooser.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn soak(name: &str, steps: usize, seed: u64) {
    let bytes = read_fixture(&format!("gpt2/{name}.gguf"));
    let model = Model::load(&bytes).unwrap();
    let v = model.hparams().n_vocab;
    let p = ContextParams {
        n_ctx: 12,
        n_batch: 4,
        logits_all: true,
        backend: None,
        parallel: None,
    };
    let mut buf = arena(Context::arena_size(&model, &p).unwrap());
    let mut ctx = Context::new(model, &p, &mut buf).unwrap();
    // The reference: a second context, reset and fed the whole history at once.
    let mut ref_arena = arena(Context::arena_size(&model, &p).unwrap());
    let mut fresh = Context::new(model, &p, &mut ref_arena).unwrap();
    let mut memo: HashMap<Vec<u32>, Vec<u32>> = HashMap::new();
    let mut reference = |hist: &[u32]| -> Vec<u32> {
        memo.entry(hist.to_vec())
            .or_insert_with(|| {
                fresh.reset();
                fresh.eval(hist).unwrap();
                bits(fresh.logits().unwrap())
            })
            .clone()
    };

    let mut rng = Rng(seed);
    let mut hist: Vec<u32> = Vec::new();
    let (mut generated, mut rewinds, mut resets) = (0, 0, 0);
    for step in 0..steps {
        let room = p.n_ctx - hist.len();
        match rng.below(10) {
            // Greedy decode of the argmax token.
            0..=4 if !hist.is_empty() && room > 0 => {
                let t = argmax(ctx.logits().unwrap());
                ctx.eval(&[t]).unwrap();
                hist.push(t);
                generated += 1;
            }
            // A prefill of random tokens (eval or eval_all).
            0..=6 if room > 0 => {
                let n = 1 + rng.below(room.min(6));
                let toks: Vec<u32> = (0..n).map(|_| rng.below(v) as u32).collect();
                if n <= p.n_batch && rng.below(2) == 0 {
                    ctx.eval_all(&toks).unwrap();
                    // Every row matches the fresh context at that prefix.
                    let all = ctx.all_logits().unwrap().to_vec();
                    for (i, row) in all.chunks(v).enumerate() {
                        let mut h = hist.clone();
                        h.extend_from_slice(&toks[..=i]);
                        assert_eq!(bits(row), reference(&h), "{name} step {step} row {i}");
                    }
                } else {
                    ctx.eval(&toks).unwrap();
                }
                hist.extend_from_slice(&toks);
            }
            // Rewind somewhere, then re-evaluate one token so there are logits.
            0..=8 if !hist.is_empty() => {
                let pos = rng.below(hist.len());
                ctx.rewind(pos).unwrap();
                hist.truncate(pos);
                assert_eq!(ctx.logits(), Err(Error::NoLogits));
                let t = rng.below(v) as u32;
                ctx.eval(&[t]).unwrap();
                hist.push(t);
                rewinds += 1;
            }
            _ => {
                ctx.reset();
                hist.clear();
                let t = rng.below(v) as u32;
                ctx.eval(&[t]).unwrap();
                hist.push(t);
                resets += 1;
            }
        }
        assert_eq!(ctx.n_past(), hist.len());
        assert_eq!(
            bits(ctx.logits().unwrap()),
            reference(&hist),
            "{name} step {step}: {hist:?}"
        );
        // A full context is an error that changes nothing.
        if hist.len() == p.n_ctx {
            assert_eq!(ctx.eval(&[0]), Err(Error::ContextFull));
        }
    }
    println!(
        "{name}: {steps} steps, {generated} greedy tokens, {rewinds} rewinds, {resets} resets"
    );
    assert!(
        generated > steps / 5 && rewinds > 0 && resets > 0,
        "the mix did not run"
    );
}

#[test]
#[cfg_attr(miri, ignore = "long")]
fn soak_rewinds_and_resets_match_fresh_contexts() {
    soak("a.q4_0", 80, 0x9E37_79B9_7F4A_7C15);
    soak("c.f16", 40, 42);
    soak("b.q8_0", 30, 7);
}
