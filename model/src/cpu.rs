//! The CPU reference model: GPT-NeoX forward and backward in plain Rust on
//! the runtime's reference ops. It defines what the device model must
//! compute, and it is checked against finite differences itself.
//!
//! The same forward and backward run with faster ops behind [`CpuOps`]:
//! [`crate::native`] swaps in a GEMM and f32 attention, rotary and
//! cross-entropy, and trains on them (`--device cpu`).

use prior_runtime::kernels::AttnShape;
use prior_runtime::reference as op;

/// The ops whose cost grows fastest with the model, which a backend may
/// replace; every default is the runtime's plain reference op.
pub trait CpuOps {
    /// `a[m, k] b[k, n]` (either operand stored transposed).
    fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f32> {
        op::matmul(a, b, m, k, n, ta, tb)
    }
    fn rotary(qkv: &mut [f32], s: AttnShape, inverse: bool) {
        op::rotary(qkv, s, inverse)
    }
    /// Causal attention's output `[tokens, heads, head_dim]`.
    fn attention_fwd(qkv: &[f32], s: AttnShape) -> Vec<f32> {
        op::attention_fwd(qkv, s).0
    }
    fn attention_bwd(dout: &[f32], qkv: &[f32], s: AttnShape) -> Vec<f32> {
        op::attention_bwd(dout, qkv, s)
    }
    /// GPT-NeoX's exact (erf) GELU.
    fn gelu_fwd(x: &[f32]) -> Vec<f32> {
        op::gelu_fwd(x)
    }
    fn gelu_bwd(dy: &[f32], x: &[f32]) -> Vec<f32> {
        op::gelu_bwd(dy, x)
    }
    /// Mean cross-entropy and its gradient w.r.t. the logits.
    fn cross_entropy(logits: &[f32], targets: &[u32], vocab: usize) -> (f32, Vec<f32>) {
        op::cross_entropy(logits, targets, vocab)
    }
}

/// The runtime's reference ops, unchanged: what every kernel is checked
/// against.
pub struct Reference;

impl CpuOps for Reference {}

use crate::config::ModelConfig;
use crate::params::{layer_name, ParamLayout};

fn slice<'a>(flat: &'a [f32], layout: &ParamLayout, name: &str) -> &'a [f32] {
    let t = layout.get(name);
    &flat[t.offset..t.offset + t.len()]
}

/// y[rows, out] = x[rows, in] W^T + b, with W stored [out, in] (HF layout).
fn linear<O: CpuOps>(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    rows: usize,
    n_in: usize,
    n_out: usize,
) -> Vec<f32> {
    let y = O::matmul(x, w, rows, n_in, n_out, false, true);
    match b {
        Some(b) => op::bias_add(&y, b),
        None => y,
    }
}

struct LayerActs {
    h: Vec<f32>,
    a_in: Vec<f32>,
    st1: Vec<f32>,
    qkv: Vec<f32>,
    y: Vec<f32>,
    m_in: Vec<f32>,
    st2: Vec<f32>,
    u: Vec<f32>,
    gact: Vec<f32>,
}

/// Everything the forward keeps for the backward.
pub struct Forward {
    pub loss: f32,
    pub logits: Vec<f32>,
    dlogits: Vec<f32>,
    layers: Vec<LayerActs>,
    h_last: Vec<f32>,
    hf: Vec<f32>,
    stf: Vec<f32>,
}

pub fn attn_shape(cfg: &ModelConfig, batch: usize, seq: usize) -> AttnShape {
    AttnShape {
        batch,
        seq,
        heads: cfg.n_head,
        head_dim: cfg.head_dim(),
        rotary_dims: cfg.rotary_dims(),
    }
}

/// Forward pass over `ids` (`batch x seq`), mean cross-entropy against `targets`.
pub fn forward(
    cfg: &ModelConfig,
    layout: &ParamLayout,
    p: &[f32],
    ids: &[u32],
    targets: &[u32],
    batch: usize,
    seq: usize,
) -> Forward {
    forward_with::<Reference>(cfg, layout, p, ids, targets, batch, seq)
}

