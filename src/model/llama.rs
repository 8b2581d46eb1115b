//! The Llama forward pass, top to bottom like the math (HF `LlamaForCausalLM`,
//! with llama.cpp's GGUF conventions).
//!
//! Shapes: `n` tokens in this call, `d = n_embd`, `ff = n_ff`, `V = n_vocab`,
//! `T = n_ctx` of the context, `hd = d / n_head`, `kvd = hd * n_head_kv`,
//! `r = n_rot` (RoPE dimensions per head, `r <= hd`).
//!
//! RoPE is llama.cpp's "normal" mode: within each head the consecutive pairs
//! `(x[2i], x[2i+1])`, `i < r/2`, rotate by `pos * base^(-2i/r)`. HF's
//! `rotate_half` pairs `(x[i], x[i + hd/2])` instead; the two agree because
//! converters permute the rows of `Wq` and `Wk` (llama.cpp's `permute`), which is
//! why GGUF files store Q/K in this interleaved order.
//!
//! Grouped-query attention: query head `h` reads key/value head `h / (n_head / n_head_kv)`.

use crate::context::Context;
use crate::error::Result;
use crate::kernels::parallel::for_each_row;
use crate::kernels::{matmul, matmul_then, QuantScratch};
use crate::model::gpt2::{add_residual, store_kv, Attention, MIN_PARALLEL_ROWS};
use crate::model::{part, part_mut, LayerKind as K};
use crate::ops::f32s;
use crate::quant::dequantize_row;

/// `out = x / sqrt(mean(x^2) + eps) * w` over one row (HF `LlamaRMSNorm`).
fn rms_norm(x: &[f32], w: &[u8], eps: f32, out: &mut [f32]) {
    let ms = crate::ops::sum_lanes(x, |v| v * v) / x.len() as f32;
    let inv = 1.0 / libm::sqrtf(ms + eps);
    for ((o, &xv), wv) in out.iter_mut().zip(x).zip(f32s(w)) {
        *o = xv * inv * wv;
    }
}

/// Fill `table` (`[r/2][2]`) with `(cos, sin)` of `pos * base^(-2i/r)`, in f32
/// as transformers forms them (`inv_freq = 1 / base^(2i/r)`, then `pos * inv_freq`,
/// each rounded to f32), with [`crate::ops::sin_cos`] (no f64 anywhere: it is
/// emulated on single-precision microcontrollers).
fn rope_table(pos: usize, base: f32, table: &mut [f32]) {
    let r = table.len() as f32;
    for (i, cs) in table.as_chunks_mut::<2>().0.iter_mut().enumerate() {
        let inv_freq = 1.0 / libm::powf(base, (2 * i) as f32 / r);
        let (c, s) = crate::ops::sin_cos(pos as f32 * inv_freq);
        *cs = [c, s];
    }
}

/// Rotate the first `table.len()` dimensions of every `hd`-wide head in `row`.
fn rope(row: &mut [f32], hd: usize, table: &[f32]) {
    let table = table.as_chunks::<2>().0;
    for head in row.chunks_exact_mut(hd) {
        for (pair, &[c, s]) in head.as_chunks_mut::<2>().0.iter_mut().zip(table) {
            let [x0, x1] = *pair;
            *pair = [x0 * c - x1 * s, x0 * s + x1 * c];
        }
    }
}

