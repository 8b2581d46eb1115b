//! The GPT-2 forward pass, top to bottom like the math (HF `GPT2LMHeadModel`).
//!
//! Shapes: `n` tokens in this call, `d = n_embd`, `ff = n_ff`, `V = n_vocab`,
//! `T = n_ctx` of the context, `hd = d / n_head`.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::kernels::parallel::{for_each_column_block, for_each_row};
use crate::kernels::{matmul, matmul_then, Kernels, QuantScratch};
use crate::model::{part, part_mut, LayerKind as K};
use crate::ops::{add_bias, layer_norm};
use crate::quant::dequantize_row;
use core::sync::atomic::{AtomicBool, Ordering};

/// Rows below which a norm runs on the calling thread (a row is ~1 us of work,
/// about the cost of a hand-off to the pool).
pub(crate) const MIN_PARALLEL_ROWS: usize = 8;

/// The bias bytes of output columns `r0..` (f32 each).
pub(crate) fn bias_from(b: &[u8], r0: usize) -> &[u8] {
    b.get(r0 * 4..).unwrap_or(&[])
}

/// `x += o + b`, the residual add after a projection with bias (`b` may be empty).
pub(crate) fn add_residual(x: &mut [f32], o: &mut [f32], b: &[u8]) {
    add_bias(o, b);
    for (a, v) in x.iter_mut().zip(o.iter()) {
        *a += *v;
    }
}

/// Store one token's keys (or values) `kv` (`[kv_heads][hd]`, as the projection
/// gives them) at position `p` of a head-major layer cache `[kv_heads][t_max][hd]`.
pub(crate) fn store_kv(
    cache: &mut [f32],
    kv: &[f32],
    t_max: usize,
    hd: usize,
    p: usize,
) -> Result<()> {
    for (h, src) in kv.chunks_exact(hd.max(1)).enumerate() {
        let at = (h * t_max + p) * hd;
        part_mut(cache, at..at + hd)?.copy_from_slice(src);
    }
    Ok(())
}

/// Causal self-attention of `n` new tokens at positions `pos0..`, shared by the
/// GPT-2 and Llama passes.
pub(crate) struct Attention<'a> {
    /// Queries: token `t`'s head `h` is `q[t * q_stride + h * hd ..][..hd]`.
    pub q: &'a [f32],
    pub q_stride: usize,
    /// One layer's key and value cache, head-major `[kv_heads][T][hd]` (`T` the
    /// `t_max` of [`Attention::run`]), the new tokens included: one head's keys
    /// are contiguous, so the score loop streams them.
    pub keys: &'a [f32],
    pub vals: &'a [f32],
    pub n_head: usize,
    pub hd: usize,
    /// Query heads per key/value head (head `h` reads kv head `h / group`).
    pub group: usize,
    pub pos0: usize,
    pub n: usize,
    pub scale: f32,
}

/// Whether attention runs queries two at a time ([`crate::ops::scores2`],
/// [`crate::ops::mix2`]; the same bits as one at a time). Not on bare-metal
/// targets: their kernels have no two-query forms, so pairing would only add
/// flash (~0.9 KB on the Cortex-M4F firmware, whose code budget is 64 KiB).
const PAIR_QUERIES: bool = !cfg!(target_os = "none");

