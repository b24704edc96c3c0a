//! `prior runtime check`: every kernel, forward and backward, on fresh
//! random inputs (several shapes, sizes off the tile sizes) against the CPU
//! reference. The same checks run in `cargo test` on wgpu.
//!
//! Error measure: the largest absolute difference over a tensor divided by
//! the largest magnitude in the reference tensor (`max_rel_err`), which is
//! stable where single elements are near zero. Any NaN or infinity fails.
//!
//! Every check is listed in [`GROUPS`], and [`run_checks`] returns one
//! [`KernelCheck`] per name there: passed, failed, or skipped with the
//! reason (a type the device lacks). A listed check that records nothing,
//! or a result under a name not listed, comes back failed, so no check can
//! go missing from the report (and from the tests that assert it) without
//! notice.

use cubecl::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::buffer::{sync, Buf};
use crate::kernels::matmul::Precision;
use crate::kernels::{
    attention, cross_entropy, elementwise, embedding, layernorm, matmul, optim, rotary,
};
use crate::reference::{self as cpu, AdamW, AttnShape};

/// Tolerance on `max_rel_err` for f32 kernels.
pub const F32_TOLERANCE: f64 = 2e-4;
/// Tolerance for matmuls in TF32 (inputs rounded to a 10-bit mantissa,
/// relative error about 1e-3 per product; sums stay f32).
pub const TF32_TOLERANCE: f64 = 5e-3;

/// The tolerance of a check at `precision`.
pub fn tolerance(precision: Precision) -> f64 {
    match precision {
        Precision::F32 => F32_TOLERANCE,
        Precision::Tf32 => TF32_TOLERANCE,
    }
}

/// The precision a check runs at, by its name (`*_tf32` in TF32).
pub fn precision_of(name: &str) -> Precision {
    if name.ends_with("_tf32") {
        Precision::Tf32
    } else {
        Precision::F32
    }
}

/// Every check [`run_checks`] records, by group (one check function per
/// group), in the order they run.
pub const GROUPS: [(&str, &[&str]); 9] = [
    ("embedding", &["embedding_fwd", "embedding_bwd"]),
    (
        "layernorm",
        &["layernorm_fwd", "layernorm_bwd", "residual_layernorm_fwd"],
    ),
    (
        "matmul",
        &[
            "matmul_fwd",
            "matmul_bwd",
            "matmul_fwd_tf32",
            "matmul_bwd_tf32",
        ],
    ),
    (
        "elementwise",
        &[
            "gelu_fwd",
            "gelu_bwd",
            "bias_fwd",
            "bias_bwd",
            "bias_gelu_fwd",
            "gelu_bias_bwd",
            "residual_add",
        ],
    ),
    ("rotary", &["rotary_fwd", "rotary_bwd"]),
    ("attention", &["attention_fwd", "attention_bwd"]),
    ("cross_entropy", &["cross_entropy_fwd", "cross_entropy_bwd"]),
    (
        "optim",
        &[
            "adamw",
            "grad_norm",
            "grad_clip",
            "grad_unscale_clip",
            "adamw_clipped",
        ],
    ),
    ("casts", &["cast_f32_bf16", "cast_f32_f16"]),
];

