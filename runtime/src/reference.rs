//! The CPU reference: every op of the runtime, forward and backward, in
//! plain Rust with f64 accumulation. Readable on purpose: it is the
//! definition the device kernels are checked against (`prior runtime
//! check`, and the tests), not something to run fast. Each op's definition
//! lives beside its kernels (`kernels::<op>::reference`); this module
//! gathers them under one name, for the CPU reference model
//! (prior-model's `cpu`) and the tests.
//!
//! Layouts match the kernels: activations are row-major `[rows, cols]`;
//! attention reads GPT-NeoX's fused `qkv` rows, `[tokens, heads, 3, head_dim]`
//! (q, k, v of one head side by side), and writes `[tokens, heads, head_dim]`.

pub use crate::kernels::attention::reference::{attention_bwd, attention_fwd};
pub use crate::kernels::cross_entropy::reference::cross_entropy;
pub use crate::kernels::elementwise::reference::{bias_add, bias_bwd};
pub use crate::kernels::embedding::reference::{embedding_bwd, embedding_fwd};
pub use crate::kernels::gelu::reference::{gelu_bwd, gelu_fwd};
pub use crate::kernels::layernorm::reference::{layernorm_bwd, layernorm_fwd};
pub use crate::kernels::matmul::reference::matmul;
pub use crate::kernels::optim::reference::{adamw, clip_scale, grad_norm};
pub use crate::kernels::rotary::reference::rotary;

#[cfg(test)]
mod tests {
    //! The reference's backward passes against central finite differences of
    //! its forward passes, on random inputs: the reference is the definition
    //! the kernels are held to, so it is checked first.
    use super::*;
    use crate::kernels::{AdamW, AttnShape};
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
        assert!((libm::erf(1.0) - 0.842_700_792_949_715).abs() < 1e-12);
        assert!((gelu_fwd(&[1.0])[0] - 0.841_344_7).abs() < 1e-6);
        assert!((libm::erf(3.0) - 0.999_977_909_503_001_4).abs() < 1e-12);
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
