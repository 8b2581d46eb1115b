//! The generation loop on the GPT-2 fixture model `a` (vocab 256, n_ctx 32), with a
//! test detokenizer that maps a token id to one byte (or two, for the test of a stop
//! string starting inside a token).

mod common;
use common::*;
use embergpt::generate::{Detokenize, Token, MAX_STOPS, MAX_STOP_LEN};
use embergpt::{
    generate, Context, ContextParams, Error, GenState, GenerateParams, Generator, Model, Sampler,
    SamplerParams, StopReason,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------
// counting allocator (per thread, so parallel tests do not disturb each other)
// ---------------------------------------------------------------------------

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter
// is a const-initialised thread-local Cell, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------

const PROMPT: [u32; 4] = [91, 42, 123, 208];
const N_CTX: usize = 32;

fn model_bytes(name: &str) -> &'static [u8] {
    static A: OnceLock<Vec<u8>> = OnceLock::new();
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    match name {
        "a" => A.get_or_init(|| read_fixture("gpt2/a.f32.gguf")),
        _ => B.get_or_init(|| read_fixture("gpt2/b.f32.gguf")),
    }
}

/// A context on model `a`.
fn context(n_ctx: usize) -> Context<'static, 'static> {
    context_of("a", n_ctx)
}

fn context_of(name: &str, n_ctx: usize) -> Context<'static, 'static> {
    let model = Model::load(model_bytes(name)).expect("load");
    let p = ContextParams {
        n_ctx,
        n_batch: 8,
        ..Default::default()
    };
    let size = Context::arena_size(&model, &p).expect("arena_size");
    let arena: &'static mut [u8] = Box::leak(vec![0u8; size].into_boxed_slice());
    Context::new(model, &p, arena).expect("context")
}

/// A sampler for model `a`'s 256 tokens.
fn sampler(p: SamplerParams) -> Sampler<'static> {
    sampler_n(256, p)
}

fn sampler_n(n_vocab: usize, p: SamplerParams) -> Sampler<'static> {
    let size = Sampler::arena_size(n_vocab, &p).expect("arena_size");
    let arena: &'static mut [u8] = Box::leak(vec![0u8; size].into_boxed_slice());
    Sampler::new(n_vocab, &p, arena).expect("sampler")
}

/// Temperature 3: the fixture model is peaked (top logit ~9, next ~5), so at
/// temperature 1 it repeats one token; at 3 the sequences vary.
fn stochastic(seed: u64) -> SamplerParams {
    SamplerParams {
        temperature: 3.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed,
        ..SamplerParams::greedy()
    }
}

/// Token id -> the byte with that value.
struct OneByte {
    eos: Option<u32>,
}

impl Detokenize for OneByte {
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> embergpt::Result<usize> {
        let b = u8::try_from(id).map_err(|_| Error::TokenOutOfRange)?;
        *out.first_mut().ok_or(Error::BufferTooSmall)? = b;
        Ok(1)
    }
    fn eos(&self) -> Option<u32> {
        self.eos
    }
}

/// Token id -> two bytes: a letter and a digit.
struct TwoBytes;

impl Detokenize for TwoBytes {
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> embergpt::Result<usize> {
        let o = out.get_mut(..2).ok_or(Error::BufferTooSmall)?;
        o[0] = b'a' + (id % 26) as u8;
        o[1] = b'0' + (id % 10) as u8;
        Ok(2)
    }
    fn eos(&self) -> Option<u32> {
        None
    }
}

/// Even ids have no text, odd ids one byte.
struct OddOnly;

impl Detokenize for OddOnly {
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> embergpt::Result<usize> {
        if id.is_multiple_of(2) {
            return Ok(0);
        }
        OneByte { eos: None }.token_bytes(id, out)
    }
    fn eos(&self) -> Option<u32> {
        None
    }
}

/// Fails on one token id.
struct FailsOn(u32);

impl Detokenize for FailsOn {
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> embergpt::Result<usize> {
        if id == self.0 {
            return Err(Error::BufferTooSmall);
        }
        OneByte { eos: None }.token_bytes(id, out)
    }
    fn eos(&self) -> Option<u32> {
        None
    }
}

