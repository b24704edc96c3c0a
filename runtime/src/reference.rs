//! The CPU reference: every op of the runtime, forward and backward, in
//! plain Rust with f64 accumulation. Readable on purpose: it is the
//! definition the device kernels are checked against (`prior runtime
//! check`, and the tests), not something to run fast.
//!
//! Layouts match the kernels: activations are row-major `[rows, cols]`;
//! attention reads GPT-NeoX's fused `qkv` rows, `[tokens, heads, 3, head_dim]`
//! (q, k, v of one head side by side), and writes `[tokens, heads, head_dim]`.

/// out[n, :] = table[ids[n], :]
pub fn embedding_fwd(table: &[f32], ids: &[u32], dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(ids.len() * dim);
    for &id in ids {
        out.extend_from_slice(&table[id as usize * dim..(id as usize + 1) * dim]);
    }
    out
}

/// dtable[v, :] = sum over n with ids[n] == v of dout[n, :]
pub fn embedding_bwd(dout: &[f32], ids: &[u32], vocab: usize, dim: usize) -> Vec<f32> {
    let mut acc = vec![0f64; vocab * dim];
    for (n, &id) in ids.iter().enumerate() {
        for c in 0..dim {
            acc[id as usize * dim + c] += dout[n * dim + c] as f64;
        }
    }
    acc.into_iter().map(|x| x as f32).collect()
}

/// Per-row statistics LayerNorm keeps for its backward: (mean, rstd).
pub fn layernorm_fwd(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    cols: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / cols;
    let mut y = vec![0f32; x.len()];
    let mut stats = vec![0f32; rows * 2];
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / cols as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        for c in 0..cols {
            y[r * cols + c] =
                (((row[c] as f64 - mean) * rstd) * gamma[c] as f64 + beta[c] as f64) as f32;
        }
        stats[2 * r] = mean as f32;
        stats[2 * r + 1] = rstd as f32;
    }
    (y, stats)
}

/// (dx, dgamma, dbeta) of LayerNorm given the forward's input and stats.
pub fn layernorm_bwd(
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    stats: &[f32],
    cols: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = x.len() / cols;
    let mut dx = vec![0f32; x.len()];
    let mut dgamma = vec![0f64; cols];
    let mut dbeta = vec![0f64; cols];
    for r in 0..rows {
        let (mean, rstd) = (stats[2 * r] as f64, stats[2 * r + 1] as f64);
        let xhat: Vec<f64> = (0..cols)
            .map(|c| (x[r * cols + c] as f64 - mean) * rstd)
            .collect();
        let g: Vec<f64> = (0..cols)
            .map(|c| dy[r * cols + c] as f64 * gamma[c] as f64)
            .collect();
        let mean_g = g.iter().sum::<f64>() / cols as f64;
        let mean_gx = g.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / cols as f64;
        for c in 0..cols {
            dx[r * cols + c] = (rstd * (g[c] - mean_g - xhat[c] * mean_gx)) as f32;
            dgamma[c] += dy[r * cols + c] as f64 * xhat[c];
            dbeta[c] += dy[r * cols + c] as f64;
        }
    }
    (
        dx,
        dgamma.into_iter().map(|v| v as f32).collect(),
        dbeta.into_iter().map(|v| v as f32).collect(),
    )
}

/// c[m, n] = sum_k op(a)[m, k] * op(b)[k, n], where op transposes when asked:
/// `a` is stored `[m, k]` (or `[k, m]` if `ta`), `b` is `[k, n]` (or `[n, k]` if `tb`).
#[allow(clippy::too_many_arguments)]
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for p in 0..k {
                let av = if ta { a[p * m + i] } else { a[i * k + p] };
                let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                s += av as f64 * bv as f64;
            }
            c[i * n + j] = s as f32;
        }
    }
    c
}

/// y[r, c] = x[r, c] + bias[c]
pub fn bias_add(x: &[f32], bias: &[f32]) -> Vec<f32> {
    let cols = bias.len();
    x.iter()
        .enumerate()
        .map(|(i, &v)| v + bias[i % cols])
        .collect()
}

/// dbias[c] = sum over rows of dy[r, c]
pub fn bias_bwd(dy: &[f32], cols: usize) -> Vec<f32> {
    let mut acc = vec![0f64; cols];
    for (i, &v) in dy.iter().enumerate() {
        acc[i % cols] += v as f64;
    }
    acc.into_iter().map(|v| v as f32).collect()
}