/// The names of every check, in order (what [`run_checks`] returns one
/// result for each of).
pub fn check_names() -> impl Iterator<Item = &'static str> {
    GROUPS.iter().flat_map(|(_, names)| names.iter().copied())
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelCheck {
    pub name: String,
    /// Ran and stayed within tolerance. False for a failed or skipped check.
    pub ok: bool,
    /// What the kernel computed in (`tf32` only for TF32 matmuls).
    pub precision: Precision,
    /// The bound on `max_rel_err` for that precision.
    pub tolerance: f64,
    pub max_rel_err: f64,
    /// Shapes the kernel ran at.
    pub cases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the check could not run on this device; `None` when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl KernelCheck {
    pub fn failed(&self) -> bool {
        !self.ok && self.skipped.is_none()
    }
}

/// How many checks passed, failed and were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CheckSummary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub fn summarize(results: &[KernelCheck]) -> CheckSummary {
    let mut s = CheckSummary::default();
    for r in results {
        if r.skipped.is_some() {
            s.skipped += 1;
        } else if r.ok {
            s.passed += 1;
        } else {
            s.failed += 1;
        }
    }
    s
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

    fn entry(&mut self, name: &str) -> &mut KernelCheck {
        entry(&mut self.results, name)
    }

    /// Records `errs` (one per compared tensor, per case) under `name`.
    fn record(&mut self, name: &str, case: String, result: Result<Vec<f64>, String>) {
        let r = self.entry(name);
        r.cases.push(case);
        match result {
            Ok(errs) => {
                for e in errs {
                    r.max_rel_err = r.max_rel_err.max(e);
                }
                r.ok &= r.max_rel_err <= r.tolerance;
            }
            Err(e) => {
                r.ok = false;
                r.max_rel_err = f64::INFINITY;
                r.error.get_or_insert(e);
            }
        }
    }

    /// Records that `name` cannot run here, and why.
    fn skip(&mut self, name: &str, why: String) {
        let r = self.entry(name);
        r.ok = false;
        r.skipped = Some(why);
    }
}

/// The result recorded under `name`, created (passing, no cases) if none is.
fn entry<'a>(results: &'a mut Vec<KernelCheck>, name: &str) -> &'a mut KernelCheck {
    let i = match results.iter().position(|r| r.name == name) {
        Some(i) => i,
        None => {
            let precision = precision_of(name);
            results.push(KernelCheck {
                name: name.into(),
                ok: true,
                precision,
                tolerance: tolerance(precision),
                max_rel_err: 0.0,
                cases: vec![],
                error: None,
                skipped: None,
            });
            results.len() - 1
        }
    };
    &mut results[i]
}

/// After a group ran: each of its `names` that `results[first..]` lacks is
/// recorded failed with `missing` (why it is absent), and each result there
/// under a name not in `names` is marked failed.
fn settle(
    results: &mut Vec<KernelCheck>,
    first: usize,
    group: &str,
    names: &[&str],
    missing: &str,
) {
    for name in names {
        if !results[first..].iter().any(|r| r.name == *name) {
            let r = entry(results, name);
            r.ok = false;
            r.max_rel_err = f64::INFINITY;
            r.error = Some(missing.to_string());
        }
    }
    for r in &mut results[first..] {
        if !names.contains(&r.name.as_str()) {
            r.ok = false;
            r.skipped = None;
            r.error = Some(format!("not listed under {group} in check::GROUPS"));
        }
    }
}

/// Runs every check with inputs drawn from `seed`: one result per name of
/// [`GROUPS`], in that order (and any result recorded under a name not
/// listed there, marked failed).
pub fn run_checks<R: Runtime>(client: &ComputeClient<R>, seed: u64) -> Vec<KernelCheck> {
    let mut c = Checker {
        client,
        rng: ChaCha8Rng::seed_from_u64(seed),
        results: Vec::new(),
    };
    // In the order of GROUPS.
    let runs: [fn(&mut Checker<R>); 9] = [
        check_embedding,
        check_layernorm,
        check_matmul,
        check_elementwise,
        check_rotary,
        check_attention,
        check_cross_entropy,
        check_optim,
        check_casts,
    ];
    for ((group, names), run) in GROUPS.into_iter().zip(runs) {
        let first = c.results.len();
        // A kernel launch cubecl rejects can panic; that fails this group's
        // unrecorded checks, with the panic's text, instead of ending the run.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut c)));
        let missing = match outcome {
            Ok(()) => format!("recorded nothing: the {group} checks neither ran nor skipped it"),
            Err(p) => format!(
                "the {group} checks panicked: {}",
                crate::device::panic_message(&p)
            ),
        };
        settle(&mut c.results, first, group, names, &missing);
    }
    c.results
}

