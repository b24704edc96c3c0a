//! The native CPU backend (`--device cpu`): the model of [`crate::cpu`]
//! trained and scored on the host, as llm.c keeps `train_gpt2.c` beside
//! its CUDA build. Small models are what CPUs train (the demo's, the
//! tests'), and for them a software Vulkan driver runs the cubecl kernels
//! at well under 1% of the cores' f32 peak; this path runs the same
//! forward and backward with a tuned GEMM (matrixmultiply) and f32
//! attention, rotary, GELU (libm's erf) and cross-entropy ([`NativeOps`]).
//!
//! A step's sequences are cut into chunks of [`CHUNK_SEQUENCES`]; chunks
//! run in parallel, one per core, and their gradients are added into the
//! step's in chunk order. The chunking does not depend on the number of
//! threads, so a run gives the same bits on any machine with the same
//! floating-point unit and any `PRIOR_CPU_THREADS`. The optimizer is the
//! reference AdamW of prior-runtime with the device optimizer's parameter
//! groups, clipping and learning-rate schedule. It is not bit-identical
//! to the device path (f32 here where the reference sums in f64, another
//! summation order than the kernels'); tests/it/native.rs bounds the
//! difference.

use prior_runtime::kernels::AttnShape;
use prior_runtime::reference as op;

use crate::config::ModelConfig;
use crate::cpu::{self, CpuOps};
use crate::heldout::{heldout_loss_with, CategoryLoss, HeldoutSet};
use crate::params::ParamLayout;
use crate::train::{adamw_groups, split_micro, OptimizerUpdate, TrainError, TrainSection};

/// Sequences per unit of parallel work: fixed, so that results do not
/// depend on the number of threads.
pub const CHUNK_SEQUENCES: usize = 4;

