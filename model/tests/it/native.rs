//! The native CPU backend: each fast op against the reference op on
//! random inputs, the model's gradient against the reference model's and
//! against finite differences, results that do not depend on the number
//! of threads, and training on it against training on wgpu.

use prior_model::cpu::{self, CpuOps, Reference};
use prior_model::native::{NativeModel, NativeOps, CHUNK_SEQUENCES};
use prior_model::train::{train_native, StepMetrics, TrainConfig, TrainSection};
use prior_model::{ModelConfig, ParamLayout};
use prior_runtime::check::rel_err;
use prior_runtime::dist::Group;
use prior_runtime::kernels::AttnShape;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

use super::model::{batch, params};

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_gemm_matches_the_reference_matmul(
        m in 1usize..40, k in 1usize..40, n in 1usize..40,
        ta: bool, tb: bool, seed: u64,
    ) {
        let (a, b) = (random(m * k, seed), random(k * n, seed ^ 1));
        let got = NativeOps::matmul(&a, &b, m, k, n, ta, tb);
        let want = Reference::matmul(&a, &b, m, k, n, ta, tb);
        prop_assert!(rel_err(&got, &want) < 1e-5, "{}", rel_err(&got, &want));
    }

    #[test]
    fn attention_rotary_gelu_and_cross_entropy_match_the_reference(
        batch_n in 1usize..3, seq in 1usize..20, heads in 1usize..3, half_dim in 1usize..5,
        seed: u64,
    ) {
        let head_dim = 2 * half_dim;
        let s = AttnShape { batch: batch_n, seq, heads, head_dim, rotary_dims: 2 * (1 + (seed % half_dim as u64) as usize) };
        let qkv = random(s.tokens() * heads * 3 * head_dim, seed);
        let dout = random(s.tokens() * heads * head_dim, seed ^ 2);
        let got = NativeOps::attention_fwd(&qkv, s);
        let want = Reference::attention_fwd(&qkv, s);
        prop_assert!(rel_err(&got, &want) < 1e-5, "forward {}", rel_err(&got, &want));
        let got = NativeOps::attention_bwd(&dout, &qkv, s);
        let want = Reference::attention_bwd(&dout, &qkv, s);
        prop_assert!(rel_err(&got, &want) < 1e-4, "backward {}", rel_err(&got, &want));
        for inverse in [false, true] {
            let (mut got, mut want) = (qkv.clone(), qkv.clone());
            NativeOps::rotary(&mut got, s, inverse);
            Reference::rotary(&mut want, s, inverse);
            prop_assert!(rel_err(&got, &want) < 1e-5, "rotary {}", rel_err(&got, &want));
        }
        let x: Vec<f32> = qkv.iter().map(|v| 4.0 * v).collect();
        let got = NativeOps::gelu_fwd(&x);
        let want = Reference::gelu_fwd(&x);
        prop_assert!(rel_err(&got, &want) < 1e-6, "gelu {}", rel_err(&got, &want));
        let got = NativeOps::gelu_bwd(&dout[..x.len().min(dout.len())], &x[..x.len().min(dout.len())]);
        let want = Reference::gelu_bwd(&dout[..x.len().min(dout.len())], &x[..x.len().min(dout.len())]);
        prop_assert!(rel_err(&got, &want) < 1e-6, "gelu backward {}", rel_err(&got, &want));
        let vocab = 3 + (seed % 50) as usize;
        let rows = s.tokens();
        let logits: Vec<f32> = random(rows * vocab, seed ^ 3).iter().map(|x| 4.0 * x).collect();
        let targets: Vec<u32> = (0..rows).map(|r| ((r as u64 * 7 + seed) % vocab as u64) as u32).collect();
        let (l1, g1) = NativeOps::cross_entropy(&logits, &targets, vocab);
        let (l2, g2) = Reference::cross_entropy(&logits, &targets, vocab);
        prop_assert!(((l1 - l2) / l2).abs() < 1e-5, "loss {l1} vs {l2}");
        prop_assert!(rel_err(&g1, &g2) < 1e-5, "dlogits {}", rel_err(&g1, &g2));
    }
}

