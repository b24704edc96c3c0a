//! `prior runtime check`: every kernel, forward and backward, on fresh
//! random inputs (several shapes, sizes off the tile sizes) against the CPU
//! reference. The same checks run in `cargo test` on wgpu.
//!
//! Error measure: the largest absolute difference over a tensor divided by
//! the largest magnitude in the reference tensor (`max_rel_err`), which is
//! stable where single elements are near zero. Any NaN or infinity fails.

use cubecl::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::buffer::{sync, Buf};
use crate::kernels::{
    attention, cross_entropy, elementwise, embedding, layernorm, matmul, optim, rotary,
};
use crate::reference::{self as cpu, AdamW, AttnShape};

/// Tolerance on `max_rel_err` for f32 kernels.
pub const F32_TOLERANCE: f64 = 2e-4;

#[derive(Debug, Clone, Serialize)]
pub struct KernelCheck {
    pub name: String,
    pub ok: bool,
    pub max_rel_err: f64,
    /// Shapes the kernel ran at.
    pub cases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Largest |a - b| over the largest |b|; infinite if `a` holds NaN/inf or
/// the lengths differ.
pub fn rel_err(device: &[f32], reference: &[f32]) -> f64 {
    if device.len() != reference.len() || device.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let scale = reference
        .iter()
        .fold(0f64, |m, &x| m.max(x.abs() as f64))
        .max(1e-30);
    device
        .iter()
        .zip(reference)
        .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()))
        / scale
}

struct Checker<'a, R: Runtime> {
    client: &'a ComputeClient<R>,
    rng: ChaCha8Rng,
    results: Vec<KernelCheck>,
}

impl<R: Runtime> Checker<'_, R> {
    fn rand(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| self.rng.random_range(-1.0f32..1.0))
            .collect()
    }

    fn up(&self, v: &[f32]) -> Buf<R, f32> {
        Buf::upload(self.client, v)
    }

    fn down(&self, b: &Buf<R, f32>) -> Result<Vec<f32>, String> {
        b.download(self.client).map_err(|e| e.to_string())
    }

    /// Records `errs` (one per compared tensor, per case) under `name`.
    fn record(&mut self, name: &str, case: String, result: Result<Vec<f64>, String>) {
        let entry = match self.results.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.results.push(KernelCheck {
                    name: name.into(),
                    ok: true,
                    max_rel_err: 0.0,
                    cases: vec![],
                    error: None,
                });
                self.results.len() - 1
            }
        };
        let r = &mut self.results[entry];
        r.cases.push(case);
        match result {
            Ok(errs) => {
                for e in errs {
                    r.max_rel_err = r.max_rel_err.max(e);
                }
                r.ok &= r.max_rel_err <= F32_TOLERANCE;
            }
            Err(e) => {
                r.ok = false;
                r.max_rel_err = f64::INFINITY;
                r.error.get_or_insert(e);
            }
        }
    }
}

/// Runs every check with inputs drawn from `seed`.
pub fn run_checks<R: Runtime>(client: &ComputeClient<R>, seed: u64) -> Vec<KernelCheck> {
    let mut c = Checker {
        client,
        rng: ChaCha8Rng::seed_from_u64(seed),
        results: Vec::new(),
    };
    check_embedding(&mut c);
    check_layernorm(&mut c);
    check_matmul(&mut c);
    check_elementwise(&mut c);
    check_rotary(&mut c);
    check_attention(&mut c);
    check_cross_entropy(&mut c);
    check_optim(&mut c);
    check_casts(&mut c);
    c.results
}

fn check_embedding<R: Runtime>(c: &mut Checker<R>) {
    for (vocab, dim, n) in [(97usize, 40usize, 61usize), (300, 64, 256)] {
        let table = c.rand(vocab * dim);
        // Few distinct ids, so the backward sums many positions per row.
        let ids: Vec<u32> = (0..n)
            .map(|_| c.rng.random_range(0..vocab.min(23) as u32))
            .collect();
        let dout = c.rand(n * dim);
        let case = format!("vocab {vocab}, dim {dim}, {n} tokens");
        let client = c.client;
        let fwd = (|| {
            let (t, i) = (c.up(&table), Buf::<R, u32>::upload(client, &ids));
            let out = Buf::<R, f32>::empty(client, n * dim);
            embedding::embedding_fwd(client, &t, &i, &out, dim);
            Ok(vec![rel_err(
                &c.down(&out)?,
                &cpu::embedding_fwd(&table, &ids, dim),
            )])
        })();
        c.record("embedding_fwd", case.clone(), fwd);
        let bwd = (|| {
            let d = c.up(&dout);
            let dt = c.up(&vec![0.0; vocab * dim]);
            let g = embedding::EmbeddingGrouping::new(client, &ids);
            embedding::embedding_bwd(client, &d, &g, &dt, dim);
            Ok(vec![rel_err(
                &c.down(&dt)?,
                &cpu::embedding_bwd(&dout, &ids, vocab, dim),
            )])
        })();
        c.record("embedding_bwd", case, bwd);
    }
}