/// Worker threads: `PRIOR_CPU_THREADS`, else the cores this process may use.
pub fn threads() -> usize {
    std::env::var("PRIOR_CPU_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Whether this backend can train `[train]` `t` in a world of `world` ranks: f32
/// (or no precision asked for) in one process. `auto` takes wgpu for the
/// rest.
pub fn can_train(t: &TrainSection, world: u32) -> bool {
    world == 1
        && t.precision
            .is_none_or(|p| p == crate::train::TrainPrecision::F32)
}

/// What `prior` calls this backend in its output.
pub fn device_name() -> String {
    format!("cpu (native, {} threads)", threads())
}

/// The fast ops: matrixmultiply's SGEMM, and attention, rotary and
/// cross-entropy in f32 with their tables made once per call.
pub struct NativeOps;

impl CpuOps for NativeOps {
    fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        // Row-major a[m, k] has strides (k, 1); stored transposed ([k, m])
        // the same element sits at (1, m). Likewise b.
        let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
        let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
        // SAFETY: the strides address exactly a's m*k, b's k*n and c's m*n
        // elements, which the slices hold (checked below).
        assert!(a.len() >= m * k && b.len() >= k * n, "matmul operand sizes");
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb as isize,
                csb as isize,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        c
    }

    fn rotary(qkv: &mut [f32], s: AttnShape, inverse: bool) {
        let half = s.rotary_dims / 2;
        // (sin, cos) per position and frequency, from f64 as the reference.
        let table: Vec<(f32, f32)> = (0..s.seq)
            .flat_map(|pos| {
                (0..half).map(move |i| {
                    let inv_freq = 1.0 / 10000f64.powf(2.0 * i as f64 / s.rotary_dims as f64);
                    let (sin, cos) = (pos as f64 * inv_freq).sin_cos();
                    (if inverse { -sin } else { sin } as f32, cos as f32)
                })
            })
            .collect();
        for t in 0..s.tokens() {
            let rot = &table[(t % s.seq) * half..][..half];
            for h in 0..s.heads {
                for p in 0..2 {
                    let o = s.qkv_at(t, h, p);
                    for (i, &(sin, cos)) in rot.iter().enumerate() {
                        let (x1, x2) = (qkv[o + i], qkv[o + i + half]);
                        qkv[o + i] = x1 * cos - x2 * sin;
                        qkv[o + i + half] = x2 * cos + x1 * sin;
                    }
                }
            }
        }
    }

    fn attention_fwd(qkv: &[f32], s: AttnShape) -> Vec<f32> {
        let d = s.head_dim;
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; s.tokens() * s.heads * d];
        let mut p = vec![0f32; s.seq];
        for b in 0..s.batch {
            for h in 0..s.heads {
                for i in 0..s.seq {
                    let ti = b * s.seq + i;
                    let z = softmax_row(qkv, s, b, h, i, scale, &mut p[..=i]);
                    let o = &mut out[(ti * s.heads + h) * d..][..d];
                    for (j, &pj) in p[..=i].iter().enumerate() {
                        let v = &qkv[s.qkv_at(b * s.seq + j, h, 2)..][..d];
                        let w = pj / z;
                        for (oc, vc) in o.iter_mut().zip(v) {
                            *oc += w * vc;
                        }
                    }
                }
            }
        }
        out
    }

    fn attention_bwd(dout: &[f32], qkv: &[f32], s: AttnShape) -> Vec<f32> {
        let d = s.head_dim;
        let scale = 1.0 / (d as f32).sqrt();
        let mut dqkv = vec![0f32; qkv.len()];
        let mut p = vec![0f32; s.seq];
        let mut o = vec![0f32; d];
        for b in 0..s.batch {
            for h in 0..s.heads {
                for i in 0..s.seq {
                    let ti = b * s.seq + i;
                    let z = softmax_row(qkv, s, b, h, i, scale, &mut p[..=i]);
                    for pj in &mut p[..=i] {
                        *pj /= z;
                    }
                    // This row's output, for delta = dout . out.
                    o.fill(0.0);
                    for (j, &pj) in p[..=i].iter().enumerate() {
                        let v = &qkv[s.qkv_at(b * s.seq + j, h, 2)..][..d];
                        for (oc, vc) in o.iter_mut().zip(v) {
                            *oc += pj * vc;
                        }
                    }
                    let doi = &dout[(ti * s.heads + h) * d..][..d];
                    let delta: f32 = doi.iter().zip(&o).map(|(a, b)| a * b).sum();
                    let qo = s.qkv_at(ti, h, 0);
                    for (j, &pj) in p[..=i].iter().enumerate() {
                        let tj = b * s.seq + j;
                        let (ko, vo) = (s.qkv_at(tj, h, 1), s.qkv_at(tj, h, 2));
                        let dp: f32 = doi.iter().zip(&qkv[vo..vo + d]).map(|(a, b)| a * b).sum();
                        let ds = pj * (dp - delta) * scale;
                        for c in 0..d {
                            dqkv[qo + c] += ds * qkv[ko + c];
                            dqkv[ko + c] += ds * qkv[qo + c];
                            dqkv[vo + c] += pj * doi[c];
                        }
                    }
                }
            }
        }
        dqkv
    }

    fn gelu_fwd(x: &[f32]) -> Vec<f32> {
        x.iter()
            .map(|&v| 0.5 * v * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2)))
            .collect()
    }

    fn gelu_bwd(dy: &[f32], x: &[f32]) -> Vec<f32> {
        // d/dx x Phi(x) = Phi(x) + x phi(x).
        let inv_sqrt_2pi = 0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;
        x.iter()
            .zip(dy)
            .map(|(&v, &g)| {
                let cdf = 0.5 * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * v * v).exp() * inv_sqrt_2pi;
                g * (cdf + v * pdf)
            })
            .collect()
    }

    fn cross_entropy(logits: &[f32], targets: &[u32], vocab: usize) -> (f32, Vec<f32>) {
        let rows = targets.len();
        let mut grad = vec![0f32; logits.len()];
        let mut loss = 0f64;
        for (r, &target) in targets.iter().enumerate() {
            let row = &logits[r * vocab..(r + 1) * vocab];
            let g = &mut grad[r * vocab..(r + 1) * vocab];
            // One exp per logit: the softmax's numerators go into the
            // gradient and are scaled once their sum is known.
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let mut z = 0f32;
            for (gc, &x) in g.iter_mut().zip(row) {
                *gc = (x - m).exp();
                z += *gc;
            }
            loss += (m + z.ln() - row[target as usize]) as f64;
            let scale = 1.0 / (z * rows as f32);
            g.iter_mut().for_each(|gc| *gc *= scale);
            g[target as usize] -= 1.0 / rows as f32;
        }
        ((loss / rows as f64) as f32, grad)
    }
}