impl Attention<'_> {
    /// `att[t][h] = softmax(q[t][h] k^T * scale) v` over positions `..= pos0 + t`
    /// (`att`: `[n][n_head * hd]`), one task per group of heads: each head is
    /// computed whole by one task, in the same order as on one thread, with its
    /// own two rows of `scores` (`[n_head][2][t_max]`: queries t and t + 1 run
    /// together, see [`PAIR_QUERIES`]).
    pub(crate) fn run(
        &self,
        k: &Kernels,
        att: &mut [f32],
        scores: &mut [f32],
        t_max: usize,
    ) -> Result<()> {
        let (hd, d) = (self.hd, self.n_head * self.hd);
        // Every query head inside a query row, every kv head inside the cache
        // (so the per-head slicing below cannot come up short).
        let kv_heads = self
            .n_head
            .checked_div(self.group)
            .ok_or(Error::ShapeMismatch)?;
        let head_len = t_max * hd; // one kv head's [T][hd] block
        let kv_len = kv_heads * head_len;
        if d > self.q_stride || kv_len > self.keys.len() || kv_len > self.vals.len() {
            return Err(Error::ShapeMismatch);
        }
        let att = part_mut(att, ..self.n * d)?;
        // Two score rows per head: queries t and t + 1 run together.
        let sc_len = t_max.checked_mul(2).ok_or(Error::ShapeMismatch)?;
        let scores = part_mut(scores, ..self.n_head * sc_len)?;
        let bad = AtomicBool::new(false);
        let head = |h: usize, out: &mut crate::kernels::parallel::Columns<'_>, sc: &mut [f32]| {
            let kv0 = (h / self.group) * head_len;
            let (sc_a, sc_b) = sc.split_at_mut(sc.len() / 2);
            let mut t = 0;
            while t < self.n {
                let p = self.pos0 + t;
                let q0 = t * self.q_stride + h * hd;
                let (Some(q), Some(keys), Some(vals)) = (
                    self.q.get(q0..q0 + hd),
                    self.keys.get(kv0..kv0 + (p + 1) * hd),
                    self.vals.get(kv0..kv0 + (p + 1) * hd),
                ) else {
                    bad.store(true, Ordering::Relaxed);
                    return;
                };
                if PAIR_QUERIES && t + 1 < self.n {
                    // Queries t and t + 1 (positions p, p + 1) over the same
                    // keys and values: each key row is read once for both.
                    let q1 = q0 + self.q_stride;
                    let (Some(qb), Some(keys_b), Some(vals_b), Some(sa), Some(sb)) = (
                        self.q.get(q1..q1 + hd),
                        self.keys.get(kv0..kv0 + (p + 2) * hd),
                        self.vals.get(kv0..kv0 + (p + 2) * hd),
                        sc_a.get_mut(..=p),
                        sc_b.get_mut(..=p + 1),
                    ) else {
                        bad.store(true, Ordering::Relaxed);
                        return;
                    };
                    crate::ops::scores2(k, q, qb, keys_b, hd, 0, self.scale, sa, sb);
                    (k.softmax)(sa);
                    (k.softmax)(sb);
                    let Some((oa, ob)) = out.rows2(t) else {
                        bad.store(true, Ordering::Relaxed);
                        return;
                    };
                    crate::ops::mix2(k, sa, sb, vals_b, hd, 0, oa, ob);
                    t += 2;
                } else {
                    let (Some(out), Some(sc)) = (out.row(t), sc_a.get_mut(..=p)) else {
                        bad.store(true, Ordering::Relaxed);
                        return;
                    };
                    crate::ops::scores(k, q, keys, hd, 0, self.scale, sc);
                    (k.softmax)(sc);
                    (k.mix)(sc, vals, hd, 0, out);
                    t += 1;
                }
            }
        };
        for_each_column_block(
            k.parallel.as_ref(),
            att,
            d,
            hd,
            self.n_head,
            scores,
            sc_len,
            &head,
        )?;
        if bad.load(Ordering::Relaxed) {
            return Err(Error::ShapeMismatch);
        }
        Ok(())
    }
}

