//! A context: one model plus everything evaluation needs, inside the caller's arena.
//!
//! [`Context::arena_size`] computes, before anything is touched, the exact bytes a
//! context needs; [`Context::new`] carves them from the caller's buffer in the same
//! order. Nothing allocates afterwards: `eval` only writes into these slices.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use crate::arena::{Arena, Plan, Pod};
use crate::error::{Error, Result};
use crate::kernels::{Backend, Kernels, ParallelFor};
use crate::model::{Arch, Hparams, LayerRefs, Model};
use crate::quant::{BlockQ8_0, BlockQ8_1, QK};

/// What a context is created for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextParams {
    /// Context length in tokens; 0 means the model's own.
    pub n_ctx: usize,
    /// Most tokens evaluated in one forward step (longer inputs are split).
    pub n_batch: usize,
    /// Keep logits for every position of a batch (`eval_all`), not only the last.
    pub logits_all: bool,
    /// Force a kernel backend; `None` picks the best this CPU runs.
    pub backend: Option<Backend>,
    /// The host's parallel-for; `None` runs everything on the calling thread.
    /// Results are bit-identical for any thread count.
    pub parallel: Option<ParallelFor>,
}

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams {
            n_ctx: 0,
            n_batch: 32,
            logits_all: false,
            backend: None,
            parallel: None,
        }
    }
}

/// Element counts of every arena buffer, computed once for both planning and carving.
struct Sizes {
    n_ctx: usize,
    n_batch: usize,
    logit_rows: usize,
    layers: usize,
    kv: usize,
    x: usize,
    qkv: usize,
    ffn: usize,
    scores: usize,
    rope: usize,
    logits: usize,
    q8: usize,
}

fn sizes(hp: &Hparams, p: &ContextParams) -> Result<Sizes> {
    let n_ctx = if p.n_ctx == 0 { hp.n_ctx } else { p.n_ctx };
    if n_ctx > hp.n_ctx {
        return Err(Error::BadContextLength);
    }
    if p.n_batch == 0 || p.n_batch > n_ctx {
        return Err(Error::BadBatchSize);
    }
    let nb = p.n_batch;
    let logit_rows = if p.logits_all { nb } else { 1 };
    let mul = |a: usize, b: usize| a.checked_mul(b).ok_or(Error::BadParameter);
    let kv_dim = hp.kv_dim();
    // q, k, v of a batch side by side: GPT-2's fused projection, Llama's three
    // (k and v are kv_dim wide with grouped-query attention).
    let qkv_w = hp.n_embd + 2 * kv_dim;
    // Llama keeps gate and up projections of a batch at once (SwiGLU).
    let ffn_w = match hp.arch {
        Arch::Gpt2 => hp.n_ff,
        Arch::Llama => mul(2, hp.n_ff)?,
    };
    let widest = hp.n_embd.max(hp.n_ff);
    Ok(Sizes {
        n_ctx,
        n_batch: nb,
        logit_rows,
        layers: hp.n_layer,
        kv: mul(mul(hp.n_layer, n_ctx)?, kv_dim)?,
        x: mul(nb, hp.n_embd)?,
        qkv: mul(nb, qkv_w)?,
        ffn: mul(nb, ffn_w)?,
        scores: mul(hp.n_head, mul(2, n_ctx)?)?,
        rope: mul(nb, hp.n_rot)?,
        logits: mul(logit_rows, hp.n_vocab)?,
        q8: mul(nb, widest.div_ceil(QK))?,
    })
}