/// Run `generate` collecting every emitted (id, text).
fn run(
    ctx: &mut Context<'_, '_>,
    s: &mut Sampler<'_>,
    d: &(impl Detokenize + ?Sized),
    prompt: &[u32],
    params: &GenerateParams<'_>,
) -> (embergpt::Outcome, Vec<(u32, Vec<u8>)>) {
    let mut out = Vec::new();
    let o = generate(ctx, s, d, prompt, params, |id, text| {
        out.push((id, text.to_vec()));
        true
    })
    .expect("generate");
    assert_eq!(o.n_emitted, out.len());
    (o, out)
}

fn budget(n: usize) -> GenerateParams<'static> {
    GenerateParams {
        max_tokens: Some(n),
        ..Default::default()
    }
}

fn ids(v: &[(u32, Vec<u8>)]) -> Vec<u32> {
    v.iter().map(|(id, _)| *id).collect()
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}

/// A stochastic reference run of `n` tokens (no stops) with `seed`.
fn reference(seed: u64, n: usize) -> Vec<u32> {
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let (o, out) = run(
        &mut ctx,
        &mut s,
        &OneByte { eos: None },
        &PROMPT,
        &budget(n),
    );
    assert_eq!(o.reason, StopReason::Budget);
    ids(&out)
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[test]
fn greedy_generation_equals_manual_argmax() {
    // Model `b` (vocab 160): model `a` greedily repeats one token from any prompt.
    let prompt: [u32; 4] = [144, 33, 61, 96];
    let n = 20;
    let mut manual = Vec::new();
    let mut ctx = context_of("b", 48);
    ctx.eval(&prompt).unwrap();
    for _ in 0..n {
        let t = argmax(ctx.logits().unwrap());
        manual.push(t);
        ctx.eval(&[t]).unwrap();
    }

    assert!(manual.iter().any(|&t| t != manual[0]), "{manual:?}");
    let mut ctx = context_of("b", 48);
    let mut s = sampler_n(160, SamplerParams::greedy());
    let (o, out) = run(
        &mut ctx,
        &mut s,
        &OneByte { eos: None },
        &prompt,
        &budget(n),
    );
    assert_eq!(ids(&out), manual);
    for (id, text) in &out {
        assert_eq!(text, &[*id as u8]);
    }
    assert_eq!(o.reason, StopReason::Budget);
    assert_eq!(o.n_sampled, n);
    assert_eq!(o.unevaluated, manual.last().copied());
    assert_eq!(o.stop_index, None);
    // Evaluation is lazy: the last token is not in the cache.
    assert_eq!(ctx.n_past(), prompt.len() + n - 1);

    // Continuing: evaluate the pending token, generate more from the cache.
    ctx.eval(&[o.unevaluated.unwrap()]).unwrap();
    let (_, more) = run(&mut ctx, &mut s, &OneByte { eos: None }, &[], &budget(3));
    let mut ctx2 = context_of("b", 48);
    ctx2.eval(&prompt).unwrap();
    ctx2.eval(&manual).unwrap();
    let mut want = Vec::new();
    for _ in 0..3 {
        let t = argmax(ctx2.logits().unwrap());
        want.push(t);
        ctx2.eval(&[t]).unwrap();
    }
    assert_eq!(ids(&more), want);
}

#[test]
fn iterator_surface_matches_callback_surface() {
    let want = reference(5, 12);
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(5));
    let d = OneByte { eos: None };
    let p = budget(12);
    let mut g = Generator::new(&mut ctx, &mut s, &d, &PROMPT, &p).unwrap();
    let mut got = Vec::new();
    while let Some(step) = g.next() {
        let Token { id, text } = step.unwrap();
        assert_eq!(text, &[id as u8]);
        got.push(id);
    }
    assert_eq!(got, want);
    assert_eq!(g.stop_reason(), Some(StopReason::Budget));
    assert!(g.next().is_none());
    assert_eq!(g.outcome().unwrap().n_sampled, 12);
}

#[test]
fn state_surface_matches_callback_surface() {
    // GenState with the borrows passed per call, stop strings gone after `new`.
    let seed = 51;
    let want = reference(seed, 12);
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let d = OneByte { eos: None };
    let mut st = {
        let never = vec![0xffu8, 0xfe, 0xfd];
        let stops = [never.as_slice()];
        let p = GenerateParams {
            stop: &stops,
            ..budget(12)
        };
        GenState::new(&mut ctx, &mut s, &d, &PROMPT, &p).unwrap()
    };
    let mut got = Vec::new();
    while let Some(step) = st.next(&mut ctx, &mut s, &d) {
        got.push(step.unwrap().id);
    }
    assert_eq!(got, want);
    assert_eq!(st.outcome().unwrap().reason, StopReason::Budget);
}

