//! Every runtime kernel launched once, at a transformer's shapes, for one
//! float type: what a training step of that type would compile.
//!
//! The model trains in f32 today, so its real step (prior-model's
//! `compile_check`) yields the f32 kernels. For other types (bf16 on CUDA)
//! this census launches each launcher the step uses, with the step's
//! shapes and in the step's order, so each kernel is compiled exactly as a
//! step in that type would compile it, until the model's mixed-precision
//! step exists to be recorded itself.

use cubecl::prelude::*;

use crate::buffer::Buf;
use crate::error::Result;
use crate::kernels::matmul::{self, Precision};
use crate::kernels::{
    attention, cross_entropy, elementwise, embedding, gelu, layernorm, optim, rotary,
};
use crate::kernels::{AdamW, AttnShape};

/// The shapes of one micro-batch of a GPT-NeoX-style transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CensusShape {
    pub batch: usize,
    pub seq: usize,
    pub d_model: usize,
    pub heads: usize,
    pub rotary_dims: usize,
    pub d_ff: usize,
    pub vocab: usize,
}

/// Launches every kernel of a training step for `F` on `client`: the
/// embedding, one layer forward and backward (every layer runs the same
/// kernels at the same shapes), the head and loss, and the optimizer over
/// one layer's parameters.
pub fn launch_step_kernels<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    s: CensusShape,
    precision: Precision,
) -> Result<()> {
    let n = s.batch * s.seq;
    let c = s.d_model;
    let shape = AttnShape {
        batch: s.batch,
        seq: s.seq,
        heads: s.heads,
        head_dim: c / s.heads,
        rotary_dims: s.rotary_dims,
    };
    let e = |len: usize| Buf::<R, F>::empty(client, len);
    let ids: Vec<u32> = (0..n as u32).map(|i| i % s.vocab as u32).collect();
    let ids_b = Buf::<R, u32>::upload(client, &ids);
    let table = e(s.vocab * c);
    let (h, x, y, dh, dx) = (e(n * c), e(n * c), e(n * c), e(n * c), e(n * c));
    let (gamma, beta) = (e(c), e(c));
    // Statistics and losses are f32 whatever the storage type.
    let stats = Buf::<R, f32>::empty(client, 2 * n);
    let (qkv, dqkv) = (e(3 * n * c), e(3 * n * c));
    let (u, du, gact) = (e(n * s.d_ff), e(n * s.d_ff), e(n * s.d_ff));
    // The softmax statistics are f32 whatever the storage type.
    let (lse, delta) = (
        Buf::<R, f32>::empty(client, n * s.heads),
        Buf::<R, f32>::empty(client, n * s.heads),
    );
    let logits = e(n * s.vocab);
    let losses = Buf::<R, f32>::empty(client, n);
    let tables = rotary::RotaryTables::<R>::new(client, s.seq, s.rotary_dims);
    let wide = s.d_ff.max(3 * c).max(s.vocab);
    let (w, dw, bias, dbias) = (e(wide * c), e(wide * c), e(wide), e(wide));

    // A linear layer `[n, n_in] -> [n, n_out]` forward and backward: y =
    // x wᵀ, dx = dy w, dw = dyᵀ x, bias and its gradient.
    let linear = |x: &Buf<R, F>, yb: &Buf<R, F>, dyb: &Buf<R, F>, dxb: &Buf<R, F>, n_in, n_out| {
        matmul::matmul(client, x, &w, yb, n, n_in, n_out, false, true, precision)?;
        elementwise::bias_add(client, yb, &bias.view(0, n_out))?;
        matmul::matmul(
            client, dyb, &w, dxb, n, n_out, n_in, false, false, precision,
        )?;
        matmul::matmul(client, dyb, x, &dw, n_out, n, n_in, true, false, precision)?;
        elementwise::axpy(
            client,
            &w.view(0, n_out * n_in),
            &dw.view(0, n_out * n_in),
            1.0,
        )?;
        elementwise::bias_bwd(client, dyb, &dbias.view(0, n_out), true)?;
        Result::Ok(())
    };

    embedding::embedding_fwd(client, &table, &ids_b, &h, c)?;
    layernorm::layernorm_fwd(client, &h, &gamma, &beta, &x, &stats, 1e-5)?;
    linear(&x, &qkv, &dqkv, &dx, c, 3 * c)?;
    rotary::rotary(client, &qkv, &tables, shape, false)?;
    attention::attention_fwd(client, &qkv, &y, &lse, shape)?;
    linear(&y, &x, &dh, &dx, c, c)?;
    linear(&x, &u, &du, &dx, c, s.d_ff)?;
    gelu::gelu_fwd(client, &u, &gact)?;
    gelu::gelu_bwd(client, &du, &u, &gact)?;
    linear(&gact, &x, &dh, &du, s.d_ff, c)?;
    elementwise::axpy(client, &h, &x, 1.0)?;
    matmul::matmul(
        client, &x, &table, &logits, n, c, s.vocab, false, true, precision,
    )?;
    let targets = Buf::<R, u32>::upload(client, &ids);
    cross_entropy::cross_entropy(client, &logits, &targets, &losses, s.vocab, 1.0 / n as f32)?;
    matmul::matmul(
        client, &logits, &x, &table, s.vocab, n, c, true, false, precision,
    )?;
    matmul::matmul(
        client, &logits, &table, &dh, n, s.vocab, c, false, false, precision,
    )?;
    layernorm::layernorm_bwd(client, &dh, &h, &gamma, &stats, &dx, &gamma, &beta, true)?;
    attention::attention_bwd(client, &dh, &qkv, &y, &lse, &delta, &dqkv, shape)?;
    rotary::rotary(client, &dqkv, &tables, shape, true)?;
    let grouping = embedding::EmbeddingGrouping::new(client, &Buf::upload(client, &ids));
    embedding::embedding_bwd(client, &dh, &grouping, &table, c)?;

    let norm = e(1);
    let (m, v) = (e(w.len()), e(w.len()));
    optim::grad_norm(client, &dw, &norm)?;
    optim::clip(client, &dw, &norm, 1.0, 1.0)?;
    let h_adam = AdamW {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        step: 1,
    };
    optim::adamw(client, &w, &dw, &m, &v, h_adam)?;
    elementwise::fill(client, &dw, 0.0)?;
    let master = Buf::<R, f32>::empty(client, w.len());
    elementwise::cast(client, &master, &w)?;
    elementwise::cast(client, &w, &master)?;
    Ok(())
}