fn check_embedding<R: Runtime>(c: &mut Checker<R>) {
    // 1,500 positions: the sort's whole-array stages as well as its tiles.
    for (vocab, dim, n) in [(97usize, 40usize, 61usize), (300, 64, 256), (50, 24, 1500)] {
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
            let g = embedding::EmbeddingGrouping::new(client, &Buf::upload(client, &ids));
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
    for (rows, cols) in [(37usize, 200usize), (5, 64), (3, 1000), (300, 300)] {
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
    check_matmul_at(c, Precision::F32, "");
    if matmul::supports_tf32(c.client) {
        check_matmul_at(c, Precision::Tf32, "_tf32");
    } else {
        for name in ["matmul_fwd_tf32", "matmul_bwd_tf32"] {
            c.skip(
                name,
                "the device has no TF32 tensor cores (its f32 matmuls are exact f32)".into(),
            );
        }
    }
}

fn check_matmul_at<R: Runtime>(c: &mut Checker<R>, precision: Precision, suffix: &str) {
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
            match matmul::matmul(
                client,
                &c.up(&a),
                &c.up(&b),
                &out,
                m,
                k,
                n,
                ta,
                tb,
                precision,
            ) {
                Ok(_) => match c.down(&out) {
                    Ok(v) => errs.push(rel_err(&v, &cpu::matmul(&a, &b, m, k, n, ta, tb))),
                    Err(e) => failure = Some(e),
                },
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let case = format!("m {m}, k {k}, n {n}, all transposes");
        c.record(
            &format!("matmul_fwd{suffix}"),
            case,
            failure.map_or(Ok(errs), Err),
        );
        // Backward of y = x W^T: dx = dy W, dW = dy^T x.
        let x = c.rand(m * k);
        let w = c.rand(n * k);
        let dy = c.rand(m * n);
        let bwd = (|| {
            let (xb, wb, dyb) = (c.up(&x), c.up(&w), c.up(&dy));
            let dx = Buf::<R, f32>::empty(client, m * k);
            let dw = Buf::<R, f32>::empty(client, n * k);
            matmul::matmul(client, &dyb, &wb, &dx, m, n, k, false, false, precision)
                .map_err(|e| e.to_string())?;
            matmul::matmul(client, &dyb, &xb, &dw, n, m, k, true, false, precision)
                .map_err(|e| e.to_string())?;
            Ok(vec![
                rel_err(&c.down(&dx)?, &cpu::matmul(&dy, &w, m, n, k, false, false)),
                rel_err(&c.down(&dw)?, &cpu::matmul(&dy, &x, n, m, k, true, false)),
            ])
        })();
        c.record(
            &format!("matmul_bwd{suffix}"),
            format!("linear {k} -> {n}, {m} rows"),
            bwd,
        );
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
    for (rows, cols) in [(13usize, 37usize), (300, 64), (200, 300)] {
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

        // The fused MLP bias + GELU, both ways, against the two references
        // composed.
        let x: Vec<f32> = x.iter().map(|v| v * 4.0).collect();
        let pre_ref = cpu::bias_add(&x, &bias);
        let (pre, act) = (c.up(&x), Buf::<R, f32>::empty(client, rows * cols));
        elementwise::bias_gelu_fwd(client, &pre, &c.up(&bias), &act);
        let fwd = (|| {
            Ok(vec![
                rel_err(&c.down(&pre)?, &pre_ref),
                rel_err(&c.down(&act)?, &cpu::gelu_fwd(&pre_ref)),
            ])
        })();
        c.record("bias_gelu_fwd", format!("{rows} x {cols}"), fwd);
        let d_act = c.rand(rows * cols);
        let d_pre_ref = cpu::gelu_bwd(&d_act, &pre_ref);
        let seed_db = c.rand(cols);
        let db_ref: Vec<f32> = cpu::bias_bwd(&d_pre_ref, cols)
            .iter()
            .zip(&seed_db)
            .map(|(a, b)| a + b)
            .collect();
        let (d_pre, db) = (Buf::<R, f32>::empty(client, rows * cols), c.up(&seed_db));
        elementwise::gelu_bias_bwd(client, &c.up(&d_act), &pre, &d_pre, &db, true);
        let bwd = (|| {
            Ok(vec![
                rel_err(&c.down(&d_pre)?, &d_pre_ref),
                rel_err(&c.down(&db)?, &db_ref),
            ])
        })();
        c.record(
            "gelu_bias_bwd",
            format!("{rows} x {cols}, accumulating"),
            bwd,
        );

        // The parallel residual's end: y + bias + a + b.
        let (y, a, b) = (
            c.rand(rows * cols),
            c.rand(rows * cols),
            c.rand(rows * cols),
        );
        let want: Vec<f32> = cpu::bias_add(&y, &bias)
            .iter()
            .zip(a.iter().zip(&b))
            .map(|(yb, (a, b))| yb + a + b)
            .collect();
        let yb = c.up(&y);
        elementwise::residual_add(client, &yb, &c.up(&bias), &c.up(&a), &c.up(&b));
        let res = (|| Ok(vec![rel_err(&c.down(&yb)?, &want)]))();
        c.record("residual_add", format!("{rows} x {cols}"), res);
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
        let tables = rotary::RotaryTables::<R>::new(client, s.seq, s.rotary_dims);
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

/// Attention at the tiny test sizes and at Pythia's head sizes 64 (160m,
/// 410m), 80 (2.8b), 128 (1.4b, 6.9b) and 256 (1b), each at a sequence
/// length that is no multiple of any tile.
fn attention_shapes() -> Vec<AttnShape> {
    let mut shapes = attn_shapes().to_vec();
    for (seq, heads, head_dim) in [(70, 2, 64), (21, 1, 80), (45, 1, 128), (33, 1, 256)] {
        shapes.push(AttnShape {
            batch: 1,
            seq,
            heads,
            head_dim,
            rotary_dims: head_dim / 4,
        });
    }
    shapes
}

fn check_attention<R: Runtime>(c: &mut Checker<R>) {
    let client = c.client;
    for s in attention_shapes() {
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
        optim::clip(client, &gb, &norm, max_norm, 1.0);
        let scale = cpu::clip_scale(want, max_norm);
        let clipped: Vec<f32> = g.iter().map(|x| x * scale).collect();
        let res = (|| Ok(vec![rel_err(&c.down(&gb)?, &clipped)]))();
        c.record("grad_clip", format!("{n} elements"), res);

        // Loss-scaled gradients (f16 training): the norm of g * 1024, then
        // unscale and clip in one pass, to the clipped true gradients.
        let loss_scale = 1024.0f32;
        let scaled = c.up(&g.iter().map(|x| x * loss_scale).collect::<Vec<_>>());
        optim::grad_norm(client, &scaled, &norm);
        optim::clip(client, &scaled, &norm, max_norm, 1.0 / loss_scale);
        let res = (|| Ok(vec![rel_err(&c.down(&scaled)?, &clipped)]))();
        c.record(
            "grad_unscale_clip",
            format!("{n} elements, scale 1024"),
            res,
        );

        // Clip, unscale and AdamW in one pass: the reference clips the true
        // gradients, then steps; the device sees them loss-scaled.
        let (mut p, mut m) = (c.rand(n), c.rand(n));
        let mut v: Vec<f32> = c.rand(n).iter().map(|x| x.abs()).collect();
        let (pb, mb, vb) = (c.up(&p), c.up(&m), c.up(&v));
        let h = AdamW {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            step: 4,
        };
        cpu::adamw(&mut p, &clipped, &mut m, &mut v, h);
        let scaled = c.up(&g.iter().map(|x| x * loss_scale).collect::<Vec<_>>());
        optim::grad_norm(client, &scaled, &norm);
        optim::adamw_clipped(
            client,
            &pb,
            &scaled,
            &mb,
            &vb,
            &norm,
            max_norm,
            1.0 / loss_scale,
            h,
        );
        let res = (|| {
            Ok(vec![
                rel_err(&c.down(&pb)?, &p),
                rel_err(&c.down(&mb)?, &m),
                rel_err(&c.down(&vb)?, &v),
            ])
        })();
        c.record(
            "adamw_clipped",
            format!("{n} parameters, scale 1024, clipped"),
            res,
        );
    }
    let _ = sync(client);
}

/// f32 <-> bf16 and f32 <-> f16 round trips, each where the device has the
/// type (bf16: CUDA; f16: CUDA and most Vulkan drivers, lavapipe included);
/// the expected values are the host's `half` conversions (round to nearest
/// even).
fn check_casts<R: Runtime>(c: &mut Checker<R>) {
    check_cast::<R, half::bf16>(c, "cast_f32_bf16", |v| half::bf16::from_f32(v).to_f32());
    // The inputs (|x| < 100) are well inside f16's range.
    check_cast::<R, half::f16>(c, "cast_f32_f16", |v| half::f16::from_f32(v).to_f32());
}

fn check_cast<R: Runtime, H: Float + CubeElement>(
    c: &mut Checker<R>,
    name: &str,
    round: fn(f32) -> f32,
) {
    let client = c.client;
    if !client
        .properties()
        .supports_type(<H as CubeElement>::cube_type())
    {
        c.skip(
            name,
            format!(
                "the device ({}) has no {}",
                R::name(client),
                <H as CubeElement>::type_name()
            ),
        );
        return;
    }
    for n in [1000usize, 4097] {
        let x: Vec<f32> = c.rand(n).iter().map(|v| v * 100.0).collect();
        let xb = c.up(&x);
        let h = Buf::<R, H>::empty(client, n);
        let back = Buf::<R, f32>::empty(client, n);
        elementwise::cast(client, &xb, &h);
        elementwise::cast(client, &h, &back);
        let want: Vec<f32> = x.iter().map(|&v| round(v)).collect();
        let res = (|| Ok(vec![rel_err(&c.down(&back)?, &want)]))();
        c.record(name, format!("{n} elements"), res);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(name: &str) -> KernelCheck {
        KernelCheck {
            name: name.into(),
            ok: true,
            precision: Precision::F32,
            tolerance: F32_TOLERANCE,
            max_rel_err: 1e-7,
            cases: vec!["a".into(), "b".into()],
            error: None,
            skipped: None,
        }
    }

    #[test]
    fn a_listed_check_that_records_nothing_comes_back_failed_with_the_reason() {
        let mut results = vec![passed("grad_norm")];
        settle(
            &mut results,
            0,
            "optim",
            &["adamw", "grad_norm", "grad_clip"],
            "recorded nothing",
        );
        let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["grad_norm", "adamw", "grad_clip"]);
        assert!(results[0].ok);
        for r in &results[1..] {
            assert!(r.failed(), "{r:?}");
            assert_eq!(r.error.as_deref(), Some("recorded nothing"));
        }
        assert_eq!(
            summarize(&results),
            CheckSummary {
                passed: 1,
                failed: 2,
                skipped: 0
            }
        );
    }

    #[test]
    fn a_result_under_an_unlisted_name_fails_and_a_skip_stays_a_skip() {
        let mut results = vec![passed("earlier group")];
        let mut skipped = passed("cast_f32_bf16");
        skipped.ok = false;
        skipped.skipped = Some("no bf16".into());
        results.extend([skipped, passed("cast_f32_f8")]);
        settle(
            &mut results,
            1,
            "casts",
            &["cast_f32_bf16", "cast_f32_f16"],
            "missing",
        );
        assert!(results[0].ok, "results before `first` are left alone");
        assert!(!results[1].failed() && results[1].skipped.is_some());
        assert!(results[2].failed());
        assert!(results[2].error.as_deref().unwrap().contains("not listed"));
        assert!(results[3].failed() && results[3].name == "cast_f32_f16");
        assert_eq!(
            summarize(&results),
            CheckSummary {
                passed: 1,
                failed: 2,
                skipped: 1
            }
        );
    }

    #[test]
    fn the_list_names_every_check_once() {
        let names: Vec<&str> = check_names().collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for must in ["residual_layernorm_fwd", "grad_clip", "cast_f32_bf16"] {
            assert!(names.contains(&must), "{must}");
        }
    }
}