/// [`forward`] on the ops of `O`; with `targets` empty, the logits alone
/// (the loss is NaN and there is no backward).
pub fn forward_with<O: CpuOps>(
    cfg: &ModelConfig,
    layout: &ParamLayout,
    p: &[f32],
    ids: &[u32],
    targets: &[u32],
    batch: usize,
    seq: usize,
) -> Forward {
    let (c, v, n) = (cfg.d_model, cfg.vocab_size, batch * seq);
    let s = attn_shape(cfg, batch, seq);
    let eps = cfg.layer_norm_eps;
    let mut h = op::embedding_fwd(slice(p, layout, "gpt_neox.embed_in.weight"), ids, c);
    let mut layers = Vec::with_capacity(cfg.n_layer);
    for l in 0..cfg.n_layer {
        let w = |what: &str| slice(p, layout, &layer_name(l, what));
        let (a_in, st1) = op::layernorm_fwd(
            &h,
            w("input_layernorm.weight"),
            w("input_layernorm.bias"),
            c,
            eps,
        );
        let mut qkv = linear::<O>(
            &a_in,
            w("attention.query_key_value.weight"),
            Some(w("attention.query_key_value.bias")),
            n,
            c,
            3 * c,
        );
        O::rotary(&mut qkv, s, false);
        let y = O::attention_fwd(&qkv, s);
        let a_out = linear::<O>(
            &y,
            w("attention.dense.weight"),
            Some(w("attention.dense.bias")),
            n,
            c,
            c,
        );
        let (m_in, st2) = op::layernorm_fwd(
            &h,
            w("post_attention_layernorm.weight"),
            w("post_attention_layernorm.bias"),
            c,
            eps,
        );
        let u = linear::<O>(
            &m_in,
            w("mlp.dense_h_to_4h.weight"),
            Some(w("mlp.dense_h_to_4h.bias")),
            n,
            c,
            4 * c,
        );
        let gact = O::gelu_fwd(&u);
        let m = linear::<O>(
            &gact,
            w("mlp.dense_4h_to_h.weight"),
            Some(w("mlp.dense_4h_to_h.bias")),
            n,
            4 * c,
            c,
        );
        let next: Vec<f32> = (0..n * c).map(|i| h[i] + a_out[i] + m[i]).collect();
        layers.push(LayerActs {
            h: std::mem::replace(&mut h, next),
            a_in,
            st1,
            qkv,
            y,
            m_in,
            st2,
            u,
            gact,
        });
    }
    let (hf, stf) = op::layernorm_fwd(
        &h,
        slice(p, layout, "gpt_neox.final_layer_norm.weight"),
        slice(p, layout, "gpt_neox.final_layer_norm.bias"),
        c,
        eps,
    );
    let logits = linear::<O>(&hf, slice(p, layout, "embed_out.weight"), None, n, c, v);
    // No targets: logits only (scoring), no loss and nothing to backprop.
    let (loss, dlogits) = match targets.is_empty() {
        true => (f32::NAN, Vec::new()),
        false => O::cross_entropy(&logits, targets, v),
    };
    Forward {
        loss,
        logits,
        dlogits,
        layers,
        h_last: h,
        hf,
        stf,
    }
}

/// Gradient of the mean loss w.r.t. every parameter, in the flat layout.
pub fn backward(
    cfg: &ModelConfig,
    layout: &ParamLayout,
    p: &[f32],
    ids: &[u32],
    fwd: &Forward,
    batch: usize,
    seq: usize,
) -> Vec<f32> {
    backward_with::<Reference>(cfg, layout, p, ids, fwd, batch, seq)
}