#[test]
fn budget_stop() {
    let want = reference(9, 10);
    for n in [0, 1, 3, 10] {
        let mut ctx = context(N_CTX);
        let mut s = sampler(stochastic(9));
        let (o, out) = run(
            &mut ctx,
            &mut s,
            &OneByte { eos: None },
            &PROMPT,
            &budget(n),
        );
        assert_eq!(o.reason, StopReason::Budget);
        assert_eq!(o.n_sampled, n);
        assert_eq!(ids(&out), want[..n]);
        assert_eq!(ctx.n_past(), PROMPT.len() + n.saturating_sub(1));
    }
}

#[test]
fn eos_stop() {
    let seed = 17;
    let seq = reference(seed, 20);
    // The first position >= 2 whose token did not occur before.
    let k = (2..seq.len())
        .find(|&k| !seq[..k].contains(&seq[k]))
        .expect("a fresh token in the reference run");
    let eos = seq[k];
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let (o, out) = run(
        &mut ctx,
        &mut s,
        &OneByte { eos: Some(eos) },
        &PROMPT,
        &budget(20),
    );
    assert_eq!(o.reason, StopReason::Eos);
    assert_eq!(ids(&out), seq[..k]);
    assert_eq!(o.n_sampled, k + 1);
    assert_eq!(o.unevaluated, Some(eos));
    // With stop_at_eos off, EOS is an ordinary token.
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let p = GenerateParams {
        stop_at_eos: false,
        ..budget(20)
    };
    let (o, out) = run(&mut ctx, &mut s, &OneByte { eos: Some(eos) }, &PROMPT, &p);
    assert_eq!(o.reason, StopReason::Budget);
    assert_eq!(ids(&out), seq);
}

#[test]
fn stop_string_across_token_boundaries() {
    let seed = 23;
    let seq = reference(seed, 20);
    let text: Vec<u8> = seq.iter().map(|&t| t as u8).collect();
    // A 3-token stop string whose first occurrence in the text starts at k >= 2.
    let k = (2..text.len() - 3)
        .find(|&k| {
            let pat = &text[k..k + 3];
            text.windows(3).position(|w| w == pat) == Some(k)
        })
        .unwrap();
    let stop: &[u8] = &text[k..k + 3];
    let other: &[u8] = b"\xff\xfe\xfd\xfc-never";
    let stops = [other, stop];
    let p = GenerateParams {
        stop: &stops,
        ..budget(20)
    };
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let (o, out) = run(&mut ctx, &mut s, &OneByte { eos: None }, &PROMPT, &p);
    assert_eq!(o.reason, StopReason::StopString);
    assert_eq!(o.stop_index, Some(1));
    assert_eq!(ids(&out), seq[..k]);
    assert_eq!(o.n_sampled, k + 3);
}

#[test]
fn prefixes_of_stop_strings_are_held_back_then_released() {
    let seed = 29;
    let seq = reference(seed, 16);
    let text: Vec<u8> = seq.iter().map(|&t| t as u8).collect();
    // A stop string that starts like the text at k but then diverges: the two
    // tokens at k, k+1 are held until the third shows it is no match.
    let k = 4;
    let mut diverge = text[k..k + 2].to_vec();
    diverge.push(text[k + 2].wrapping_add(1));
    let stops = [diverge.as_slice()];
    let p = GenerateParams {
        stop: &stops,
        ..budget(16)
    };
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let d = OneByte { eos: None };
    let mut g = Generator::new(&mut ctx, &mut s, &d, &PROMPT, &p).unwrap();
    let mut got = Vec::new();
    let mut sampled_when = Vec::new();
    while let Some(step) = g.next() {
        let id = step.unwrap().id;
        got.push(id);
        sampled_when.push(g.n_sampled());
    }
    assert_eq!(got, seq, "nothing is lost or reordered");
    assert_eq!(g.stop_reason(), Some(StopReason::Budget));
    // Token k was emitted only once token k+2 had been sampled.
    assert!(sampled_when[k] >= k + 3, "{sampled_when:?}");

    // A prefix still open when the budget ends is released, not dropped.
    let mut open = text[14..16].to_vec();
    open.push(b'!');
    let stops = [open.as_slice()];
    let p = GenerateParams {
        stop: &stops,
        ..budget(16)
    };
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    assert!(text[..14].windows(2).all(|w| w != &open[..2]));
    let (o, out) = run(&mut ctx, &mut s, &d, &PROMPT, &p);
    assert_eq!(o.reason, StopReason::Budget);
    assert_eq!(ids(&out), seq);
}

