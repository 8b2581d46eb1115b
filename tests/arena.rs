//! Arena usage is observable and pinned: a change that grows it shows up here.

mod common;
use common::*;
use embergpt::model::Arch;
use embergpt::{Context, ContextParams, Error, Hparams, Model};

fn gpt2_124m() -> Hparams {
    Hparams {
        arch: Arch::Gpt2,
        n_vocab: 50257,
        n_ctx: 1024,
        n_embd: 768,
        n_ff: 3072,
        n_layer: 12,
        n_head: 12,
        n_head_kv: 12,
        eps: 1e-5,
        n_rot: 0,
        rope_freq_base: 0.0,
    }
}

#[test]
fn gpt2_124m_arena_is_pinned() {
    let p = ContextParams::default(); // full context 1024, batch 32, last logits only
    let n = Context::arena_size_for(&gpt2_124m(), &p).unwrap();
    // KV cache 2 x 12 x 1024 x 768 x 4 = 75,497,472 B; the rest is activations,
    // logits, quantized scratch, the layer table and 63 B of start alignment.
    println!("GPT-2 124M, n_ctx 1024, n_batch 32: {n} bytes");
    // +1,920 B since the layer table gained the Llama kinds; +45,056 B (11 x 1024 x 4)
    // since attention scores have one row per head (12 instead of 1) so that
    // heads run in parallel; +49,152 B (12 x 1024 x 4) since each head has two
    // rows, so that two queries share each pass over the keys and values.
    assert_eq!(n, 77_002_687);
    let all = ContextParams {
        logits_all: true,
        ..p
    };
    // logits grow from one 64-byte-aligned row (201,088 B) to 32 rows (6,432,896 B)
    assert_eq!(
        Context::arena_size_for(&gpt2_124m(), &all).unwrap(),
        n - 201_088 + 6_432_896
    );
}

#[test]
fn arena_size_is_exact_and_one_byte_less_fails() {
    let bytes = read_fixture("gpt2/b.q4_1.gguf");
    let model = Model::load(&bytes).unwrap();
    let p = ContextParams {
        n_ctx: 40,
        n_batch: 8,
        ..Default::default()
    };
    let need = Context::arena_size(&model, &p).unwrap();
    let mut buf = vec![0u8; need + 64];
    // Every start alignment of the caller's buffer fits in exactly `need` bytes.
    for off in 0..64 {
        let arena = &mut buf[off..off + need];
        let ctx = Context::new(model, &p, arena).unwrap();
        assert!(ctx.arena_used() <= need && need - ctx.arena_used() < 64);
    }
    let short = &mut buf[..need - 1];
    match Context::new(model, &p, short) {
        Err(Error::ArenaTooSmall { needed, available }) => {
            assert_eq!((needed, available), (need, need - 1))
        }
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("context created in a short arena"),
    }
}
