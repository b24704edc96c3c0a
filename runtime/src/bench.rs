//! `prior bench kernels`: time per kernel at realistic sizes, with the
//! achieved FLOP/s or bytes/s, so a new device's weak spots show.
//!
//! Timing is wall clock around a device sync, median of several runs after
//! a warm-up, which is what a training step sees.

use std::time::Instant;

use cubecl::prelude::*;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::buffer::{sync, Buf};
use crate::error::Result;
use crate::kernels::{
    attention, attention_naive, cross_entropy, embedding, gelu, layernorm, matmul, optim,
};
use crate::kernels::{AdamW, AttnShape};

/// Sizes of one transformer layer's work.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BenchShape {
    pub name: &'static str,
    pub batch: usize,
    pub seq: usize,
    pub d_model: usize,
    pub heads: usize,
    pub vocab: usize,
}

pub const SHAPES: [BenchShape; 3] = [
    BenchShape {
        name: "small",
        batch: 2,
        seq: 128,
        d_model: 128,
        heads: 4,
        vocab: 4096,
    },
    BenchShape {
        name: "pythia-160m",
        batch: 4,
        seq: 2048,
        d_model: 768,
        heads: 12,
        vocab: 50304,
    },
    BenchShape {
        name: "pythia-1b",
        batch: 2,
        seq: 2048,
        d_model: 2048,
        heads: 8,
        vocab: 50304,
    },
];

#[derive(Debug, Clone, Serialize)]
pub struct KernelTiming {
    pub name: String,
    pub what: String,
    pub ms: f64,
    /// Achieved rate: TFLOP/s for compute-bound kernels, GB/s otherwise.
    pub rate: f64,
    pub unit: &'static str,
    /// The kernel this one replaced, timed in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub name: String,
    pub ms: f64,
    /// `baseline ms / this kernel's ms`.
    pub speedup: f64,
}

/// Sequence lengths at which FlashAttention is timed beside the naive
/// kernels (head_dim 64, 4 heads).
pub const COMPARE_SEQS: [usize; 2] = [512, 1024];

/// FLOPs of causal attention's forward, each unmasked score counted once:
/// `Q Kᵀ` and `P V`, 2 FLOPs per multiply-add, over `T (T + 1) / 2` pairs.
/// The backward is 2.5x this (five products to the forward's two).
pub fn attention_flops(s: AttnShape) -> f64 {
    let pairs = (s.seq * (s.seq + 1) / 2) as f64;
    4.0 * (s.batch * s.heads) as f64 * pairs * s.head_dim as f64
}

/// `flops` done in `ms` as TFLOP/s, or GFLOP/s below 0.1 TFLOP/s (a
/// software device), so that the figure keeps its digits.
fn compute_rate(flops: f64, ms: f64) -> (f64, &'static str) {
    let tflops = flops / ms / 1e9;
    if tflops < 0.1 {
        (tflops * 1e3, "GFLOP/s")
    } else {
        (tflops, "TFLOP/s")
    }
}

