//! The GPT-2 forward pass, top to bottom like the math (HF `GPT2LMHeadModel`).
//!
//! Shapes: `n` tokens in this call, `d = n_embd`, `ff = n_ff`, `V = n_vocab`,
//! `T = n_ctx` of the context, `hd = d / n_head`.

use crate::context::Context;
use crate::error::Result;
use crate::kernels::{matmul, QuantScratch};
use crate::model::LayerKind as K;
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

    // x = wte[token] + wpe[pos]                                   x: [n][d]
    let x = &mut x[..n * d];
    let xn = &mut xn[..n * d];
    for (b, &tok) in tokens.iter().enumerate() {
        let row = &mut x[b * d..(b + 1) * d];
        dequantize_row(m.token_embd.ty, m.token_embd.row(tok as usize), row)?;
        let p = &mut xn[..d];
        dequantize_row(pos_embd.ty, pos_embd.row(pos0 + b), p)?;
        for (xv, pv) in row.iter_mut().zip(p.iter()) {
            *xv += *pv;
        }
    }

    for l in 0..hp.n_layer {
        let lr = layers[l];
        let t = |kind: K| lr.t[kind as usize];

        // ---- attention: xn = ln_1(x); qkv = xn Wqkv^T + b       qkv: [n][3d]
        for b in 0..n {
            layer_norm(
                &x[b * d..(b + 1) * d],
                m.vector_of(&t(K::AttnNormW)),
                m.vector_of(&t(K::AttnNormB)),
                hp.eps,
                &mut xn[b * d..(b + 1) * d],
            );
        }
        let qkv = &mut qkv[..n * 3 * d];
        matmul(&k, &m.matrix_of(&t(K::AttnQkvW)), xn, n, qkv, &mut scratch)?;
        let qkv_b = m.vector_of(&t(K::AttnQkvB));
        for row in qkv.chunks_exact_mut(3 * d) {
            add_bias(row, qkv_b);
        }

        // k, v of the new tokens go to the cache      k_cache, v_cache: [L][T][d]
        let layer_k = &mut k_cache[l * t_max * d..(l + 1) * t_max * d];
        let layer_v = &mut v_cache[l * t_max * d..(l + 1) * t_max * d];
        for (b, row) in qkv.chunks_exact(3 * d).enumerate() {
            let p = pos0 + b;
            layer_k[p * d..(p + 1) * d].copy_from_slice(&row[d..2 * d]);
            layer_v[p * d..(p + 1) * d].copy_from_slice(&row[2 * d..3 * d]);
        }

        // att = softmax(q k^T / sqrt(hd)) v, causal, per head    att: [n][d]
        let att = &mut att[..n * d];
        att.fill(0.0);
        for b in 0..n {
            let p = pos0 + b;
            for h in 0..n_head {
                let q = &qkv[b * 3 * d + h * hd..b * 3 * d + (h + 1) * hd];
                let scores = &mut scores[..=p]; //               scores: [p + 1]
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = dot(q, &layer_k[j * d + h * hd..j * d + (h + 1) * hd]) * scale;
                }
                softmax(scores);
                let out = &mut att[b * d + h * hd..b * d + (h + 1) * hd];
                for (j, &a) in scores.iter().enumerate() {
                    let v = &layer_v[j * d + h * hd..j * d + (h + 1) * hd];
                    for (o, &vv) in out.iter_mut().zip(v) {
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
        for b in 0..n {
            layer_norm(
                &x[b * d..(b + 1) * d],
                m.vector_of(&t(K::FfnNormW)),
                m.vector_of(&t(K::FfnNormB)),
                hp.eps,
                &mut xn[b * d..(b + 1) * d],
            );
        }
        let h = &mut ffn[..n * ff];
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
    let first = if all_logits { 0 } else { n - 1 };
    let rows = n - first;
    let norm_b = m.output_norm_b.unwrap_or(&[]);
    for b in first..n {
        let r = b - first;
        layer_norm(
            &x[b * d..(b + 1) * d],
            m.output_norm_w,
            norm_b,
            hp.eps,
            &mut xn[r * d..(r + 1) * d],
        );
    }
    let logits = &mut logits[..rows * hp.n_vocab];
    matmul(&k, &m.output, &xn[..rows * d], rows, logits, &mut scratch)?;
    Ok(())
}
