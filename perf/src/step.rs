//! `prior bench step`: where the time of a full training step goes.
//!
//! A step is timed the way the trainer runs it (batch to device, forward
//! and backward over the micro-batch, gradient norm and clip, AdamW), with a
//! device sync between the phases so that each phase's time is its own.
//! The syncs cost a little; the step total is what a user would see within
//! a few percent. Kernel times come from a separate profiled step in which
//! every kernel is followed by a sync (so their sum exceeds a real step's
//! time; read them as shares).
//!
//! Model FLOPs per token are `6 N` (N: every parameter except the input
//! embedding, whose lookup is not a matmul) plus the attention term
//! `12 n_layer d_model seq` (scores and weighted sum, forward and backward,
//! counted in full as PaLM's MFU does). MFU divides the achieved model
//! FLOP/s by the device's dense bf16 peak from [`peak_flops`] or an override.

use std::collections::BTreeMap;
use std::time::Instant;

use cubecl::prelude::*;
use prior_model::device::DeviceModel;
use prior_model::{ModelConfig, ParamLayout};
use prior_runtime::buffer::{sync, Buf};
use prior_runtime::kernels::optim;
use prior_runtime::reference::AdamW;
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct StepBenchOptions {
    pub model: String,
    pub vocab: usize,
    pub seq: usize,
    pub batch: usize,
    pub steps: usize,
    pub warmup: usize,
    /// Peak FLOP/s override (else the device table).
    pub peak_flops: Option<f64>,
    /// Also run one profiled step for per-kernel times.
    pub kernels: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlopsPerToken {
    pub six_n: f64,
    pub attention: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepPercentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

/// Mean milliseconds per step of each phase.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub loader_wait_ms: f64,
    pub h2d_ms: f64,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelTime {
    pub kernel: String,
    pub ms: f64,
    pub launches: u64,
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepBenchReport {
    pub model: String,
    pub device: String,
    pub seq: usize,
    pub batch: usize,
    pub steps: usize,
    pub parameters: usize,
    pub tokens_per_s: f64,
    /// Model FLOP utilisation (null when the device's peak is unknown).
    pub mfu: Option<f64>,
    pub flops_per_token: FlopsPerToken,
    pub achieved_flops: f64,
    pub peak_flops: Option<f64>,
    pub peak_source: String,
    pub step_ms: StepPercentiles,
    pub breakdown: Breakdown,
    pub kernels: Vec<KernelTime>,
    pub precision: String,
}

pub use prior_runtime::device::peak_flops;

pub fn flops_per_token(cfg: &ModelConfig, seq: usize) -> FlopsPerToken {
    let (six_n, attention) = cfg.flops_per_token(seq);
    FlopsPerToken {
        six_n,
        attention,
        total: six_n + attention,
    }
}

/// Runs the benchmark on `client`.
pub fn bench_step<R: Runtime>(
    client: ComputeClient<R>,
    device_name: &str,
    o: &StepBenchOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<StepBenchReport, String> {
    let cfg = ModelConfig::preset(&o.model, o.vocab).ok_or_else(|| {
        format!(
            "unknown model {:?} (one of: {})",
            o.model,
            ModelConfig::preset_names().join(", ")
        )
    })?;
    let layout = ParamLayout::new(&cfg);
    let params = layout.init(&cfg, 0);
    let err = |e: prior_runtime::RuntimeError| e.to_string();
    let mut model = DeviceModel::new(client.clone(), cfg, &params, o.batch, o.seq);
    let m = Buf::<R, f32>::upload(&client, &vec![0f32; layout.total]);
    let v = Buf::<R, f32>::upload(&client, &vec![0f32; layout.total]);
    let norm = Buf::<R, f32>::empty(&client, 1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let tokens = o.batch * o.seq;
    let mut phase = [0f64; 5];
    let mut step_ms = Vec::with_capacity(o.steps);
    let total = o.warmup + o.steps;
    for s in 0..total {
        let t0 = Instant::now();
        // The batch: random ids (a real loader's wait is in `prior loader bench`).
        let ids: Vec<u32> = (0..tokens)
            .map(|_| rng.random_range(0..o.vocab as u32))
            .collect();
        let targets: Vec<u32> = (0..tokens)
            .map(|_| rng.random_range(0..o.vocab as u32))
            .collect();
        let t1 = Instant::now();
        let ids_b = Buf::<R, u32>::upload(&client, &ids);
        let targets_b = Buf::<R, u32>::upload(&client, &targets);
        sync(&client).map_err(err)?;
        let t2 = Instant::now();
        model.zero_grads();
        let loss = model.forward_device(&ids_b, &targets_b, 1.0).map_err(err)?;
        if !loss.is_finite() {
            return Err(format!("step {s}: loss is {loss}"));
        }
        let t3 = Instant::now();
        model.backward(&ids).map_err(err)?;
        sync(&client).map_err(err)?;
        let t4 = Instant::now();
        optim::grad_norm(&client, &model.grads, &norm);
        optim::clip(&client, &model.grads, &norm, 1.0);
        let h = AdamW {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            step: (s + 1) as u32,
        };
        optim::adamw(&client, &model.params, &model.grads, &m, &v, h);
        sync(&client).map_err(err)?;
        let t5 = Instant::now();
        if s >= o.warmup {
            let d = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            for (k, x) in [d(t0, t1), d(t1, t2), d(t2, t3), d(t3, t4), d(t4, t5)]
                .into_iter()
                .enumerate()
            {
                phase[k] += x;
            }
            step_ms.push(d(t0, t5));
        }
        progress(s + 1, total);
    }
    let mut kernels = Vec::new();
    if o.kernels {
        let ids: Vec<u32> = (0..tokens).map(|i| (i % o.vocab) as u32).collect();
        model.profile_kernels(true);
        model.zero_grads();
        model.forward(&ids, &ids, 1.0).map_err(err)?;
        model.backward(&ids).map_err(err)?;
        let prof = model.profile_kernels(false).unwrap_or_default();
        let sum: f64 = prof.totals.values().map(|x| x.0).sum();
        let mut list: Vec<KernelTime> = prof
            .totals
            .iter()
            .map(|(k, (ms, n))| KernelTime {
                kernel: k.to_string(),
                ms: *ms,
                launches: *n,
                share: ms / sum.max(1e-12),
            })
            .collect();
        list.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        kernels = list;
    }
    let n = step_ms.len().max(1) as f64;
    let mean = step_ms.iter().sum::<f64>() / n;
    let mut hist =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for ms in &step_ms {
        hist.saturating_record((ms * 1e3).round() as u64);
    }
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1e3;
    let fpt = flops_per_token(&cfg, o.seq);
    let tokens_per_s = tokens as f64 / (mean / 1e3);
    let achieved = fpt.total * tokens_per_s;
    let (peak, source) = match (o.peak_flops, peak_flops(device_name)) {
        (Some(p), _) => (Some(p), "--peak-tflops".to_string()),
        (None, Some((p, s))) => (Some(p), s.to_string()),
        (None, None) => (
            None,
            "unknown device: pass --peak-tflops for MFU".to_string(),
        ),
    };
    Ok(StepBenchReport {
        model: o.model.clone(),
        device: device_name.to_string(),
        seq: o.seq,
        batch: o.batch,
        steps: o.steps,
        parameters: cfg.parameters(),
        tokens_per_s,
        mfu: peak.map(|p| achieved / p),
        flops_per_token: fpt,
        achieved_flops: achieved,
        peak_flops: peak,
        peak_source: source,
        step_ms: StepPercentiles {
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            mean,
        },
        breakdown: Breakdown {
            loader_wait_ms: phase[0] / n,
            h2d_ms: phase[1] / n,
            forward_ms: phase[2] / n,
            backward_ms: phase[3] / n,
            optimizer_ms: phase[4] / n,
        },
        kernels,
        precision: "f32 (bf16 compute is not wired yet)".into(),
    })
}

/// Per-kernel sums in a map (for tests and reports).
pub fn kernel_map(r: &StepBenchReport) -> BTreeMap<String, f64> {
    r.kernels.iter().map(|k| (k.kernel.clone(), k.ms)).collect()
}