fn check_layernorm<R: Runtime>(c: &mut Checker<R>) {
    for (rows, cols) in [(37usize, 200usize), (5, 64), (3, 1000)] {
        let x: Vec<f32> = c.rand(rows * cols).iter().map(|v| v * 3.0 + 0.5).collect();
        let gamma = c.rand(cols);
        let beta = c.rand(cols);
        let dy = c.rand(rows * cols);
        let case = format!("{rows} x {cols}");
        let client = c.client;
        let (y_ref, stats_ref) = cpu::layernorm_fwd(&x, &gamma, &beta, cols, 1e-5);
        let (xb, gb, bb) = (c.up(&x), c.up(&gamma), c.up(&beta));
        let y = Buf::<R, f32>::empty(client, rows * cols);
        let stats = Buf::<R, f32>::empty(client, rows * 2);
        layernorm::layernorm_fwd(client, &xb, &gb, &bb, &y, &stats, 1e-5);
        let fwd = (|| {
            Ok(vec![
                rel_err(&c.down(&y)?, &y_ref),
                rel_err(&c.down(&stats)?, &stats_ref),
            ])
        })();
        c.record("layernorm_fwd", case.clone(), fwd);
        let bwd = (|| {
            let (dx_ref, dg_ref, db_ref) = cpu::layernorm_bwd(&dy, &x, &gamma, &stats_ref, cols);
            let dyb = c.up(&dy);
            let dx = Buf::<R, f32>::empty(client, rows * cols);
            let dg = Buf::<R, f32>::empty(client, cols);
            let db = Buf::<R, f32>::empty(client, cols);
            layernorm::layernorm_bwd(client, &dyb, &xb, &gb, &stats, &dx, &dg, &db, false);
            Ok(vec![
                rel_err(&c.down(&dx)?, &dx_ref),
                rel_err(&c.down(&dg)?, &dg_ref),
                rel_err(&c.down(&db)?, &db_ref),
            ])
        })();
        c.record("layernorm_bwd", case.clone(), bwd);
        // The fused residual form: sum = x + r, y = LayerNorm(sum).
        let r = c.rand(rows * cols);
        let sum_ref: Vec<f32> = x.iter().zip(&r).map(|(a, b)| a + b).collect();
        let (y2_ref, stats2_ref) = cpu::layernorm_fwd(&sum_ref, &gamma, &beta, cols, 1e-5);
        let sum = Buf::<R, f32>::empty(client, rows * cols);
        let y2 = Buf::<R, f32>::empty(client, rows * cols);
        let stats2 = Buf::<R, f32>::empty(client, rows * 2);
        layernorm::residual_layernorm_fwd(
            client,
            &xb,
            &c.up(&r),
            &gb,
            &bb,
            &sum,
            &y2,
            &stats2,
            1e-5,
        );
        let res = (|| {
            Ok(vec![
                rel_err(&c.down(&sum)?, &sum_ref),
                rel_err(&c.down(&y2)?, &y2_ref),
                rel_err(&c.down(&stats2)?, &stats2_ref),
            ])
        })();
        c.record("residual_layernorm_fwd", case, res);
    }
}

fn check_matmul<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    for (m, k, n) in [(33usize, 47usize, 29usize), (64, 128, 96), (1, 70, 130)] {
        // Forward of a linear layer: y = x W^T (W stored [n, k]), and the
        // plain product, both layouts of each operand.
        let mut errs = Vec::new();
        let mut failure = None;
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = c.rand(m * k);
            let b = c.rand(k * n);
            let out = Buf::<R, f32>::empty(client, m * n);
            match matmul::matmul(client, &c.up(&a), &c.up(&b), &out, m, k, n, ta, tb) {
                Ok(()) => match c.down(&out) {
                    Ok(v) => errs.push(rel_err(&v, &cpu::matmul(&a, &b, m, k, n, ta, tb))),
                    Err(e) => failure = Some(e),
                },
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let case = format!("m {m}, k {k}, n {n}, all transposes");
        c.record("matmul_fwd", case, failure.map_or(Ok(errs), Err));
        // Backward of y = x W^T: dx = dy W, dW = dy^T x.
        let x = c.rand(m * k);
        let w = c.rand(n * k);
        let dy = c.rand(m * n);
        let bwd = (|| {
            let (xb, wb, dyb) = (c.up(&x), c.up(&w), c.up(&dy));
            let dx = Buf::<R, f32>::empty(client, m * k);
            let dw = Buf::<R, f32>::empty(client, n * k);
            matmul::matmul(client, &dyb, &wb, &dx, m, n, k, false, false)
                .map_err(|e| e.to_string())?;
            matmul::matmul(client, &dyb, &xb, &dw, n, m, k, true, false)
                .map_err(|e| e.to_string())?;
            Ok(vec![
                rel_err(&c.down(&dx)?, &cpu::matmul(&dy, &w, m, n, k, false, false)),
                rel_err(&c.down(&dw)?, &cpu::matmul(&dy, &x, n, m, k, true, false)),
            ])
        })();
        c.record("matmul_bwd", format!("linear {k} -> {n}, {m} rows"), bwd);
    }
}