/// Evaluation state of one model: KV cache, activations, logits, scratch.
///
/// A context belongs to one thread at a time; the model it reads is shared, read-only.
pub struct Context<'m, 'a> {
    pub(crate) model: Model<'m>,
    pub(crate) kernels: Kernels,
    pub(crate) n_ctx: usize,
    pub(crate) n_batch: usize,
    pub(crate) logit_rows: usize,
    /// Tokens in the KV cache.
    pub(crate) n_past: usize,
    /// Rows of `logits` that are valid (0: none).
    pub(crate) n_logits: usize,
    /// `[n_layer]` where each layer's tensors lie in the file.
    pub(crate) layers: &'a [LayerRefs],
    /// `[n_layer][n_ctx][kv_dim]`
    pub(crate) k_cache: &'a mut [f32],
    /// `[n_layer][n_ctx][kv_dim]`
    pub(crate) v_cache: &'a mut [f32],
    /// Residual stream `[n_batch][n_embd]`.
    pub(crate) x: &'a mut [f32],
    /// Normalised / projected rows `[n_batch][n_embd]`.
    pub(crate) xn: &'a mut [f32],
    /// `[n_batch][n_embd + 2 kv_dim]`
    pub(crate) qkv: &'a mut [f32],
    /// Attention output before projection `[n_batch][n_embd]`.
    pub(crate) att: &'a mut [f32],
    /// Feed-forward hidden `[n_batch][n_ff]` (Llama: gate and up, `[2][n_batch][n_ff]`).
    pub(crate) ffn: &'a mut [f32],
    /// Attention scores, two rows per head so that heads run in parallel and two
    /// queries share each pass over the keys `[n_head][2][n_ctx]`.
    pub(crate) scores: &'a mut [f32],
    /// RoPE (cos, sin) pairs of the batch's positions `[n_batch][n_rot / 2][2]` (empty for GPT-2).
    pub(crate) rope: &'a mut [f32],
    /// `[logit_rows][n_vocab]`
    pub(crate) logits: &'a mut [f32],
    /// Quantized activations `[n_batch][widest / 32]`.
    pub(crate) q8_0: &'a mut [BlockQ8_0],
    /// Same for Q8_1.
    pub(crate) q8_1: &'a mut [BlockQ8_1],
    arena_used: usize,
}

fn plan(s: &Sizes) -> Plan {
    let mut p = Plan::new();
    p.push::<LayerRefs>(s.layers)
        .push::<f32>(s.kv)
        .push::<f32>(s.kv)
        .push::<f32>(s.x)
        .push::<f32>(s.x)
        .push::<f32>(s.qkv)
        .push::<f32>(s.x)
        .push::<f32>(s.ffn)
        .push::<f32>(s.scores)
        .push::<f32>(s.rope)
        .push::<f32>(s.logits)
        .push::<BlockQ8_0>(s.q8)
        .push::<BlockQ8_1>(s.q8);
    p
}

fn carve<'a, T: Pod>(a: &mut Arena<'a>, n: usize) -> Result<&'a mut [T]> {
    a.alloc::<T>(n)
}

impl<'m, 'a> Context<'m, 'a> {
    /// Exact arena bytes a context for `model` with `params` needs. Pure: touches no memory.
    pub fn arena_size(model: &Model<'_>, params: &ContextParams) -> Result<usize> {
        Self::arena_size_for(model.hparams(), params)
    }

    /// Same as [`Context::arena_size`] from hyperparameters alone (e.g. before the
    /// model bytes are at hand, to size a static arena).
    pub fn arena_size_for(hp: &Hparams, params: &ContextParams) -> Result<usize> {
        plan(&sizes(hp, params)?).total()
    }