/// libm's erf (correctly rounded to within an ulp), in f64 as every
/// reference op computes.
fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// GPT-NeoX's exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
pub fn gelu_fwd(x: &[f32]) -> Vec<f32> {
    x.iter()
        .map(|&v| {
            let v = v as f64;
            (0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))) as f32
        })
        .collect()
}

pub fn gelu_bwd(dy: &[f32], x: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(dy)
        .map(|(&v, &g)| {
            let v = v as f64;
            let cdf = 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (g as f64 * (cdf + v * pdf)) as f32
        })
        .collect()
}

/// Geometry of the fused qkv rows.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Leading dims of q and k that rotary rotates (even).
    pub rotary_dims: usize,
}

impl AttnShape {
    pub fn tokens(&self) -> usize {
        self.batch * self.seq
    }
    /// Offset in the qkv buffer of part `p` (0 q, 1 k, 2 v), token `t`, head `h`.
    pub fn qkv_at(&self, t: usize, h: usize, p: usize) -> usize {
        ((t * self.heads + h) * 3 + p) * self.head_dim
    }
}

/// GPT-NeoX rotary (rotate-half) on the first `rotary_dims` of q and k,
/// position = index within the sequence, base 10000. In place.
pub fn rotary(qkv: &mut [f32], s: AttnShape, inverse: bool) {
    let half = s.rotary_dims / 2;
    for t in 0..s.tokens() {
        let pos = (t % s.seq) as f64;
        for h in 0..s.heads {
            for p in 0..2 {
                let o = s.qkv_at(t, h, p);
                for i in 0..half {
                    let inv_freq = 1.0 / 10000f64.powf(2.0 * i as f64 / s.rotary_dims as f64);
                    let (sin, cos) = (pos * inv_freq).sin_cos();
                    let sin = if inverse { -sin } else { sin };
                    let (x1, x2) = (qkv[o + i] as f64, qkv[o + i + half] as f64);
                    qkv[o + i] = (x1 * cos - x2 * sin) as f32;
                    qkv[o + i + half] = (x2 * cos + x1 * sin) as f32;
                }
            }
        }
    }
}

/// Causal softmax attention. Returns (out `[tokens, heads, head_dim]`,
/// log-sum-exp `[batch, heads, seq]`).
pub fn attention_fwd(qkv: &[f32], s: AttnShape) -> (Vec<f32>, Vec<f32>) {
    let d = s.head_dim;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f32; s.tokens() * s.heads * d];
    let mut lse = vec![0f32; s.batch * s.heads * s.seq];
    for b in 0..s.batch {
        for h in 0..s.heads {
            for i in 0..s.seq {
                let ti = b * s.seq + i;
                let q = &qkv[s.qkv_at(ti, h, 0)..][..d];
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        let k = &qkv[s.qkv_at(b * s.seq + j, h, 1)..][..d];
                        q.iter()
                            .zip(k)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|x| (x - m).exp()).sum();
                for (j, sc) in scores.iter().enumerate() {
                    let p = (sc - m).exp() / z;
                    let v = &qkv[s.qkv_at(b * s.seq + j, h, 2)..][..d];
                    for c in 0..d {
                        out[(ti * s.heads + h) * d + c] += (p * v[c] as f64) as f32;
                    }
                }
                lse[(b * s.heads + h) * s.seq + i] = (m + z.ln()) as f32;
            }
        }
    }
    (out, lse)
}

/// d(qkv) of causal attention given d(out).
pub fn attention_bwd(dout: &[f32], qkv: &[f32], s: AttnShape) -> Vec<f32> {
    let d = s.head_dim;
    let scale = 1.0 / (d as f64).sqrt();
    let mut dqkv = vec![0f64; qkv.len()];
    let (out, _) = attention_fwd(qkv, s);
    for b in 0..s.batch {
        for h in 0..s.heads {
            for i in 0..s.seq {
                let ti = b * s.seq + i;
                let q = &qkv[s.qkv_at(ti, h, 0)..][..d];
                let doi = &dout[(ti * s.heads + h) * d..][..d];
                let oi = &out[(ti * s.heads + h) * d..][..d];
                let delta: f64 = doi.iter().zip(oi).map(|(a, b)| *a as f64 * *b as f64).sum();
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        let k = &qkv[s.qkv_at(b * s.seq + j, h, 1)..][..d];
                        q.iter()
                            .zip(k)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|x| (x - m).exp()).sum();
                for (j, sc) in scores.iter().enumerate() {
                    let tj = b * s.seq + j;
                    let p = (sc - m).exp() / z;
                    let v = &qkv[s.qkv_at(tj, h, 2)..][..d];
                    let dp: f64 = doi.iter().zip(v).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let ds = p * (dp - delta) * scale;
                    let k = &qkv[s.qkv_at(tj, h, 1)..][..d];
                    for c in 0..d {
                        dqkv[s.qkv_at(ti, h, 0) + c] += ds * k[c] as f64;
                        dqkv[s.qkv_at(tj, h, 1) + c] += ds * q[c] as f64;
                        dqkv[s.qkv_at(tj, h, 2) + c] += p * doi[c] as f64;
                    }
                }
            }
        }
    }
    dqkv.into_iter().map(|v| v as f32).collect()
}

