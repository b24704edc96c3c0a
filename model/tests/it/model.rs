//! The model's gradients: the CPU reference against finite differences,
//! and the device model (wgpu) against the CPU reference in loss and every
//! parameter's gradient, on random weights and tokens.

use cubecl::prelude::*;
use prior_model::cpu;
use prior_model::device::DeviceModel;
use prior_model::{ModelConfig, ParamLayout};
use prior_runtime::buffer::Buf;
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
        m.backward(&Buf::upload(&m.client, &ids)).unwrap();
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

struct HeadChunks;

impl OnDevice for HeadChunks {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &prior_runtime::DeviceInfo) {
        let cfg = ModelConfig::preset("tiny", 200).unwrap();
        let layout = ParamLayout::new(&cfg);
        let p = params(&layout, &cfg, 51);
        // 384 positions: three chunks of 128 rows, against one of 384.
        let (b, t) = (4, 96);
        let (ids, targets) = batch(200, b * t, 52);
        let run = |rows: usize| {
            let mut m = DeviceModel::new(client.clone(), cfg, &p, b, t).unwrap();
            m.set_head_rows(rows).unwrap();
            assert_eq!(m.head_rows(), rows);
            let loss = m.forward(&ids, &targets, 1.0).unwrap();
            m.backward(&Buf::upload(&m.client, &ids)).unwrap();
            let losses = m.forward_token_losses(&ids, &targets).unwrap();
            (loss, losses, m.download_grads().unwrap())
        };
        let (loss, losses, whole) = run(b * t);
        let (chunked_loss, chunked_losses, chunked) = run(128);
        assert!(
            (chunked_loss - loss).abs() <= 1e-6 * loss.abs(),
            "{chunked_loss} vs {loss}"
        );
        assert!(rel_err(&chunked_losses, &losses) <= 1e-5);
        for spec in &layout.tensors {
            let r = spec.offset..spec.offset + spec.len();
            let e = rel_err(&chunked[r.clone()], &whole[r]);
            assert!(
                e <= 1e-4,
                "{}: max_rel_err {e} chunked against whole",
                spec.name
            );
        }
        assert!(
            whole.iter().any(|g| g.abs() > 1e-3),
            "gradients carry signal"
        );
        // A chunk that would split views off their alignment is refused.
        let mut m = DeviceModel::new(client.clone(), cfg, &p, b, t).unwrap();
        let err = m.set_head_rows(100).unwrap_err().to_string();
        assert!(err.contains("multiple of 128"), "{err}");
    }
}

/// The chunked head (logits never whole) gives the loss and gradients of
/// the head over every row at once.
#[test]
fn the_head_in_chunks_matches_the_head_at_once() {
    run_on(DeviceKind::Wgpu, HeadChunks).unwrap();
}