/// Unnormalised causal softmax of query `i` (batch `b`, head `h`) into
/// `p[..=i]`; returns the normaliser.
fn softmax_row(
    qkv: &[f32],
    s: AttnShape,
    b: usize,
    h: usize,
    i: usize,
    scale: f32,
    p: &mut [f32],
) -> f32 {
    let d = s.head_dim;
    let q = &qkv[s.qkv_at(b * s.seq + i, h, 0)..][..d];
    for (j, pj) in p.iter_mut().enumerate() {
        let k = &qkv[s.qkv_at(b * s.seq + j, h, 1)..][..d];
        *pj = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
    }
    let m = p.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut z = 0f32;
    for pj in p.iter_mut() {
        *pj = (*pj - m).exp();
        z += *pj;
    }
    z
}

fn log_sum_exp(row: &[f32]) -> f32 {
    let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    m + row.iter().map(|&x| (x - m).exp()).sum::<f32>().ln()
}

/// The model, its gradient and AdamW's moments on the host, in the flat
/// layout of [`ParamLayout`].
pub struct NativeModel {
    pub cfg: ModelConfig,
    layout: ParamLayout,
    /// `[layout.total]` f32 weights.
    pub params: Vec<f32>,
    /// `[layout.total]` AdamW moments.
    pub exp_avg: Vec<f32>,
    pub exp_avg_sq: Vec<f32>,
    /// Tokens per sequence the model is run at.
    pub seq: usize,
    threads: usize,
}

impl NativeModel {
    /// `params` and the moments (zeros for a fresh run), each the layout's
    /// size.
    pub fn new(
        cfg: ModelConfig,
        params: Vec<f32>,
        exp_avg: Vec<f32>,
        exp_avg_sq: Vec<f32>,
        seq: usize,
    ) -> Result<Self, TrainError> {
        let layout = ParamLayout::new(&cfg);
        for (what, len) in [
            ("weights", params.len()),
            ("first moments", exp_avg.len()),
            ("second moments", exp_avg_sq.len()),
        ] {
            if len != layout.total {
                return Err(TrainError::Shape {
                    detail: format!("{len} {what} for a model of {} parameters", layout.total),
                });
            }
        }
        Ok(NativeModel {
            cfg,
            layout,
            params,
            exp_avg,
            exp_avg_sq,
            seq,
            threads: threads(),
        })
    }

    /// The same model on `threads` worker threads (the results do not
    /// change; only the time does).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The batch's mean loss and the gradient of it (`tokens`: sequences of
    /// `seq + 1` tokens, row-major, as the loader delivers them).
    pub fn loss_and_grad(&self, tokens: &[u32]) -> Result<(f32, Vec<f32>), TrainError> {
        let seq_tokens = self.seq + 1;
        let sequences = tokens.len() / seq_tokens;
        if sequences == 0 || sequences * seq_tokens != tokens.len() {
            return Err(TrainError::Shape {
                detail: format!(
                    "{} tokens do not split into sequences of {seq_tokens} (the model's seq {} + 1)",
                    tokens.len(),
                    self.seq
                ),
            });
        }
        let chunks: Vec<(usize, usize)> = (0..sequences)
            .step_by(CHUNK_SEQUENCES)
            .map(|first| (first, CHUNK_SEQUENCES.min(sequences - first)))
            .collect();
        let mut grad = vec![0f32; self.layout.total];
        let mut loss = 0f64;
        // A wave of one chunk per thread; each wave's gradients are added in
        // chunk order, so the sum is the same for any number of threads.
        for wave in chunks.chunks(self.threads) {
            let parts = self.parallel(wave, |&(first, n)| {
                let (ids, targets) = split_micro(tokens, seq_tokens, first, n);
                let fwd = cpu::forward_with::<NativeOps>(
                    &self.cfg,
                    &self.layout,
                    &self.params,
                    &ids,
                    &targets,
                    n,
                    self.seq,
                );
                let g = cpu::backward_with::<NativeOps>(
                    &self.cfg,
                    &self.layout,
                    &self.params,
                    &ids,
                    &fwd,
                    n,
                    self.seq,
                );
                (fwd.loss, g)
            })?;
            for (&(_, n), (l, g)) in wave.iter().zip(parts) {
                let w = n as f32 / sequences as f32;
                loss += l as f64 * w as f64;
                for (acc, x) in grad.iter_mut().zip(g) {
                    *acc += w * x;
                }
            }
        }
        Ok((loss as f32, grad))
    }