fn check_elementwise<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    for n in [1000usize, 4097] {
        let x: Vec<f32> = c.rand(n).iter().map(|v| v * 4.0).collect();
        let dy = c.rand(n);
        let xb = c.up(&x);
        let y = Buf::<R, f32>::empty(client, n);
        elementwise::gelu_fwd(client, &xb, &y);
        let fwd = (|| Ok(vec![rel_err(&c.down(&y)?, &cpu::gelu_fwd(&x))]))();
        c.record("gelu_fwd", format!("{n} elements"), fwd);
        let dx = Buf::<R, f32>::empty(client, n);
        elementwise::gelu_bwd(client, &c.up(&dy), &xb, &dx);
        let bwd = (|| Ok(vec![rel_err(&c.down(&dx)?, &cpu::gelu_bwd(&dy, &x))]))();
        c.record("gelu_bwd", format!("{n} elements"), bwd);
    }
    for (rows, cols) in [(13usize, 37usize), (300, 64)] {
        let x = c.rand(rows * cols);
        let bias = c.rand(cols);
        let xb = c.up(&x);
        elementwise::bias_add(client, &xb, &c.up(&bias));
        let fwd = (|| Ok(vec![rel_err(&c.down(&xb)?, &cpu::bias_add(&x, &bias))]))();
        c.record("bias_fwd", format!("{rows} x {cols}"), fwd);
        let db = Buf::<R, f32>::empty(client, cols);
        elementwise::bias_bwd(client, &c.up(&x), &db, false);
        let bwd = (|| Ok(vec![rel_err(&c.down(&db)?, &cpu::bias_bwd(&x, cols))]))();
        c.record("bias_bwd", format!("{rows} x {cols}"), bwd);
    }
}

fn attn_shapes() -> [AttnShape; 2] {
    [
        AttnShape {
            batch: 2,
            seq: 19,
            heads: 3,
            head_dim: 16,
            rotary_dims: 4,
        },
        AttnShape {
            batch: 1,
            seq: 70,
            heads: 2,
            head_dim: 32,
            rotary_dims: 8,
        },
    ]
}

fn check_rotary<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    for s in attn_shapes() {
        let qkv = c.rand(s.tokens() * s.heads * 3 * s.head_dim);
        let dy = c.rand(qkv.len());
        let case = format!(
            "batch {}, seq {}, heads {}, head_dim {}, rotary {}",
            s.batch, s.seq, s.heads, s.head_dim, s.rotary_dims
        );
        let tables = rotary::RotaryTables::<R, f32>::new(client, s.seq, s.rotary_dims);
        let b = c.up(&qkv);
        rotary::rotary(client, &b, &tables, s, false);
        let mut want = qkv.clone();
        cpu::rotary(&mut want, s, false);
        let fwd = (|| Ok(vec![rel_err(&c.down(&b)?, &want)]))();
        c.record("rotary_fwd", case.clone(), fwd);
        let d = c.up(&dy);
        rotary::rotary(client, &d, &tables, s, true);
        let mut want = dy.clone();
        cpu::rotary(&mut want, s, true);
        let bwd = (|| Ok(vec![rel_err(&c.down(&d)?, &want)]))();
        c.record("rotary_bwd", case, bwd);
    }
}

fn check_attention<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    for s in attn_shapes() {
        let qkv: Vec<f32> = c
            .rand(s.tokens() * s.heads * 3 * s.head_dim)
            .iter()
            .map(|v| v * 2.0)
            .collect();
        let dout = c.rand(s.tokens() * s.heads * s.head_dim);
        let case = format!(
            "batch {}, seq {}, heads {}, head_dim {}",
            s.batch, s.seq, s.heads, s.head_dim
        );
        let (out_ref, lse_ref) = cpu::attention_fwd(&qkv, s);
        let qb = c.up(&qkv);
        let out = Buf::<R, f32>::empty(client, out_ref.len());
        let lse = Buf::<R, f32>::empty(client, lse_ref.len());
        attention::attention_fwd(client, &qb, &out, &lse, s);
        let fwd = (|| {
            Ok(vec![
                rel_err(&c.down(&out)?, &out_ref),
                rel_err(&c.down(&lse)?, &lse_ref),
            ])
        })();
        c.record("attention_fwd", case.clone(), fwd);
        let delta = Buf::<R, f32>::empty(client, lse_ref.len());
        let dqkv = Buf::<R, f32>::empty(client, qkv.len());
        attention::attention_bwd(client, &c.up(&dout), &qb, &out, &lse, &delta, &dqkv, s);
        let bwd = (|| {
            Ok(vec![rel_err(
                &c.down(&dqkv)?,
                &cpu::attention_bwd(&dout, &qkv, s),
            )])
        })();
        c.record("attention_bwd", case, bwd);
    }
}