/// A model and a batch of `sequences` rows of seq + 1 tokens.
fn micro(sequences: usize, seq: usize) -> (NativeModel, Vec<u32>) {
    let cfg = ModelConfig::preset("micro", 40).unwrap();
    let layout = ParamLayout::new(&cfg);
    let p = params(&layout, &cfg, 11);
    let zeros = vec![0f32; layout.total];
    let model = NativeModel::new(cfg, p, zeros.clone(), zeros, seq).unwrap();
    let (tokens, _) = batch(40, sequences * (seq + 1), 12);
    (model, tokens)
}

#[test]
fn the_native_gradient_is_the_reference_models() {
    let (b, t) = (6, 9);
    let (model, tokens) = micro(b, t);
    let (loss, grad) = model.loss_and_grad(&tokens).unwrap();
    // The whole batch through the reference model at once.
    let (mut ids, mut targets) = (Vec::new(), Vec::new());
    for row in tokens.chunks(t + 1) {
        ids.extend_from_slice(&row[..t]);
        targets.extend_from_slice(&row[1..]);
    }
    let layout = ParamLayout::new(&model.cfg);
    let fwd = cpu::forward(&model.cfg, &layout, &model.params, &ids, &targets, b, t);
    let want = cpu::backward(&model.cfg, &layout, &model.params, &ids, &fwd, b, t);
    assert!(
        ((loss - fwd.loss) / fwd.loss).abs() < 1e-5,
        "{loss} vs {}",
        fwd.loss
    );
    let err = rel_err(&grad, &want);
    assert!(err < 1e-4, "gradient rel err {err}");
    // The batch is more than one chunk, so the chunks' weighting is tested.
    assert!(b > CHUNK_SEQUENCES);
}