    /// One optimizer step (0-based `step` of a run configured by `t`) on
    /// `grad`: the global norm, clipping to `t.grad_clip`, then AdamW with
    /// weight decay on the matrices (`[0, decay_end)`) and none after, as
    /// the device optimizer does.
    pub fn apply(&mut self, grad: &mut [f32], t: &TrainSection, step: u64) -> OptimizerUpdate {
        let norm = op::grad_norm(grad);
        let clip = op::clip_scale(norm, t.grad_clip);
        if clip != 1.0 {
            grad.iter_mut().for_each(|g| *g *= clip);
        }
        let (decayed, plain) = adamw_groups(t, step);
        let d = self.layout.decay_end;
        op::adamw(
            &mut self.params[..d],
            &grad[..d],
            &mut self.exp_avg[..d],
            &mut self.exp_avg_sq[..d],
            decayed,
        );
        op::adamw(
            &mut self.params[d..],
            &grad[d..],
            &mut self.exp_avg[d..],
            &mut self.exp_avg_sq[d..],
            plain,
        );
        OptimizerUpdate {
            lr: decayed.lr,
            grad_norm: Some(norm),
            skipped: false,
            loss_scale: None,
        }
    }

    /// Each position's cross-entropy (`ids`, `targets`: `rows x seq`), the
    /// rows computed in parallel chunks.
    pub fn token_losses(
        &self,
        ids: &[u32],
        targets: &[u32],
        seq: usize,
    ) -> Result<Vec<f32>, TrainError> {
        let v = self.cfg.vocab_size;
        self.per_rows(ids, seq, |first, n| {
            let rows = first * seq..(first + n) * seq;
            let fwd = self.forward(&ids[rows.clone()], &[], n, seq);
            (0..n * seq)
                .map(|r| {
                    let row = &fwd.logits[r * v..(r + 1) * v];
                    log_sum_exp(row) - row[targets[rows.start + r] as usize]
                })
                .collect()
        })
    }

    /// Mean held-out loss per category (the model run at `set.seq`), a
    /// wave of chunks at a time.
    pub fn heldout_loss(&self, set: &HeldoutSet) -> Result<Vec<CategoryLoss>, TrainError> {
        heldout_loss_with(set, CHUNK_SEQUENCES * self.threads, |ids, targets| {
            self.token_losses(ids, targets, set.seq)
        })
    }

    /// The logits `[rows * seq, vocab]` of `ids` (`rows x seq`).
    pub fn logits(&self, ids: &[u32], seq: usize) -> Result<Vec<f32>, TrainError> {
        self.per_rows(ids, seq, |first, n| {
            let rows = first * seq..(first + n) * seq;
            self.forward(&ids[rows], &[], n, seq).logits
        })
    }

    fn forward(&self, ids: &[u32], targets: &[u32], n: usize, seq: usize) -> cpu::Forward {
        cpu::forward_with::<NativeOps>(&self.cfg, &self.layout, &self.params, ids, targets, n, seq)
    }

    /// `f(first, n)` over chunks of rows of `ids`, concatenated in order.
    fn per_rows(
        &self,
        ids: &[u32],
        seq: usize,
        f: impl Fn(usize, usize) -> Vec<f32> + Sync,
    ) -> Result<Vec<f32>, TrainError> {
        if seq == 0 || !ids.len().is_multiple_of(seq) {
            return Err(TrainError::Shape {
                detail: format!("{} tokens are not rows of {seq}", ids.len()),
            });
        }
        let rows = ids.len() / seq;
        let chunks: Vec<(usize, usize)> = (0..rows)
            .step_by(CHUNK_SEQUENCES)
            .map(|first| (first, CHUNK_SEQUENCES.min(rows - first)))
            .collect();
        let mut out = Vec::new();
        for wave in chunks.chunks(self.threads) {
            for part in self.parallel(wave, |&(first, n)| f(first, n))? {
                out.extend(part);
            }
        }
        Ok(out)
    }

    /// `f` over `items`, one scoped thread each; a panic in any of them
    /// comes back as an error, after every thread has ended.
    fn parallel<I: Sync, O: Send>(
        &self,
        items: &[I],
        f: impl Fn(&I) -> O + Sync,
    ) -> Result<Vec<O>, TrainError> {
        std::thread::scope(|scope| {
            let f = &f;
            let handles: Vec<_> = items
                .iter()
                .map(|item| scope.spawn(move || f(item)))
                .collect();
            let mut out = Vec::with_capacity(items.len());
            let mut failed = None;
            for h in handles {
                match h.join() {
                    Ok(o) => out.push(o),
                    Err(panic) => {
                        let why = panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("(no message)");
                        failed.get_or_insert_with(|| TrainError::Worker {
                            detail: format!("a native CPU worker thread panicked: {why}"),
                        });
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
    }
}