/// Evaluate `tokens` at positions `ctx.n_past ..`, which the caller has checked
/// fit (ids in range, `n <= n_batch`, positions inside the context). Writes the
/// logits of the last token (row 0) or of every token (rows `0..n`).
///
/// Threads: every matmul is split over its output rows with its bias, GELU and
/// residual add done by the same task; attention is split over heads; norms
/// over tokens. Each output element is computed by one thread in a fixed order.
pub(crate) fn forward(ctx: &mut Context<'_, '_>, tokens: &[u32], all_logits: bool) -> Result<()> {
    let Context {
        model: m,
        kernels: k,
        n_ctx: t_max,
        n_past: pos0,
        layers,
        k_cache,
        v_cache,
        x,
        xn,
        qkv,
        att,
        ffn,
        scores,
        logits,
        q8_0,
        q8_1,
        ..
    } = ctx;
    let (m, k, t_max, pos0) = (*m, *k, *t_max, *pos0);
    let par = k.parallel.as_ref();
    let mut scratch = QuantScratch { q8_0, q8_1 };
    let hp = *m.hparams();
    let (n, d, ff) = (tokens.len(), hp.n_embd, hp.n_ff);
    let (n_head, hd) = (hp.n_head, hp.head_dim());
    let scale = 1.0 / libm::sqrtf(hd as f32);
    let pos_embd = m.pos_embd.ok_or(crate::Error::MissingTensor)?;
    // Every buffer below is sliced with `part`/`part_mut` (an error, never a
    // panic); `d`, `hd`, `ff` and `t_max` are non-zero (validated at load / new).
    let layers = part(layers, ..hp.n_layer)?;
    let kv_len = t_max * d;

    // x = wte[token] + wpe[pos]                                   x: [n][d]
    let x = part_mut(x, ..n * d)?;
    let xn = part_mut(xn, ..n * d)?;
    for ((row, &tok), pos) in x.chunks_exact_mut(d).zip(tokens).zip(pos0..) {
        dequantize_row(m.token_embd.ty, m.token_embd.row(tok as usize), row)?;
        let p = part_mut(xn, ..d)?;
        dequantize_row(pos_embd.ty, pos_embd.row(pos), p)?;
        for (xv, pv) in row.iter_mut().zip(p.iter()) {
            *xv += *pv;
        }
    }

    for (l, lr) in layers.iter().enumerate() {
        let t = |kind: K| lr.get(kind);

        // ---- attention: xn = ln_1(x); qkv = xn Wqkv^T + b       qkv: [n][3d]
        let (nw, nb) = (m.vector_of(&t(K::AttnNormW)), m.vector_of(&t(K::AttnNormB)));
        let xs: &[f32] = x;
        for_each_row(par, xn, d, MIN_PARALLEL_ROWS, &|i, nr| {
            layer_norm(
                xs.get(i * d..(i + 1) * d).unwrap_or(&[]),
                nw,
                nb,
                hp.eps,
                nr,
            )
        });
        let qkv = part_mut(qkv, ..n * 3 * d)?;
        let qkv_b = m.vector_of(&t(K::AttnQkvB));
        let bias = |r0: usize, o: &mut [f32], _: &mut [f32]| add_bias(o, bias_from(qkv_b, r0));
        let wqkv = m.matrix_of(&t(K::AttnQkvW));
        matmul_then(
            &k,
            &wqkv,
            None,
            xn,
            n,
            qkv,
            &mut [],
            &mut scratch,
            Some(&bias),
        )?;

        // k, v of the new tokens go to the cache   k_cache, v_cache: [L][n_head][T][hd]
        let layer_k = part_mut(k_cache, l * kv_len..(l + 1) * kv_len)?;
        let layer_v = part_mut(v_cache, l * kv_len..(l + 1) * kv_len)?;
        for (row, p) in qkv.chunks_exact(3 * d).zip(pos0..) {
            store_kv(layer_k, part(row, d..2 * d)?, t_max, hd, p)?;
            store_kv(layer_v, part(row, 2 * d..3 * d)?, t_max, hd, p)?;
        }

        // att = softmax(q k^T / sqrt(hd)) v, causal, per head    att: [n][d]
        let att = part_mut(att, ..n * d)?;
        Attention {
            q: qkv,
            q_stride: 3 * d,
            keys: layer_k,
            vals: layer_v,
            n_head,
            hd,
            group: 1,
            pos0,
            n,
            scale,
        }
        .run(&k, att, scores, t_max)?;

        // x = x + att Wo^T + bo                                   xn: [n][d]
        let bo = m.vector_of(&t(K::AttnOutB));
        let res = |r0: usize, o: &mut [f32], xr: &mut [f32]| add_residual(xr, o, bias_from(bo, r0));
        let wo = m.matrix_of(&t(K::AttnOutW));
        matmul_then(&k, &wo, None, att, n, xn, x, &mut scratch, Some(&res))?;

        // ---- MLP: h = gelu(ln_2(x) Wup^T + bup)                  h: [n][ff]
        let (nw, nb) = (m.vector_of(&t(K::FfnNormW)), m.vector_of(&t(K::FfnNormB)));
        let xs: &[f32] = x;
        for_each_row(par, xn, d, MIN_PARALLEL_ROWS, &|i, nr| {
            layer_norm(
                xs.get(i * d..(i + 1) * d).unwrap_or(&[]),
                nw,
                nb,
                hp.eps,
                nr,
            )
        });
        let h = part_mut(ffn, ..n * ff)?;
        let bup = m.vector_of(&t(K::FfnUpB));
        let up = |r0: usize, o: &mut [f32], _: &mut [f32]| {
            add_bias(o, bias_from(bup, r0));
            (k.gelu)(o);
        };
        let wup = m.matrix_of(&t(K::FfnUpW));
        matmul_then(&k, &wup, None, xn, n, h, &mut [], &mut scratch, Some(&up))?;
        // x = x + h Wdown^T + bdown                               xn: [n][d]
        let bdown = m.vector_of(&t(K::FfnDownB));
        let res =
            |r0: usize, o: &mut [f32], xr: &mut [f32]| add_residual(xr, o, bias_from(bdown, r0));
        let wdown = m.matrix_of(&t(K::FfnDownW));
        matmul_then(&k, &wdown, None, h, n, xn, x, &mut scratch, Some(&res))?;
    }

    // logits = ln_f(x) Wout^T                  logits: [n or 1][V]
    let first = if all_logits { 0 } else { n.saturating_sub(1) };
    let rows = n - first;
    let norm_b = m.output_norm_b.unwrap_or(&[]);
    let xs = part(x, first * d..)?;
    let xn = part_mut(xn, ..rows * d)?;
    for_each_row(par, xn, d, MIN_PARALLEL_ROWS, &|i, nr| {
        layer_norm(
            xs.get(i * d..(i + 1) * d).unwrap_or(&[]),
            m.output_norm_w,
            norm_b,
            hp.eps,
            nr,
        )
    });
    let logits = part_mut(logits, ..rows * hp.n_vocab)?;
    matmul(&k, &m.output, xn, rows, logits, &mut scratch)?;
    Ok(())
}
