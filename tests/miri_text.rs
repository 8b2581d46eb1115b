//! Small tokenizer, sampler and generation checks sized for Miri
//! (`tests/scripts/miri.sh`): the tokenizer built from the bundled 512-token
//! model (its arena indexes and BPE scratch carved by the unsafe arena code),
//! a few strings encoded and decoded, a few samples on short logit rows, and two
//! greedy tokens generated on fixture `a`. They also run in plain `cargo test`.

mod common;

use embergpt::generate::Detokenize;
use embergpt::{
    generate, Context, ContextParams, Error, GenerateParams, Gguf, Model, Sampler, SamplerParams,
    StopReason, StreamDecoder, Tokenizer,
};

fn bundled() -> Vec<u8> {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cli/assets/shakespeare-q8_0.gguf");
    std::fs::read(p).expect("cli/assets/shakespeare-q8_0.gguf")
}

#[test]
fn tokenizer_round_trips_on_the_bundled_vocabulary() {
    let file = bundled();
    let g = Gguf::parse(&file).unwrap();
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).unwrap() + 1];
    // An arena starting at an odd address: the carving must align it.
    let mut tok = Tokenizer::new(&g, &mut arena[1..])
        .unwrap_or_else(|_| panic!("tokenizer from an arena at an odd offset"));
    assert_eq!(tok.n_vocab(), 512);
    let eos = tok
        .eos()
        .expect("the bundled vocabulary names an end-of-text token");
    for text in [&b"ROMEO: hi"[..], b"caf\xc3\xa9 \xff\xe2\x82", b""] {
        for special in [false, true] {
            let n = tok.count(text, special);
            let mut ids = vec![0u32; n];
            assert_eq!(tok.encode(text, special, &mut ids), Ok(n));
            let mut out = vec![0u8; tok.decode_len(&ids, false).unwrap()];
            let k = tok.decode(&ids, false, &mut out).unwrap();
            assert_eq!(&out[..k], text, "decode(encode(x)) == x");
            let mut dec = StreamDecoder::new();
            let mut buf = vec![0u8; 3 + tok.max_token_len()];
            let mut streamed = Vec::new();
            for &id in &ids {
                let k = dec.push(&tok, id, &mut buf).unwrap();
                streamed.extend_from_slice(&buf[..k]);
            }
            let k = dec.flush(&mut buf).unwrap();
            streamed.extend_from_slice(&buf[..k]);
            assert_eq!(streamed, text);
            if n > 0 {
                let mut short = vec![0u32; n - 1];
                assert_eq!(
                    tok.encode(text, special, &mut short),
                    Err(Error::BufferTooSmall)
                );
            }
        }
    }
    // The literal end-of-text text becomes its id only with parse_special.
    let lit = tok.token_text(eos).unwrap().to_vec();
    let mut ids = [0u32; 64];
    assert_eq!(tok.encode(&lit, true, &mut ids), Ok(1));
    assert_eq!(ids[0], eos);
    let mut out = [0u8; 8];
    assert_eq!(
        tok.decode(&[1, 512], false, &mut out),
        Err(Error::TokenOutOfRange)
    );
    assert_eq!(
        tok.decode(&[u32::MAX], false, &mut out),
        Err(Error::TokenOutOfRange)
    );
    let mut dec = StreamDecoder::new();
    assert_eq!(dec.push(&tok, 512, &mut out), Err(Error::TokenOutOfRange));
    assert_eq!(dec, StreamDecoder::new(), "a failed push changes nothing");
    for w in [
        0,
        embergpt::tokenizer::MIN_BPE_WINDOW - 1,
        embergpt::tokenizer::BPE_WINDOW + 1,
    ] {
        assert_eq!(tok.set_bpe_window(w), Err(Error::BadParameter));
    }
}