/// Mean cross-entropy over rows and its gradient w.r.t. the logits.
pub fn cross_entropy(logits: &[f32], targets: &[u32], vocab: usize) -> (f32, Vec<f32>) {
    let rows = targets.len();
    let mut loss = 0f64;
    let mut grad = vec![0f32; logits.len()];
    for r in 0..rows {
        let row = &logits[r * vocab..(r + 1) * vocab];
        let m = row
            .iter()
            .map(|&v| v as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        let lse = m + z.ln();
        loss += lse - row[targets[r] as usize] as f64;
        for c in 0..vocab {
            let p = (row[c] as f64 - lse).exp();
            let onehot = if c == targets[r] as usize { 1.0 } else { 0.0 };
            grad[r * vocab + c] = ((p - onehot) / rows as f64) as f32;
        }
    }
    ((loss / rows as f64) as f32, grad)
}

/// Hyperparameters of one AdamW step.
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step number, for bias correction.
    pub step: u32,
}

/// One AdamW step (PyTorch's formulation: decoupled decay, then the
/// bias-corrected Adam update), in place.
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: AdamW) {
    let bc1 = 1.0 - (h.beta1 as f64).powi(h.step as i32);
    let bc2 = 1.0 - (h.beta2 as f64).powi(h.step as i32);
    for i in 0..p.len() {
        let gi = g[i] as f64;
        let mi = h.beta1 as f64 * m[i] as f64 + (1.0 - h.beta1 as f64) * gi;
        let vi = h.beta2 as f64 * v[i] as f64 + (1.0 - h.beta2 as f64) * gi * gi;
        let mut pi = p[i] as f64 * (1.0 - h.lr as f64 * h.weight_decay as f64);
        pi -= h.lr as f64 / bc1 * mi / ((vi / bc2).sqrt() + h.eps as f64);
        p[i] = pi as f32;
        m[i] = mi as f32;
        v[i] = vi as f32;
    }
}

/// Global L2 norm.
pub fn grad_norm(g: &[f32]) -> f32 {
    g.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32
}