#[test]
fn empty_text_tokens_keep_their_place_behind_held_ones() {
    let seed = 47;
    let seq = reference(seed, 24);
    let text: Vec<u8> = seq
        .iter()
        .filter(|&&t| t % 2 == 1)
        .map(|&t| t as u8)
        .collect();
    assert!(
        text.len() >= 6 && seq.iter().any(|&t| t % 2 == 0),
        "{seq:?}"
    );
    // Seq positions of the odd (one-byte) tokens; pick the k-th such that an
    // empty-text token comes right before it and its 2 bytes first occur there.
    let odd: Vec<usize> = (0..seq.len()).filter(|&i| seq[i] % 2 == 1).collect();
    let k = (1..text.len() - 2)
        .find(|&k| {
            seq[odd[k] - 1].is_multiple_of(2)
                && text.windows(2).position(|w| w == &text[k..k + 2]) == Some(k)
        })
        .expect("a suitable position in the reference run");
    // A stop string agreeing with the text for two bytes, then not.
    let mut diverge = text[k..k + 2].to_vec();
    diverge.push(text[k + 2].wrapping_add(1));
    let stops = [diverge.as_slice()];
    let p = GenerateParams {
        stop: &stops,
        ..budget(24)
    };
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let (o, out) = run(&mut ctx, &mut s, &OddOnly, &PROMPT, &p);
    assert_eq!(o.reason, StopReason::Budget);
    assert_eq!(ids(&out), seq);
    for (id, t) in &out {
        assert_eq!(t.len(), (id % 2) as usize);
    }
    // And a match: everything from the token that starts it on is dropped. A second
    // stop string that agrees with the text from token k-1 on (then diverges) keeps
    // k-1 and the empty-text token after it held until the match.
    let stop = text[k..k + 2].to_vec();
    let held_by = [text[k - 1], text[k], text[k + 1].wrapping_add(1)];
    let stops = [&held_by[..], stop.as_slice()];
    let p = GenerateParams {
        stop: &stops,
        ..budget(24)
    };
    assert_eq!(text.windows(2).position(|w| w == stop.as_slice()), Some(k));
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let (o, out) = run(&mut ctx, &mut s, &OddOnly, &PROMPT, &p);
    assert_eq!(o.reason, StopReason::StopString);
    assert_eq!(o.stop_index, Some(1));
    // The k-th odd token starts the match; it and everything after are dropped,
    // the empty-text token right before it is kept.
    assert_eq!(ids(&out), seq[..odd[k]]);
}

#[test]
fn stop_string_starting_inside_a_token() {
    let seed = 31;
    let seq = reference(seed, 12);
    let mut text = Vec::new();
    for &t in &seq {
        let mut b = [0u8; 2];
        TwoBytes.token_bytes(t, &mut b).unwrap();
        text.extend_from_slice(&b);
    }
    // The second byte of token k and the first of token k+1.
    let k = (2..seq.len() - 1)
        .find(|&k| {
            let pat = &text[2 * k + 1..2 * k + 3];
            text.windows(2).position(|w| w == pat) == Some(2 * k + 1)
        })
        .unwrap();
    let stop = text[2 * k + 1..2 * k + 3].to_vec();
    let stops = [stop.as_slice()];
    let p = GenerateParams {
        stop: &stops,
        ..budget(12)
    };
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(seed));
    let (o, out) = run(&mut ctx, &mut s, &TwoBytes, &PROMPT, &p);
    assert_eq!(o.reason, StopReason::StopString);
    assert_eq!(ids(&out), seq[..=k]);
    let emitted: Vec<u8> = out.iter().flat_map(|(_, t)| t.clone()).collect();
    assert_eq!(
        emitted,
        text[..2 * k + 1],
        "token k keeps only its first byte"
    );
    assert_eq!(out[k].1.len(), 1);
}