#[test]
fn sampler_on_short_rows() {
    let p = SamplerParams {
        seed: 42,
        penalty_last_n: 4,
        repeat_penalty: 1.3,
        ..SamplerParams::default()
    };
    let size = Sampler::arena_size(6, &p).unwrap();
    let mut a = vec![0u8; size + 3];
    let mut b = vec![0u8; size];
    let mut s = Sampler::new(6, &p, &mut a[3..]).unwrap();
    let mut t = Sampler::new(6, &p, &mut b).unwrap();
    let row = [0.5, 2.0, f32::NAN, -1.0, f32::NEG_INFINITY, 1.9];
    for _ in 0..3 {
        let x = s.sample(&row).unwrap();
        assert_eq!(t.sample(&row), Ok(x), "same seed, same token");
        assert!(x != 2 && x != 4, "NaN / -inf sampled");
        s.accept(x);
        t.accept(x);
    }
    assert_eq!(s.sample(&[f32::NAN; 6]), Err(Error::NoCandidates));
    assert_eq!(s.sample(&row[..5]), Err(Error::BadParameter));
    let mut g = Sampler::new(6, &SamplerParams::greedy(), &mut b).unwrap();
    assert_eq!(
        g.sample(&[1.0, 3.0, 3.0, f32::INFINITY, 0.0, f32::INFINITY]),
        Ok(3)
    );
    let bad = SamplerParams {
        top_p: 0.0,
        ..SamplerParams::default()
    };
    assert_eq!(Sampler::arena_size(6, &bad), Err(Error::BadParameter));
}

/// Token id -> one byte.
struct OneByte;

impl Detokenize for OneByte {
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> embergpt::Result<usize> {
        let b = u8::try_from(id).map_err(|_| Error::TokenOutOfRange)?;
        *out.first_mut().ok_or(Error::BufferTooSmall)? = b;
        Ok(1)
    }
    fn eos(&self) -> Option<u32> {
        None
    }
}

#[test]
fn two_greedy_tokens_on_fixture_a() {
    let file = common::read_fixture("gpt2/a.q4_0.gguf");
    let model = Model::load(&file).unwrap();
    let n_vocab = model.hparams().n_vocab;
    let cp = ContextParams {
        n_ctx: 4,
        n_batch: 2,
        ..ContextParams::default()
    };
    let mut ca = vec![0u8; Context::arena_size(&model, &cp).unwrap()];
    let mut ctx = Context::new(model, &cp, &mut ca).unwrap();
    let sp = SamplerParams::greedy();
    let mut sa = vec![0u8; Sampler::arena_size(n_vocab, &sp).unwrap()];
    let mut sampler = Sampler::new(n_vocab, &sp, &mut sa).unwrap();
    let params = GenerateParams {
        max_tokens: Some(2),
        ..GenerateParams::default()
    };
    let mut got = Vec::new();
    let out = generate(
        &mut ctx,
        &mut sampler,
        &OneByte,
        &[7],
        &params,
        |id, text| {
            assert_eq!(text, [id as u8]);
            got.push(id);
            true
        },
    )
    .unwrap();
    assert_eq!(out.reason, StopReason::Budget);
    assert_eq!((out.n_sampled, out.n_emitted), (2, 2));
    // Lazy evaluation: the prompt and the first token are in the cache, the second is not.
    assert_eq!(ctx.n_past(), 2);
    assert_eq!(out.unevaluated, Some(got[1]));
    // Greedy: the second token is the argmax (lowest id on ties) of the logits it was sampled from.
    let l = ctx.logits().unwrap();
    let best = (0..n_vocab).fold(0, |b, j| if l[j] > l[b] { j } else { b });
    assert_eq!(got[1] as usize, best);
    // A bad prompt token fails before anything is evaluated.
    let r = generate(
        &mut ctx,
        &mut sampler,
        &OneByte,
        &[n_vocab as u32],
        &params,
        |_, _| true,
    );
    assert_eq!(r.err(), Some(Error::TokenOutOfRange));
    assert_eq!(ctx.n_past(), 2);
}