#[test]
fn the_native_gradient_matches_finite_differences() {
    let (model, tokens) = micro(5, 7);
    let (_, grad) = model.loss_and_grad(&tokens).unwrap();
    let layout = ParamLayout::new(&model.cfg);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut checked = 0;
    for t in &layout.tensors {
        for _ in 0..2 {
            let i = t.offset + rng.random_range(0..t.len());
            let h = 1e-2f32;
            let at = |x: f32| {
                let mut m = NativeModel::new(
                    model.cfg,
                    model.params.clone(),
                    model.exp_avg.clone(),
                    model.exp_avg_sq.clone(),
                    model.seq,
                )
                .unwrap();
                m.params[i] = x;
                m.loss_and_grad(&tokens).unwrap().0 as f64
            };
            let p = model.params[i];
            let fd = (at(p + h) - at(p - h)) / (2.0 * h as f64);
            let g = grad[i] as f64;
            assert!(
                (fd - g).abs() <= 2e-3 + 0.05 * g.abs(),
                "{} [{i}]: finite difference {fd}, gradient {g}",
                t.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 2 * layout.tensors.len());
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let (model, tokens) = micro(11, 8);
    let (l1, g1) = model.loss_and_grad(&tokens).unwrap();
    let model = model.with_threads(3);
    let (l3, g3) = model.loss_and_grad(&tokens).unwrap();
    assert_eq!(l1.to_bits(), l3.to_bits());
    assert!(g1.iter().zip(&g3).all(|(a, b)| a.to_bits() == b.to_bits()));
    let ids: Vec<u32> = tokens[..4 * 8].to_vec();
    let one = model.with_threads(1);
    let a = one.token_losses(&ids, &ids, 8).unwrap();
    let three = one.with_threads(3);
    assert_eq!(a, three.token_losses(&ids, &ids, 8).unwrap());
}

#[test]
fn an_optimizer_step_is_the_reference_adamw_with_clipping_and_groups() {
    let (mut model, tokens) = micro(4, 6);
    let (_, mut grad) = model.loss_and_grad(&tokens).unwrap();
    let before = model.params.clone();
    let t = TrainSection {
        grad_clip: 1e-3,
        weight_decay: 0.5,
        ..Default::default()
    };
    let layout = ParamLayout::new(&model.cfg);
    let norm = prior_runtime::reference::grad_norm(&grad);
    let up = model.apply(&mut grad.clone(), &t, 0);
    assert_eq!(up.grad_norm, Some(norm));
    assert!(norm > t.grad_clip, "the test must clip");
    // By hand: clip, then AdamW per group.
    let clip = prior_runtime::reference::clip_scale(norm, t.grad_clip);
    grad.iter_mut().for_each(|g| *g *= clip);
    let mut want = before;
    let (mut m, mut v) = (vec![0f32; layout.total], vec![0f32; layout.total]);
    let h = prior_runtime::kernels::AdamW {
        lr: up.lr,
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        weight_decay: t.weight_decay,
        step: 1,
    };
    let d = layout.decay_end;
    prior_runtime::reference::adamw(&mut want[..d], &grad[..d], &mut m[..d], &mut v[..d], h);
    let plain = prior_runtime::kernels::AdamW {
        weight_decay: 0.0,
        ..h
    };
    prior_runtime::reference::adamw(&mut want[d..], &grad[d..], &mut m[d..], &mut v[d..], plain);
    assert_eq!(model.params, want);
    assert_eq!(model.exp_avg, m);
}

#[test]
fn native_training_follows_wgpu_training_and_resumes_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = super::train::setup(dir.path(), 8, "");
    let (cfg, text) = TrainConfig::load(&cfg_path).unwrap();
    // On wgpu first.
    let (wgpu, wgpu_steps) = super::train::run(&cfg_path, false);
    wgpu.unwrap();
    std::fs::remove_dir_all(dir.path().join("run")).unwrap();
    let train = |resume: bool| {
        let mut seen: Vec<StepMetrics> = Vec::new();
        let r = train_native(&cfg, &text, resume, &mut Group::single(), &mut |m| {
            seen.push(m.clone())
        });
        (r, seen)
    };
    let (native, native_steps) = train(false);
    let summary = native.unwrap();
    assert_eq!(summary.steps, 8);
    assert!(
        summary.device.starts_with("cpu (native"),
        "{}",
        summary.device
    );
    assert_eq!(native_steps.len(), wgpu_steps.len());
    for (n, w) in native_steps.iter().zip(&wgpu_steps) {
        assert!(
            (n.loss - w.loss).abs() < 2e-3 * w.loss,
            "step {}: native loss {} against wgpu {}",
            n.step,
            n.loss,
            w.loss
        );
        assert!(
            (n.grad_norm - w.grad_norm).abs() < 2e-2 * w.grad_norm,
            "step {}: native norm {} against wgpu {}",
            n.step,
            n.grad_norm,
            w.grad_norm
        );
    }
    assert!(native_steps.last().unwrap().loss < native_steps[0].loss);
    // Resume from the step-4 checkpoint: the same bits as the whole run.
    let ck = dir.path().join("run/checkpoints");
    let mut last: Vec<_> = std::fs::read_dir(&ck)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    last.sort();
    std::fs::remove_dir_all(last.last().unwrap()).unwrap();
    let (resumed, resumed_steps) = train(true);
    assert_eq!(resumed.unwrap().resumed_from, Some(4));
    let bits = |m: &[StepMetrics]| -> Vec<(u64, u32, u32)> {
        m.iter()
            .map(|m| (m.step, m.loss.to_bits(), m.grad_norm.to_bits()))
            .collect()
    };
    assert_eq!(bits(&resumed_steps), bits(&native_steps[4..]));
}

#[test]
fn the_native_backend_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = super::train::setup(dir.path(), 2, "precision = \"bf16\"");
    let (cfg, text) = TrainConfig::load(&cfg_path).unwrap();
    let err = train_native(&cfg, &text, false, &mut Group::single(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train.precision = bf16: the native CPU backend trains in f32"),
        "{err}"
    );
}