fn check_cross_entropy<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    for (rows, vocab) in [(23usize, 389usize), (4, 1000), (64, 130)] {
        let logits: Vec<f32> = c.rand(rows * vocab).iter().map(|v| v * 5.0).collect();
        let targets: Vec<u32> = (0..rows)
            .map(|_| c.rng.random_range(0..vocab as u32))
            .collect();
        let (loss_ref, grad_ref) = cpu::cross_entropy(&logits, &targets, vocab);
        let lb = c.up(&logits);
        let losses = Buf::<R, f32>::empty(client, rows);
        cross_entropy::cross_entropy(
            client,
            &lb,
            &Buf::<R, u32>::upload(client, &targets),
            &losses,
            vocab,
            1.0 / rows as f32,
        );
        let case = format!("{rows} rows, vocab {vocab}");
        let fwd = (|| {
            let l = c.down(&losses)?;
            let mean = l.iter().map(|&v| v as f64).sum::<f64>() / rows as f64;
            Ok(vec![rel_err(&[mean as f32], &[loss_ref])])
        })();
        c.record("cross_entropy_fwd", case.clone(), fwd);
        let bwd = (|| Ok(vec![rel_err(&c.down(&lb)?, &grad_ref)]))();
        c.record("cross_entropy_bwd", case, bwd);
    }
}

fn check_optim<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    for n in [1000usize, 70_001] {
        let mut p = c.rand(n);
        let mut m = vec![0f32; n];
        let mut v = vec![0f32; n];
        let (pb, mb, vb) = (c.up(&p), c.up(&m), c.up(&v));
        let mut errs = Ok(Vec::new());
        for step in 1..=3u32 {
            let g = c.rand(n);
            let h = AdamW {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: 0.1,
                step,
            };
            cpu::adamw(&mut p, &g, &mut m, &mut v, h);
            optim::adamw(client, &pb, &c.up(&g), &mb, &vb, h);
        }
        if let Ok(e) = &mut errs {
            match (c.down(&pb), c.down(&mb), c.down(&vb)) {
                (Ok(a), Ok(b), Ok(d)) => {
                    e.extend([rel_err(&a, &p), rel_err(&b, &m), rel_err(&d, &v)])
                }
                _ => errs = Err("download failed".to_string()),
            }
        }
        c.record("adamw", format!("{n} parameters, 3 steps"), errs);

        let g: Vec<f32> = c.rand(n);
        let gb = c.up(&g);
        let norm = Buf::<R, f32>::empty(client, 1);
        optim::grad_norm(client, &gb, &norm);
        let want = cpu::grad_norm(&g);
        let res = (|| Ok(vec![rel_err(&c.down(&norm)?, &[want])]))();
        c.record("grad_norm", format!("{n} elements"), res);
        let max_norm = want * 0.5;
        optim::clip(client, &gb, &norm, max_norm);
        let scale = cpu::clip_scale(want, max_norm);
        let clipped: Vec<f32> = g.iter().map(|x| x * scale).collect();
        let res = (|| Ok(vec![rel_err(&c.down(&gb)?, &clipped)]))();
        c.record("grad_clip", format!("{n} elements"), res);
    }
    let _ = sync(client);
}

/// f32 <-> bf16 round trip, where the device has bf16 (CUDA); the expected
/// values are the host's `half` conversions (round to nearest even).
fn check_casts<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    if !client.properties().supports_type(half::bf16::cube_type()) {
        return;
    }
    for n in [1000usize, 4097] {
        let x: Vec<f32> = c.rand(n).iter().map(|v| v * 100.0).collect();
        let xb = c.up(&x);
        let h = Buf::<R, half::bf16>::empty(client, n);
        let back = Buf::<R, f32>::empty(client, n);
        elementwise::cast(client, &xb, &h);
        elementwise::cast(client, &h, &back);
        let want: Vec<f32> = x
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_f32())
            .collect();
        let res = (|| Ok(vec![rel_err(&c.down(&back)?, &want)]))();
        c.record("cast_f32_bf16", format!("{n} elements"), res);
    }
}
