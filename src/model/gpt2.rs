//! The GPT-2 forward pass, top to bottom like the math (HF `GPT2LMHeadModel`).
//!
//! Shapes: `n` tokens in this call, `d = n_embd`, `ff = n_ff`, `V = n_vocab`,
//! `T = n_ctx` of the context, `hd = d / n_head`.

use crate::context::Context;
use crate::error::Result;
use crate::kernels::{matmul, QuantScratch};
use crate::model::{part, part_mut, LayerKind as K};
use crate::ops::{add_bias, dot, gelu, layer_norm, softmax};
use crate::quant::dequantize_row;

/// Evaluate `tokens` at positions `ctx.n_past ..`, which the caller has checked
/// fit (ids in range, `n <= n_batch`, positions inside the context). Writes the
/// logits of the last token (row 0) or of every token (rows `0..n`).
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
        for (xr, nr) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
            layer_norm(
                xr,
                m.vector_of(&t(K::AttnNormW)),
                m.vector_of(&t(K::AttnNormB)),
                hp.eps,
                nr,
            );
        }
        let qkv = part_mut(qkv, ..n * 3 * d)?;
        matmul(&k, &m.matrix_of(&t(K::AttnQkvW)), xn, n, qkv, &mut scratch)?;
        let qkv_b = m.vector_of(&t(K::AttnQkvB));
        for row in qkv.chunks_exact_mut(3 * d) {
            add_bias(row, qkv_b);
        }

        // k, v of the new tokens go to the cache      k_cache, v_cache: [L][T][d]
        let layer_k = part_mut(k_cache, l * kv_len..(l + 1) * kv_len)?;
        let layer_v = part_mut(v_cache, l * kv_len..(l + 1) * kv_len)?;
        let new_k = part_mut(layer_k, pos0 * d..(pos0 + n) * d)?;
        let new_v = part_mut(layer_v, pos0 * d..(pos0 + n) * d)?;
        for ((row, kr), vr) in qkv
            .chunks_exact(3 * d)
            .zip(new_k.chunks_exact_mut(d))
            .zip(new_v.chunks_exact_mut(d))
        {
            kr.copy_from_slice(part(row, d..2 * d)?);
            vr.copy_from_slice(part(row, 2 * d..3 * d)?);
        }

        // att = softmax(q k^T / sqrt(hd)) v, causal, per head    att: [n][d]
        let att = part_mut(att, ..n * d)?;
        att.fill(0.0);
        for ((row, out_row), p) in qkv
            .chunks_exact(3 * d)
            .zip(att.chunks_exact_mut(d))
            .zip(pos0..)
        {
            let keys = part(layer_k, ..(p + 1) * d)?;
            let vals = part(layer_v, ..(p + 1) * d)?;
            let scores = part_mut(scores, ..=p)?; //            scores: [p + 1]
            let q_row = part(row, ..d)?;
            for (h, (q, out)) in q_row
                .chunks_exact(hd)
                .zip(out_row.chunks_exact_mut(hd))
                .enumerate()
                .take(n_head)
            {
                let head = h * hd..(h + 1) * hd;
                for (s, kj) in scores.iter_mut().zip(keys.chunks_exact(d)) {
                    *s = dot(&k, q, part(kj, head.clone())?) * scale;
                }
                softmax(scores);
                for (&a, vj) in scores.iter().zip(vals.chunks_exact(d)) {
                    for (o, &vv) in out.iter_mut().zip(part(vj, head.clone())?) {
                        *o += a * vv;
                    }
                }
            }
        }

        // x = x + att Wo^T + bo                                   xn: [n][d]
        matmul(&k, &m.matrix_of(&t(K::AttnOutW)), att, n, xn, &mut scratch)?;
        let bo = m.vector_of(&t(K::AttnOutB));
        for (xr, pr) in x.chunks_exact_mut(d).zip(xn.chunks_exact_mut(d)) {
            add_bias(pr, bo);
            for (a, b) in xr.iter_mut().zip(pr.iter()) {
                *a += *b;
            }
        }

        // ---- MLP: h = gelu(ln_2(x) Wup^T + bup)                  h: [n][ff]
        for (xr, nr) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
            layer_norm(
                xr,
                m.vector_of(&t(K::FfnNormW)),
                m.vector_of(&t(K::FfnNormB)),
                hp.eps,
                nr,
            );
        }
        let h = part_mut(ffn, ..n * ff)?;
        matmul(&k, &m.matrix_of(&t(K::FfnUpW)), xn, n, h, &mut scratch)?;
        let bup = m.vector_of(&t(K::FfnUpB));
        for row in h.chunks_exact_mut(ff) {
            add_bias(row, bup);
            gelu(row);
        }
        // x = x + h Wdown^T + bdown                               xn: [n][d]
        matmul(&k, &m.matrix_of(&t(K::FfnDownW)), h, n, xn, &mut scratch)?;
        let bdown = m.vector_of(&t(K::FfnDownB));
        for (xr, pr) in x.chunks_exact_mut(d).zip(xn.chunks_exact_mut(d)) {
            add_bias(pr, bdown);
            for (a, b) in xr.iter_mut().zip(pr.iter()) {
                *a += *b;
            }
        }
    }

    // logits = ln_f(x) Wout^T                  logits: [n or 1][V]
    let first = if all_logits { 0 } else { n.saturating_sub(1) };
    let rows = n - first;
    let norm_b = m.output_norm_b.unwrap_or(&[]);
    for (xr, nr) in part(x, first * d..)?
        .chunks_exact(d)
        .zip(xn.chunks_exact_mut(d))
    {
        layer_norm(xr, m.output_norm_w, norm_b, hp.eps, nr);
    }
    let logits = part_mut(logits, ..rows * hp.n_vocab)?;
    matmul(
        &k,
        &m.output,
        part(xn, ..rows * d)?,
        rows,
        logits,
        &mut scratch,
    )?;
    Ok(())
}