/// The factor clipping multiplies gradients by.
pub fn clip_scale(norm: f32, max_norm: f32) -> f32 {
    if norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    //! The reference's backward passes against central finite differences of
    //! its forward passes, on random inputs: the reference is the definition
    //! the kernels are held to, so it is checked first.
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rand_vec(rng: &mut rand_chacha::ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    /// Central difference of `f` along coordinate `i` of `x`.
    fn fd(x: &[f32], i: usize, h: f32, f: &dyn Fn(&[f32]) -> f64) -> f64 {
        let mut p = x.to_vec();
        p[i] += h;
        let up = f(&p);
        p[i] -= 2.0 * h;
        let down = f(&p);
        (up - down) / (2.0 * h as f64)
    }

    fn assert_close(analytic: f64, numeric: f64, what: &str) {
        let tol = 2e-3 * (1.0 + numeric.abs());
        assert!(
            (analytic - numeric).abs() < tol,
            "{what}: analytic {analytic}, numeric {numeric}"
        );
    }

    #[test]
    fn layernorm_backward_matches_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (rows, cols) = (3, 7);
        let x = rand_vec(&mut rng, rows * cols, 2.0);
        let g = rand_vec(&mut rng, cols, 1.0);
        let b = rand_vec(&mut rng, cols, 1.0);
        let dy = rand_vec(&mut rng, rows * cols, 1.0);
        let (_, stats) = layernorm_fwd(&x, &g, &b, cols, 1e-5);
        let (dx, dg, db) = layernorm_bwd(&dy, &x, &g, &stats, cols);
        let loss_x = |x: &[f32]| dot(&layernorm_fwd(x, &g, &b, cols, 1e-5).0, &dy);
        for (i, &d) in dx.iter().enumerate() {
            assert_close(d as f64, fd(&x, i, 1e-2, &loss_x), "dx");
        }
        let loss_g = |g: &[f32]| dot(&layernorm_fwd(&x, g, &b, cols, 1e-5).0, &dy);
        let loss_b = |b: &[f32]| dot(&layernorm_fwd(&x, &g, b, cols, 1e-5).0, &dy);
        for i in 0..cols {
            assert_close(dg[i] as f64, fd(&g, i, 1e-2, &loss_g), "dgamma");
            assert_close(db[i] as f64, fd(&b, i, 1e-2, &loss_b), "dbeta");
        }
    }

    #[test]
    fn gelu_backward_matches_finite_differences_and_known_values() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let x = rand_vec(&mut rng, 50, 4.0);
        let ones = vec![1.0f32; 50];
        let dx = gelu_bwd(&ones, &x);
        for i in 0..x.len() {
            let f = |v: &[f32]| gelu_fwd(&v[i..i + 1])[0] as f64;
            assert_close(dx[i] as f64, fd(&x, i, 1e-2, &f), "gelu'");
        }
        // erf(1) and GELU(1) = Phi(1) to 7 digits.
        assert!((erf(1.0) - 0.842_700_792_949_715).abs() < 1e-12);
        assert!((gelu_fwd(&[1.0])[0] - 0.841_344_7).abs() < 1e-6);
        assert!((erf(3.0) - 0.999_977_909_503_001_4).abs() < 1e-12);
    }

    #[test]
    fn attention_backward_matches_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let s = AttnShape {
            batch: 2,
            seq: 5,
            heads: 2,
            head_dim: 4,
            rotary_dims: 2,
        };
        let qkv = rand_vec(&mut rng, s.tokens() * s.heads * 3 * s.head_dim, 1.5);
        let dout = rand_vec(&mut rng, s.tokens() * s.heads * s.head_dim, 1.0);
        let d = attention_bwd(&dout, &qkv, s);
        let loss = |q: &[f32]| dot(&attention_fwd(q, s).0, &dout);
        for i in (0..qkv.len()).step_by(3) {
            assert_close(d[i] as f64, fd(&qkv, i, 1e-2, &loss), "dqkv");
        }
        // Causality: the last token's q, k, v do not affect earlier outputs.
        let (out, _) = attention_fwd(&qkv, s);
        let mut changed = qkv.clone();
        let last = s.qkv_at(s.seq - 1, 0, 0);
        for v in &mut changed[last..last + 3 * s.head_dim] {
            *v += 1.0;
        }
        let (out2, _) = attention_fwd(&changed, s);
        let earlier = (s.seq - 1) * s.heads * s.head_dim;
        assert_eq!(out[..earlier], out2[..earlier]);
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let (rows, vocab) = (3, 11);
        let logits = rand_vec(&mut rng, rows * vocab, 3.0);
        let targets = vec![0u32, 10, 4];
        let (_, grad) = cross_entropy(&logits, &targets, vocab);
        let loss = |l: &[f32]| cross_entropy(l, &targets, vocab).0 as f64;
        for (i, &g) in grad.iter().enumerate() {
            assert_close(g as f64, fd(&logits, i, 1e-2, &loss), "dlogits");
        }
    }

    #[test]
    fn rotary_inverse_undoes_rotary_and_keeps_norms() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let s = AttnShape {
            batch: 1,
            seq: 9,
            heads: 2,
            head_dim: 8,
            rotary_dims: 4,
        };
        let qkv = rand_vec(&mut rng, s.tokens() * s.heads * 3 * s.head_dim, 1.0);
        let mut r = qkv.clone();
        rotary(&mut r, s, false);
        assert_ne!(r, qkv);
        assert!((dot(&r, &r) - dot(&qkv, &qkv)).abs() < 1e-4);
        rotary(&mut r, s, true);
        for (a, b) in r.iter().zip(&qkv) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn adamw_first_step_moves_by_lr_against_the_gradient_sign() {
        let mut p = vec![1.0f32, -2.0, 0.5];
        let g = [0.3f32, -0.01, 2.0];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        let h = AdamW {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.5,
            step: 1,
        };
        let before = p.clone();
        adamw(&mut p, &g, &mut m, &mut v, h);
        for i in 0..3 {
            let want = before[i] * (1.0 - 0.05) - 0.1 * g[i].signum();
            assert!((p[i] - want).abs() < 1e-5, "{} vs {want}", p[i]);
        }
    }
}