#[test]
fn context_full_stop() {
    let n_ctx = 8;
    let want = reference(37, 10);
    let mut ctx = context(n_ctx);
    let mut s = sampler(stochastic(37));
    let (o, out) = run(
        &mut ctx,
        &mut s,
        &OneByte { eos: None },
        &PROMPT,
        &budget(100),
    );
    assert_eq!(o.reason, StopReason::ContextFull);
    // n_ctx - prompt tokens get evaluated, plus the last one sampled from the final logits.
    let n = n_ctx - PROMPT.len() + 1;
    assert_eq!(ids(&out), want[..n]);
    assert_eq!(o.n_sampled, n);
    assert_eq!(ctx.n_past(), n_ctx);
    assert_eq!(o.unevaluated, Some(want[n - 1]));

    // A prompt that does not fit is an error and leaves the context as it was.
    let mut ctx = context(n_ctx);
    ctx.eval(&PROMPT).unwrap();
    let r = generate(
        &mut ctx,
        &mut s,
        &OneByte { eos: None },
        &[1, 2, 3, 4, 5],
        &budget(3),
        |_, _| true,
    );
    assert_eq!(r, Err(Error::ContextFull));
    assert_eq!(ctx.n_past(), PROMPT.len());
    let (o, _) = run(&mut ctx, &mut s, &OneByte { eos: None }, &[1], &budget(100));
    assert_eq!(o.reason, StopReason::ContextFull);
}

#[test]
fn callback_stop() {
    let want = reference(41, 10);
    let mut ctx = context(N_CTX);
    let mut s = sampler(stochastic(41));
    let mut seen = Vec::new();
    let o = generate(
        &mut ctx,
        &mut s,
        &OneByte { eos: None },
        &PROMPT,
        &budget(10),
        |id, _| {
            seen.push(id);
            seen.len() < 3
        },
    )
    .unwrap();
    assert_eq!(o.reason, StopReason::Callback);
    assert_eq!(seen, want[..3]);
    assert_eq!(o.n_emitted, 3);
}

#[test]
fn rewinding_and_regenerating_gives_identical_tokens() {
    let p = SamplerParams {
        temperature: 0.9,
        top_k: 30,
        top_p: 0.95,
        min_p: 0.01,
        repeat_penalty: 1.2,
        presence_penalty: 0.1,
        penalty_last_n: 16,
        seed: 77,
        ..SamplerParams::default()
    };
    let d = OneByte { eos: None };
    let mut ctx = context(N_CTX);
    let mut s = sampler(p);
    let (_, first) = run(&mut ctx, &mut s, &d, &PROMPT, &budget(15));

    // Back to the start.
    ctx.rewind(0).unwrap();
    s.reset();
    let (_, again) = run(&mut ctx, &mut s, &d, &PROMPT, &budget(15));
    assert_eq!(again, first);

    // Back to just before the last prompt token, the earlier ones kept in the cache
    // and replayed into the penalty window.
    ctx.rewind(PROMPT.len() - 1).unwrap();
    s.reset();
    for &t in &PROMPT[..PROMPT.len() - 1] {
        s.accept(t);
    }
    let (_, partial) = run(
        &mut ctx,
        &mut s,
        &d,
        &PROMPT[PROMPT.len() - 1..],
        &budget(15),
    );
    assert_eq!(partial, first);
}