    /// Create a context inside `arena`. Fails with `ArenaTooSmall { needed, .. }`
    /// when the arena is smaller than [`Context::arena_size`].
    pub fn new(model: Model<'m>, params: &ContextParams, arena: &'a mut [u8]) -> Result<Self> {
        let s = sizes(model.hparams(), params)?;
        let needed = plan(&s).total()?;
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall {
                needed,
                available: arena.len(),
            });
        }
        let mut kernels = match params.backend {
            Some(b) => Kernels::new(b)?,
            None => Kernels::detect(),
        };
        kernels.parallel = params.parallel;
        let mut a = Arena::new(arena);
        let layers: &'a mut [LayerRefs] = carve(&mut a, s.layers)?;
        model.fill_layer_refs(layers)?;
        let ctx = Context {
            model,
            kernels,
            n_ctx: s.n_ctx,
            n_batch: s.n_batch,
            logit_rows: s.logit_rows,
            n_past: 0,
            n_logits: 0,
            layers,
            k_cache: carve(&mut a, s.kv)?,
            v_cache: carve(&mut a, s.kv)?,
            x: carve(&mut a, s.x)?,
            xn: carve(&mut a, s.x)?,
            qkv: carve(&mut a, s.qkv)?,
            att: carve(&mut a, s.x)?,
            ffn: carve(&mut a, s.ffn)?,
            scores: carve(&mut a, s.scores)?,
            rope: carve(&mut a, s.rope)?,
            logits: carve(&mut a, s.logits)?,
            q8_0: carve(&mut a, s.q8)?,
            q8_1: carve(&mut a, s.q8)?,
            arena_used: 0,
        };
        Ok(Context {
            arena_used: a.used(),
            ..ctx
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }
    /// The kernel backend in use.
    pub fn backend(&self) -> Backend {
        self.kernels.backend
    }
    /// Context length.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    /// Batch size.
    pub fn n_batch(&self) -> usize {
        self.n_batch
    }
    /// Tokens currently in the KV cache (the next token's position).
    pub fn n_past(&self) -> usize {
        self.n_past
    }
    /// Arena bytes actually carved (alignment padding of the start included).
    pub fn arena_used(&self) -> usize {
        self.arena_used
    }

    /// Check ids and room before touching any state.
    fn check(&self, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::EmptyInput);
        }
        let v = self.model.hparams().n_vocab;
        if tokens.iter().any(|&t| t as usize >= v) {
            return Err(Error::TokenOutOfRange);
        }
        if tokens.len() > self.n_ctx - self.n_past {
            return Err(Error::ContextFull);
        }
        Ok(())
    }

    fn run(&mut self, tokens: &[u32], all: bool) -> Result<()> {
        self.n_logits = 0;
        match self.model.hparams().arch {
            Arch::Gpt2 => crate::model::gpt2::forward(self, tokens, all)?,
            Arch::Llama => crate::model::llama::forward(self, tokens, all)?,
        }
        self.n_past += tokens.len();
        self.n_logits = if all { tokens.len() } else { 1 };
        Ok(())
    }

    /// Evaluate `tokens` after the ones already in the cache (prefill when many,
    /// decode when one), in steps of at most `n_batch`; keeps the last token's logits.
    ///
    /// On error nothing is evaluated and the context is unchanged.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<()> {
        self.check(tokens)?;
        for chunk in tokens.chunks(self.n_batch) {
            self.run(chunk, false)?;
        }
        Ok(())
    }

    /// Evaluate `tokens` (at most `n_batch`, and the context must have been made
    /// with `logits_all`) and keep the logits of every one of them.
    pub fn eval_all(&mut self, tokens: &[u32]) -> Result<()> {
        self.check(tokens)?;
        if tokens.len() > self.logit_rows {
            return Err(Error::BatchTooLarge);
        }
        self.run(tokens, true)
    }

    /// Logits of the last evaluated token, `[n_vocab]`.
    pub fn logits(&self) -> Result<&[f32]> {
        let v = self.model.hparams().n_vocab;
        if self.n_logits == 0 {
            return Err(Error::NoLogits);
        }
        // n_logits <= logit_rows, so the row is inside `logits`.
        self.logits
            .get((self.n_logits - 1) * v..self.n_logits * v)
            .ok_or(Error::NoLogits)
    }

    /// Logits of every token of the last `eval_all`, `[n][n_vocab]` (one row after `eval`).
    pub fn all_logits(&self) -> Result<&[f32]> {
        if self.n_logits == 0 {
            return Err(Error::NoLogits);
        }
        self.logits
            .get(..self.n_logits * self.model.hparams().n_vocab)
            .ok_or(Error::NoLogits)
    }

    /// Forget every token from position `pos` on (`pos <= n_past`). Logits are invalidated.
    pub fn rewind(&mut self, pos: usize) -> Result<()> {
        if pos > self.n_past {
            return Err(Error::BadPosition);
        }
        if pos < self.n_past {
            self.n_logits = 0;
        }
        self.n_past = pos;
        Ok(())
    }

    /// Forget everything (same as `rewind(0)`).
    pub fn reset(&mut self) {
        self.n_past = 0;
        self.n_logits = 0;
    }
}