/// [`backward`] on the ops of `O`.
pub fn backward_with<O: CpuOps>(
    cfg: &ModelConfig,
    layout: &ParamLayout,
    p: &[f32],
    ids: &[u32],
    fwd: &Forward,
    batch: usize,
    seq: usize,
) -> Vec<f32> {
    let (c, v, n) = (cfg.d_model, cfg.vocab_size, batch * seq);
    let s = attn_shape(cfg, batch, seq);
    let mut g = vec![0f32; layout.total];
    let mut put = |name: &str, val: &[f32]| {
        let t = layout.get(name);
        for (dst, src) in g[t.offset..t.offset + t.len()].iter_mut().zip(val) {
            *dst += src;
        }
    };
    put(
        "embed_out.weight",
        &O::matmul(&fwd.dlogits, &fwd.hf, v, n, c, true, false),
    );
    let dhf = O::matmul(
        &fwd.dlogits,
        slice(p, layout, "embed_out.weight"),
        n,
        v,
        c,
        false,
        false,
    );
    let (mut dh, dgf, dbf) = op::layernorm_bwd(
        &dhf,
        &fwd.h_last,
        slice(p, layout, "gpt_neox.final_layer_norm.weight"),
        &fwd.stf,
        c,
    );
    put("gpt_neox.final_layer_norm.weight", &dgf);
    put("gpt_neox.final_layer_norm.bias", &dbf);
    for l in (0..cfg.n_layer).rev() {
        let a = &fwd.layers[l];
        let w = |what: &str| slice(p, layout, &layer_name(l, what));
        let name = |what: &str| layer_name(l, what);
        // MLP branch.
        put(
            &name("mlp.dense_4h_to_h.weight"),
            &O::matmul(&dh, &a.gact, c, n, 4 * c, true, false),
        );
        put(&name("mlp.dense_4h_to_h.bias"), &op::bias_bwd(&dh, c));
        let dgact = O::matmul(
            &dh,
            w("mlp.dense_4h_to_h.weight"),
            n,
            c,
            4 * c,
            false,
            false,
        );
        let du = O::gelu_bwd(&dgact, &a.u);
        put(
            &name("mlp.dense_h_to_4h.weight"),
            &O::matmul(&du, &a.m_in, 4 * c, n, c, true, false),
        );
        put(&name("mlp.dense_h_to_4h.bias"), &op::bias_bwd(&du, 4 * c));
        let dm_in = O::matmul(
            &du,
            w("mlp.dense_h_to_4h.weight"),
            n,
            4 * c,
            c,
            false,
            false,
        );
        let (dh2, dg2, db2) = op::layernorm_bwd(
            &dm_in,
            &a.h,
            w("post_attention_layernorm.weight"),
            &a.st2,
            c,
        );
        put(&name("post_attention_layernorm.weight"), &dg2);
        put(&name("post_attention_layernorm.bias"), &db2);
        // Attention branch.
        put(
            &name("attention.dense.weight"),
            &O::matmul(&dh, &a.y, c, n, c, true, false),
        );
        put(&name("attention.dense.bias"), &op::bias_bwd(&dh, c));
        let dy = O::matmul(&dh, w("attention.dense.weight"), n, c, c, false, false);
        let mut dqkv = O::attention_bwd(&dy, &a.qkv, s);
        O::rotary(&mut dqkv, s, true);
        put(
            &name("attention.query_key_value.weight"),
            &O::matmul(&dqkv, &a.a_in, 3 * c, n, c, true, false),
        );
        put(
            &name("attention.query_key_value.bias"),
            &op::bias_bwd(&dqkv, 3 * c),
        );
        let da_in = O::matmul(
            &dqkv,
            w("attention.query_key_value.weight"),
            n,
            3 * c,
            c,
            false,
            false,
        );
        let (dh1, dg1, db1) =
            op::layernorm_bwd(&da_in, &a.h, w("input_layernorm.weight"), &a.st1, c);
        put(&name("input_layernorm.weight"), &dg1);
        put(&name("input_layernorm.bias"), &db1);
        for i in 0..n * c {
            dh[i] += dh1[i] + dh2[i];
        }
    }
    put(
        "gpt_neox.embed_in.weight",
        &op::embedding_bwd(&dh, ids, v, c),
    );
    g
}