#[test]
fn errors_leave_the_context_usable() {
    let d = OneByte { eos: None };
    let mut ctx = context(N_CTX);
    let mut s = sampler(SamplerParams::greedy());
    // Nothing evaluated yet and no prompt: no logits.
    let r = generate(&mut ctx, &mut s, &d, &[], &budget(3), |_, _| true);
    assert_eq!(r, Err(Error::NoLogits));
    // Token out of range in the prompt.
    let r = generate(&mut ctx, &mut s, &d, &[1, 999], &budget(3), |_, _| true);
    assert_eq!(r, Err(Error::TokenOutOfRange));
    assert_eq!(ctx.n_past(), 0);
    // Bad stop strings.
    let long = [b'x'; MAX_STOP_LEN + 1];
    for bad in [&[][..], &long[..]] {
        let stops = [bad];
        let p = GenerateParams {
            stop: &stops,
            ..budget(3)
        };
        let r = generate(&mut ctx, &mut s, &d, &PROMPT, &p, |_, _| true);
        assert_eq!(r, Err(Error::BadParameter));
    }
    let many = [&b"x"[..]; MAX_STOPS + 1];
    let p = GenerateParams {
        stop: &many,
        ..budget(3)
    };
    let r = generate(&mut ctx, &mut s, &d, &PROMPT, &p, |_, _| true);
    assert_eq!(r, Err(Error::BadParameter));
    let ok = [b'x'; MAX_STOP_LEN];
    let stops = [&ok[..]; MAX_STOPS];
    let p = GenerateParams {
        stop: &stops,
        ..budget(3)
    };
    assert!(generate(&mut ctx, &mut s, &d, &PROMPT, &p, |_, _| true).is_ok());
    ctx.reset();
    // A sampler for another vocabulary.
    let size = Sampler::arena_size(100, &SamplerParams::greedy()).unwrap();
    let mut buf = vec![0u8; size];
    let mut other = Sampler::new(100, &SamplerParams::greedy(), &mut buf).unwrap();
    let r = generate(&mut ctx, &mut other, &d, &PROMPT, &budget(3), |_, _| true);
    assert_eq!(r, Err(Error::BadParameter));
    assert_eq!(ctx.n_past(), 0);

    // A tokenizer error mid-generation ends it with that error; the context keeps
    // exactly the evaluated tokens and works afterwards.
    let seed = 43;
    let seq = reference(seed, 8);
    let bad = seq[5];
    let first = seq.iter().position(|&t| t == bad).unwrap();
    let mut s = sampler(stochastic(seed));
    let r = generate(
        &mut ctx,
        &mut s,
        &FailsOn(bad),
        &PROMPT,
        &budget(8),
        |_, _| true,
    );
    assert_eq!(r, Err(Error::BufferTooSmall));
    assert_eq!(ctx.n_past(), PROMPT.len() + first);
    ctx.rewind(0).unwrap();
    s.reset();
    let (o, out) = run(&mut ctx, &mut s, &d, &PROMPT, &budget(8));
    assert_eq!(o.reason, StopReason::Budget);
    assert_eq!(ids(&out), seq);
}

#[test]
fn no_allocation_during_sampling_and_generation() {
    // Setup (allocates): model, contexts, samplers, stop strings.
    let d = OneByte { eos: Some(7) };
    let mut ctx = context(N_CTX);
    let mut s = sampler(SamplerParams {
        repeat_penalty: 1.1,
        presence_penalty: 0.2,
        frequency_penalty: 0.1,
        seed: 3,
        ..SamplerParams::default()
    });
    let big_p = SamplerParams {
        top_k: 0,
        top_p: 0.6,
        penalty_last_n: 64,
        repeat_penalty: 1.3,
        ..SamplerParams::default()
    };
    let n_big = 50_000;
    let size = Sampler::arena_size(n_big, &big_p).unwrap();
    let mut big_arena = vec![0u8; size];
    let mut big = Sampler::new(n_big, &big_p, &mut big_arena).unwrap();
    let big_logits: Vec<f32> = (0..n_big)
        .map(|i| ((i * 7919) % 49_999) as f32 * 2e-4)
        .collect();
    let stop_a = [b'\x01', b'\x02'];
    let stops = [&stop_a[..], &b"zz"[..]];
    let p = GenerateParams {
        stop: &stops,
        ..budget(40)
    };
    let mut record = [0u32; 64];
    let mut n_rec = 0usize;

    // The counter works.
    let probe = allocs();
    drop(std::hint::black_box(vec![1u8; 3]));
    assert_eq!(allocs(), probe + 1);

    let before = allocs();
    for i in 0..20u32 {
        big.accept(i * 13);
        let _ = big.sample(&big_logits).unwrap();
    }
    let o = generate(&mut ctx, &mut s, &d, &PROMPT, &p, |id, _| {
        if let Some(r) = record.get_mut(n_rec) {
            *r = id;
        }
        n_rec += 1;
        true
    })
    .unwrap();
    ctx.rewind(0).unwrap();
    let mut g = Generator::new(&mut ctx, &mut s, &d, &PROMPT, &p).unwrap();
    while let Some(step) = g.next() {
        step.unwrap();
    }
    let after = allocs();
    assert_eq!(after - before, 0, "allocations during sampling/generation");
    assert!(o.n_sampled > 0 && n_rec == o.n_emitted);
}