/// Median forward and backward times of attention at `s`, FlashAttention
/// or (`naive`) the first kernels.
fn time_attention<R: Runtime>(
    client: &ComputeClient<R>,
    s: AttnShape,
    reps: usize,
    naive: bool,
) -> Result<(f64, f64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let n = s.tokens() * s.heads * s.head_dim;
    let qkv: Vec<f32> = (0..3 * n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let qkv = Buf::<R, f32>::upload_named(client, &qkv, "qkv [batch*seq, heads, 3, head_dim] f32")?;
    let ao =
        Buf::<R, f32>::empty_named(client, n, "attention out [batch*seq, heads, head_dim] f32")?;
    let lse = Buf::<R, f32>::empty(client, s.batch * s.heads * s.seq);
    let delta = Buf::<R, f32>::empty(client, s.batch * s.heads * s.seq);
    let dqkv =
        Buf::<R, f32>::empty_named(client, 3 * n, "dqkv [batch*seq, heads, 3, head_dim] f32")?;
    let fwd = time(client, reps, || {
        if naive {
            attention_naive::attention_fwd(client, &qkv, &ao, &lse, s)?;
        } else {
            attention::attention_fwd(client, &qkv, &ao, &lse, s)?;
        }
        Ok(())
    })?;
    // d(out) = out: any values serve for timing.
    let bwd = time(client, reps, || {
        if naive {
            attention_naive::attention_bwd(client, &ao, &qkv, &ao, &lse, &delta, &dqkv, s)?;
        } else {
            attention::attention_bwd(client, &ao, &qkv, &ao, &lse, &delta, &dqkv, s)?;
        }
        Ok(())
    })?;
    Ok((fwd, bwd))
}

fn time<R: Runtime>(
    client: &ComputeClient<R>,
    reps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    f()?;
    sync(client)?;
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        sync(client)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok(ms[reps / 2])
}

pub fn bench_kernels<R: Runtime>(
    client: &ComputeClient<R>,
    s: BenchShape,
    reps: usize,
) -> Result<Vec<KernelTiming>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut rand =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let n = s.batch * s.seq;
    let c = s.d_model;
    // What training uses on this device (TF32 on CUDA).
    let precision = crate::kernels::matmul::Precision::default_for(client);
    let mut out = Vec::new();
    let mut push = |name: &str, what: String, ms: f64, amount: f64, compute: bool| {
        let (rate, unit) = if compute {
            compute_rate(amount, ms)
        } else {
            (amount / ms / 1e6, "GB/s")
        };
        out.push(KernelTiming {
            name: name.into(),
            what,
            ms,
            rate,
            unit,
            baseline: None,
        });
    };

    let x = Buf::<R, f32>::upload_named(client, &rand(n * c), "x [batch*seq, d_model] f32")?;
    let w = Buf::<R, f32>::upload_named(client, &rand(4 * c * c), "w [4*d_model, d_model] f32")?;
    let y4 = Buf::<R, f32>::empty_named(client, n * 4 * c, "y4 [batch*seq, 4*d_model] f32")?;
    let ms = time(client, reps, || {
        matmul::matmul(client, &x, &w, &y4, n, c, 4 * c, false, true, precision).map(|_| ())
    })?;
    push(
        "matmul_fwd",
        format!("[{n}, {c}] x [{c}, {}]", 4 * c),
        ms,
        2.0 * (n * c * 4 * c) as f64,
        true,
    );
    let dx = Buf::<R, f32>::empty_named(client, n * c, "dx [batch*seq, d_model] f32")?;
    let ms = time(client, reps, || {
        matmul::matmul(client, &y4, &w, &dx, n, 4 * c, c, false, false, precision).map(|_| ())
    })?;
    push(
        "matmul_bwd_dx",
        format!("[{n}, {}] x [{}, {c}]", 4 * c, 4 * c),
        ms,
        2.0 * (n * c * 4 * c) as f64,
        true,
    );
    let dw = Buf::<R, f32>::empty(client, 4 * c * c);
    let ms = time(client, reps, || {
        matmul::matmul(client, &y4, &x, &dw, 4 * c, n, c, true, false, precision).map(|_| ())
    })?;
    push(
        "matmul_bwd_dw",
        format!("[{}, {n}] x [{n}, {c}]", 4 * c),
        ms,
        2.0 * (n * c * 4 * c) as f64,
        true,
    );

    let g = Buf::<R, f32>::upload(client, &rand(c));
    let b = Buf::<R, f32>::upload(client, &rand(c));
    let y = Buf::<R, f32>::empty_named(client, n * c, "y [batch*seq, d_model] f32")?;
    let stats = Buf::<R, f32>::empty(client, 2 * n);
    let ms = time(client, reps, || {
        layernorm::layernorm_fwd(client, &x, &g, &b, &y, &stats, 1e-5)?;
        Ok(())
    })?;
    push(
        "layernorm_fwd",
        format!("[{n}, {c}]"),
        ms,
        (2 * n * c * 4) as f64,
        false,
    );
    let ms = time(client, reps, || {
        layernorm::layernorm_bwd(client, &y, &x, &g, &stats, &dx, &g, &b, false)?;
        Ok(())
    })?;
    push(
        "layernorm_bwd",
        format!("[{n}, {c}]"),
        ms,
        (3 * n * c * 4) as f64,
        false,
    );

    let h4 = Buf::<R, f32>::empty_named(client, n * 4 * c, "h4 [batch*seq, 4*d_model] f32")?;
    let ms = time(client, reps, || {
        gelu::gelu_fwd(client, &y4, &h4)?;
        Ok(())
    })?;
    push(
        "gelu_fwd",
        format!("{} elements", n * 4 * c),
        ms,
        (2 * n * 4 * c * 4) as f64,
        false,
    );

    let shape = AttnShape {
        batch: s.batch,
        seq: s.seq,
        heads: s.heads,
        head_dim: c / s.heads,
        rotary_dims: c / s.heads / 4,
    };
    let what = |sh: AttnShape| {
        format!(
            "batch {}, seq {}, heads {}, head_dim {}",
            sh.batch, sh.seq, sh.heads, sh.head_dim
        )
    };
    let (fwd, bwd) = time_attention(client, shape, reps, false)?;
    push(
        "attention_fwd",
        what(shape),
        fwd,
        attention_flops(shape),
        true,
    );
    push(
        "attention_bwd",
        what(shape),
        bwd,
        2.5 * attention_flops(shape),
        true,
    );
    let rows = n.min(4096);
    let logits =
        Buf::<R, f32>::upload_named(client, &rand(rows * s.vocab), "logits [rows, vocab] f32")?;
    let targets: Vec<u32> = (0..rows as u32).map(|i| i * 7 % s.vocab as u32).collect();
    let t = Buf::<R, u32>::upload(client, &targets);
    let losses = Buf::<R, f32>::empty(client, rows);
    let ms = time(client, reps, || {
        cross_entropy::cross_entropy(client, &logits, &t, &losses, s.vocab, 1.0 / rows as f32)?;
        Ok(())
    })?;
    push(
        "cross_entropy",
        format!("{rows} rows, vocab {}", s.vocab),
        ms,
        (3 * rows * s.vocab * 4) as f64,
        false,
    );

    let table = Buf::<R, f32>::upload_named(
        client,
        &rand(s.vocab.min(8192) * c),
        "embedding table [vocab, d_model] f32",
    )?;
    let ids: Vec<u32> = (0..n as u32)
        .map(|i| i * 13 % s.vocab.min(8192) as u32)
        .collect();
    let idb = Buf::<R, u32>::upload(client, &ids);
    let ms = time(client, reps, || {
        embedding::embedding_fwd(client, &table, &idb, &y, c)?;
        Ok(())
    })?;
    push(
        "embedding_fwd",
        format!("{n} tokens x {c}"),
        ms,
        (2 * n * c * 4) as f64,
        false,
    );

    let params = (12 * c * c).min(64 << 20);
    let p = Buf::<R, f32>::upload_named(client, &rand(params), "parameters f32")?;
    let gr = Buf::<R, f32>::upload_named(client, &rand(params), "gradients f32")?;
    let m = Buf::<R, f32>::upload_named(client, &vec![0.0; params], "AdamW m f32")?;
    let v = Buf::<R, f32>::upload_named(client, &vec![0.0; params], "AdamW v f32")?;
    let h = AdamW {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        step: 1,
    };
    let ms = time(client, reps, || {
        optim::adamw(client, &p, &gr, &m, &v, h)?;
        Ok(())
    })?;
    push(
        "adamw",
        format!("{params} parameters (one layer)"),
        ms,
        (7 * params * 4) as f64,
        false,
    );
    let norm = Buf::<R, f32>::empty(client, 1);
    let ms = time(client, reps, || {
        optim::grad_norm(client, &gr, &norm)?;
        Ok(())
    })?;
    push(
        "grad_norm",
        format!("{params} elements"),
        ms,
        (params * 4) as f64,
        false,
    );
    // FlashAttention beside the first kernels, at the sizes they were
    // measured at, in the same run.
    for seq in COMPARE_SEQS {
        let sh = AttnShape {
            batch: 1,
            seq,
            heads: 4,
            head_dim: 64,
            rotary_dims: 16,
        };
        let (fwd, bwd) = time_attention(client, sh, reps, false)?;
        let (old_fwd, old_bwd) = time_attention(client, sh, reps, true)?;
        for (name, ms, old, flops) in [
            ("attention_fwd", fwd, old_fwd, attention_flops(sh)),
            ("attention_bwd", bwd, old_bwd, 2.5 * attention_flops(sh)),
        ] {
            out.push(KernelTiming {
                name: name.into(),
                what: what(sh),
                ms,
                rate: compute_rate(flops, ms).0,
                unit: compute_rate(flops, ms).1,
                baseline: Some(Baseline {
                    name: format!("{name} (naive)"),
                    ms: old,
                    speedup: old / ms,
                }),
            });
        }
    }
    Ok(out)
}
