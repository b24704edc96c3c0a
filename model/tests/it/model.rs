//! The model's gradients: the CPU reference against finite differences,
//! and the device model (wgpu) against the CPU reference in loss and every
//! parameter's gradient, on random weights and tokens.

use cubecl::prelude::*;
use prior_model::cpu;
use prior_model::device::DeviceModel;
use prior_model::{ModelConfig, ParamLayout};
use prior_runtime::check::rel_err;
use prior_runtime::device::{run_on, DeviceKind, OnDevice};
use rand::{Rng, SeedableRng};

pub(crate) fn batch(vocab: u32, n: usize, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..vocab)).collect();
    let targets: Vec<u32> = (0..n).map(|_| rng.random_range(0..vocab)).collect();
    (ids, targets)
}

/// Larger-than-init weights so every path carries signal.
pub(crate) fn params(layout: &ParamLayout, cfg: &ModelConfig, seed: u64) -> Vec<f32> {
    let mut p = layout.init(cfg, seed);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 1);
    for t in &layout.tensors {
        for x in &mut p[t.offset..t.offset + t.len()] {
            *x += rng.random_range(-0.2f32..0.2);
        }
    }
    p
}

#[test]
fn cpu_reference_gradients_match_finite_differences() {
    let cfg = ModelConfig::preset("micro", 40).unwrap();
    let layout = ParamLayout::new(&cfg);
    let p = params(&layout, &cfg, 3);
    let (b, t) = (2, 5);
    let (ids, targets) = batch(40, b * t, 4);
    let fwd = cpu::forward(&cfg, &layout, &p, &ids, &targets, b, t);
    let g = cpu::backward(&cfg, &layout, &p, &ids, &fwd, b, t);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for spec in &layout.tensors {
        for _ in 0..3 {
            let i = spec.offset + rng.random_range(0..spec.len());
            let h = 1e-2f32;
            let mut q = p.clone();
            q[i] += h;
            let up = cpu::forward(&cfg, &layout, &q, &ids, &targets, b, t).loss as f64;
            q[i] -= 2.0 * h;
            let down = cpu::forward(&cfg, &layout, &q, &ids, &targets, b, t).loss as f64;
            let numeric = (up - down) / (2.0 * h as f64);
            let analytic = g[i] as f64;
            assert!(
                (analytic - numeric).abs() < 2e-3 + 2e-2 * numeric.abs(),
                "{}[{}]: analytic {analytic}, numeric {numeric}",
                spec.name,
                i - spec.offset
            );
        }
    }
}

struct DeviceVsCpu;

impl OnDevice for DeviceVsCpu {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &prior_runtime::DeviceInfo) {
        let cfg = ModelConfig::preset("tiny", 200).unwrap();
        let layout = ParamLayout::new(&cfg);
        let p = params(&layout, &cfg, 11);
        let (b, t) = (2, 9);
        let (ids, targets) = batch(200, b * t, 12);
        let fwd = cpu::forward(&cfg, &layout, &p, &ids, &targets, b, t);
        let want = cpu::backward(&cfg, &layout, &p, &ids, &fwd, b, t);
        let mut m = DeviceModel::new(client, cfg, &p, b, t).unwrap();
        let loss = m.forward(&ids, &targets, 1.0).unwrap();
        assert!(
            (loss - fwd.loss).abs() < 1e-4 * fwd.loss.abs(),
            "loss {loss} vs {}",
            fwd.loss
        );
        m.backward(&ids).unwrap();
        let got = m.download_grads().unwrap();
        for spec in &layout.tensors {
            let r = spec.offset..spec.offset + spec.len();
            let e = rel_err(&got[r.clone()], &want[r]);
            assert!(e < 1e-3, "{}: max_rel_err {e}", spec.name);
        }
    }
}

#[test]
fn device_model_matches_the_cpu_reference() {
    run_on(DeviceKind::Wgpu, DeviceVsCpu).unwrap();
}