/// Evaluate `tokens` at positions `ctx.n_past ..`, which the caller has checked
/// fit (ids in range, `n <= n_batch`, positions inside the context). Writes the
/// logits of the last token (row 0) or of every token (rows `0..n`).
///
/// Threads as in GPT-2's pass: k and v projections in one dispatch, gate and
/// up in one with SwiGLU done by the same tasks, residual adds inside the
/// projections' tasks, attention split over heads, norms over tokens.
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
        rope: rope_buf,
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
    let (n_head, hd, kvd) = (hp.n_head, hp.head_dim(), hp.kv_dim());
    let group = n_head / hp.n_head_kv;
    let scale = 1.0 / libm::sqrtf(hd as f32);
    // Every buffer below is sliced with `part`/`part_mut` (an error, never a
    // panic); `d`, `hd`, `kvd`, `ff`, `r`, `group` and `t_max` are non-zero
    // (validated at load / new).
    let layers = part(layers, ..hp.n_layer)?;
    let kv_len = t_max * kvd;

    // x = embd[token]                                             x: [n][d]
    let x = part_mut(x, ..n * d)?;
    let xn = part_mut(xn, ..n * d)?;
    for (row, &tok) in x.chunks_exact_mut(d).zip(tokens) {
        dequantize_row(m.token_embd.ty, m.token_embd.row(tok as usize), row)?;
    }

    // (cos, sin) of every position of the batch               rope: [n][r/2][2]
    let r = hp.n_rot;
    let rope_tab = part_mut(rope_buf, ..n * r)?;
    for (tab, pos) in rope_tab.chunks_exact_mut(r).zip(pos0..) {
        rope_table(pos, hp.rope_freq_base, tab);
    }

    for (l, lr) in layers.iter().enumerate() {
        let t = |kind: K| lr.get(kind);

        // ---- attention: xn = rms_norm(x) * w_attn_norm           xn: [n][d]
        let nw = m.vector_of(&t(K::AttnNormW));
        let xs: &[f32] = x;
        for_each_row(par, xn, d, MIN_PARALLEL_ROWS, &|i, nr| {
            rms_norm(xs.get(i * d..(i + 1) * d).unwrap_or(&[]), nw, hp.eps, nr)
        });
        // q = xn Wq^T, k = xn Wk^T, v = xn Wv^T      q: [n][d], k, v: [n][kvd]
        let (q, rest) = part_mut(qkv, ..n * (d + 2 * kvd))?.split_at_mut(n * d);
        let (kk, vv) = rest.split_at_mut(n * kvd);
        matmul(&k, &m.matrix_of(&t(K::AttnQW)), xn, n, q, &mut scratch)?;
        let (wk, wv) = (m.matrix_of(&t(K::AttnKW)), m.matrix_of(&t(K::AttnVW)));
        matmul_then(&k, &wk, Some(&wv), xn, n, kk, vv, &mut scratch, None)?;

        // q, k = rope(q, pos), rope(k, pos)
        for ((tab, qr), kr) in rope_tab
            .chunks_exact(r)
            .zip(q.chunks_exact_mut(d))
            .zip(kk.chunks_exact_mut(kvd))
        {
            rope(qr, hd, tab);
            rope(kr, hd, tab);
        }

        // k, v of the new tokens go to the cache  k_cache, v_cache: [L][kv_heads][T][hd]
        let layer_k = part_mut(k_cache, l * kv_len..(l + 1) * kv_len)?;
        let layer_v = part_mut(v_cache, l * kv_len..(l + 1) * kv_len)?;
        for ((kr, vr), p) in kk.chunks_exact(kvd).zip(vv.chunks_exact(kvd)).zip(pos0..) {
            store_kv(layer_k, kr, t_max, hd, p)?;
            store_kv(layer_v, vr, t_max, hd, p)?;
        }

        // att = softmax(q k^T / sqrt(hd)) v, causal; head h reads kv head h / group
        let att = part_mut(att, ..n * d)?; //                        att: [n][d]
        Attention {
            q,
            q_stride: d,
            keys: layer_k,
            vals: layer_v,
            n_head,
            hd,
            group,
            pos0,
            n,
            scale,
        }
        .run(&k, att, scores, t_max)?;

        // x = x + att Wo^T                                        xn: [n][d]
        let res = |_: usize, o: &mut [f32], xr: &mut [f32]| add_residual(xr, o, &[]);
        let wo = m.matrix_of(&t(K::AttnOutW));
        matmul_then(&k, &wo, None, att, n, xn, x, &mut scratch, Some(&res))?;

        // ---- MLP: xn = rms_norm(x) * w_ffn_norm
        let nw = m.vector_of(&t(K::FfnNormW));
        let xs: &[f32] = x;
        for_each_row(par, xn, d, MIN_PARALLEL_ROWS, &|i, nr| {
            rms_norm(xs.get(i * d..(i + 1) * d).unwrap_or(&[]), nw, hp.eps, nr)
        });
        // h = silu(xn Wgate^T) * (xn Wup^T)                 gate, up: [n][ff]
        let (gate, up) = part_mut(ffn, ..2 * n * ff)?.split_at_mut(n * ff);
        let (wg, wu) = (m.matrix_of(&t(K::FfnGateW)), m.matrix_of(&t(K::FfnUpW)));
        let glu = |_: usize, g: &mut [f32], u: &mut [f32]| (k.swiglu)(g, u);
        matmul_then(
            &k,
            &wg,
            Some(&wu),
            xn,
            n,
            gate,
            up,
            &mut scratch,
            Some(&glu),
        )?;
        // x = x + h Wdown^T                                       xn: [n][d]
        let wd = m.matrix_of(&t(K::FfnDownW));
        matmul_then(&k, &wd, None, gate, n, xn, x, &mut scratch, Some(&res))?;
    }

    // logits = rms_norm(x) * w_out_norm Wout^T                 logits: [n or 1][V]
    let first = if all_logits { 0 } else { n.saturating_sub(1) };
    let rows = n - first;
    let xs = part(x, first * d..)?;
    let xn = part_mut(xn, ..rows * d)?;
    for_each_row(par, xn, d, MIN_PARALLEL_ROWS, &|i, nr| {
        rms_norm(
            xs.get(i * d..(i + 1) * d).unwrap_or(&[]),
            m.output_norm_w,
            hp.eps,
            nr,
        )
    });
    let logits = part_mut(logits, ..rows * hp.n_vocab)?;
    matmul(&k, &m.output, xn, rows, logits, &mut scratch)?;
    Ok(())
}
