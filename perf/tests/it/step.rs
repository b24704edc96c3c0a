//! `bench_step` on wgpu: its batches are the loader's (the running hash of
//! the batches served and the first step's loss on the loader's first
//! batch both match an independent computation), on a user's mix and on
//! the synthetic corpus it makes itself; flags that disagree with the mix
//! name the mix.

use std::path::Path;

use cubecl::prelude::*;
use prior_loader::pipeline::chain_hash;
use prior_loader::{MixSpec, Sampler};
use prior_model::{cpu, ModelConfig, ParamLayout};
use prior_perf::step::{bench_step, synth_mix, StepBenchError, StepBenchOptions, StepBenchReport};
use prior_runtime::device::{run_on, DeviceKind, OnDevice};
use prior_runtime::DeviceInfo;

fn options(mix: Option<&Path>) -> StepBenchOptions {
    StepBenchOptions {
        model: "micro".into(),
        vocab: 256,
        seq: None,
        batch: None,
        micro_batch: Some(2),
        mix: mix.map(Path::to_path_buf),
        steps: 2,
        warmup: 1,
        peak_flops: None,
        kernels: false,
        precision: None,
    }
}

struct Bench(StepBenchOptions);

impl OnDevice for Bench {
    type Output = Result<StepBenchReport, StepBenchError>;
    fn run<R: Runtime>(self, client: ComputeClient<R>, d: &DeviceInfo) -> Self::Output {
        bench_step(client, &d.name, &self.0, &mut |_, _| {})
    }
}

fn bench(o: StepBenchOptions) -> Result<StepBenchReport, StepBenchError> {
    run_on(DeviceKind::Wgpu, Bench(o)).unwrap()
}

/// The running hash a loader over `mix` has after `steps` batches, and the
/// loss of the bench's (freshly initialised) model on the first of them,
/// computed without the benchmark.
fn expected(mix: &Path, steps: u64, report: &StepBenchReport) -> (String, f32) {
    let (spec, corpus) = MixSpec::load(mix).unwrap();
    let sampler = Sampler::new(spec, corpus, None).unwrap();
    let mut running = 0u64;
    for s in 0..steps {
        running = chain_hash(running, sampler.batch_at(s, 0, 1).unwrap().hash);
    }
    let first = sampler.batch_at(0, 0, 1).unwrap();
    let cfg = ModelConfig::preset("micro", report.vocab).unwrap();
    let layout = ParamLayout::new(&cfg);
    let params = layout.init(&cfg, 0);
    // The first micro-batch: the loss the bench reports is the mean over
    // micro-batches, so compare the mean of the CPU model's over both.
    let seq = report.seq;
    let mut loss = 0f64;
    let micro = report.micro_batch;
    let k = report.batch / micro;
    for m in 0..k {
        let (mut ids, mut targets) = (Vec::new(), Vec::new());
        for i in m * micro..(m + 1) * micro {
            let row = first.sequence(i);
            ids.extend_from_slice(&row[..seq]);
            targets.extend_from_slice(&row[1..]);
        }
        loss +=
            cpu::forward(&cfg, &layout, &params, &ids, &targets, micro, seq).loss as f64 / k as f64;
    }
    (format!("{running:016x}"), loss as f32)
}

fn check_batches_are_the_loaders(mix: &Path, r: &StepBenchReport) {
    let (hash, loss) = expected(mix, 3, r);
    assert_eq!(r.loader_hash, hash, "the batches served are the loader's");
    assert_eq!(r.losses.len(), 3);
    assert!(
        (r.losses[0] - loss).abs() <= 1e-4 * loss.abs(),
        "step 0 loss {} vs the CPU model's {loss} on the loader's first batch",
        r.losses[0]
    );
    let b = &r.breakdown;
    for (name, ms) in [
        ("loader_wait_ms", b.loader_wait_ms),
        ("h2d_ms", b.h2d_ms),
        ("forward_ms", b.forward_ms),
        ("backward_ms", b.backward_ms),
        ("optimizer_ms", b.optimizer_ms),
    ] {
        assert!(ms.is_finite() && ms >= 0.0, "{name} {ms}");
    }
    assert!(b.forward_ms > 0.0 && b.backward_ms > 0.0 && b.optimizer_ms > 0.0);
}

#[test]
fn a_users_mix_feeds_the_trainers_step() {
    let dir = tempfile::tempdir().unwrap();
    let (mix, _) = synth_mix(dir.path(), 16, 4, 3).unwrap();
    let r = bench(options(Some(&mix))).unwrap();
    assert_eq!((r.seq, r.batch, r.micro_batch), (16, 4, 2));
    // The byte tokenizer's 258 ids raise the asked-for 256.
    assert_eq!(r.vocab, 384);
    assert!(r.data.contains(&mix.display().to_string()), "{}", r.data);
    check_batches_are_the_loaders(&mix, &r);

    // Flags that disagree with the mix name it; a micro-batch that does
    // not divide the batch is refused.
    for (seq, batch, micro, want) in [
        (Some(32), None, None, "--seq 32 differs from seq_len = 16"),
        (
            None,
            Some(3),
            None,
            "--batch 3 differs from global_batch = 4",
        ),
        (None, None, Some(3), "--micro-batch 3 does not divide"),
    ] {
        let o = StepBenchOptions {
            seq,
            batch,
            micro_batch: micro,
            ..options(Some(&mix))
        };
        let err = bench(o).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        if seq.is_some() || batch.is_some() {
            assert!(err.contains(&mix.display().to_string()), "{err}");
        }
    }
    // A mix that ends before the benchmark does is refused up front.
    let text = std::fs::read_to_string(&mix)
        .unwrap()
        .replace("[[phase]]", "[[phase]]\nsteps = 2");
    std::fs::write(&mix, text).unwrap();
    let err = bench(options(Some(&mix))).unwrap_err().to_string();
    assert!(err.contains("ends after 2 steps"), "{err}");
}

/// Without a mix the benchmark writes a synthetic corpus and reads it with
/// the loader; the same corpus and mix made again give the same batches.
#[test]
fn without_a_mix_a_synthetic_corpus_feeds_the_loader() {
    let o = StepBenchOptions {
        seq: Some(16),
        batch: Some(4),
        ..options(None)
    };
    let r = bench(o).unwrap();
    assert!(r.data.starts_with("synthetic corpus"), "{}", r.data);
    assert_eq!((r.seq, r.batch, r.micro_batch), (16, 4, 2));
    // synth_mix is deterministic: the corpus the bench made and removed is
    // made again here, and the bench's batches were its loader's.
    let dir = tempfile::tempdir().unwrap();
    let (mix, _) = synth_mix(dir.path(), 16, 4, 3).unwrap();
    check_batches_are_the_loaders(&mix, &r);
}

/// `--precision f16` benchmarks the mixed-precision step (its report says
/// so, and its activations take about half the f32 bytes); the profiled step's
/// time is split into kernel classes whose shares add up to one; `bf16`
/// on lavapipe is refused with the alternatives.
#[test]
fn the_f16_step_reports_its_precision_memory_and_kernel_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (mix, _) = synth_mix(dir.path(), 16, 4, 3).unwrap();
    let run = |precision: &str| {
        bench(StepBenchOptions {
            kernels: true,
            precision: Some(precision.parse().unwrap()),
            ..options(Some(&mix))
        })
    };
    let (f32_run, f16_run) = (run("f32").unwrap(), run("f16").unwrap());
    assert!(
        f16_run.precision.starts_with("f16 compute"),
        "{}",
        f16_run.precision
    );
    assert!(f16_run.losses.iter().all(|l| l.is_finite()));
    assert_eq!(
        f32_run.memory.compute_weights, 0,
        "f32 reads its master weights"
    );
    assert_eq!(
        f16_run.memory.compute_weights,
        f16_run.memory.parameters / 2
    );
    // Half of it, but for the f32 statistics, losses and weight-gradient
    // scratch.
    let (a16, a32) = (f16_run.memory.activations, f32_run.memory.activations);
    assert!(a16 < a32 && 2 * a16 >= a32, "f16 {a16} vs f32 {a32} bytes");
    let names: Vec<&str> = f16_run.classes.iter().map(|c| c.class).collect();
    assert_eq!(
        names,
        [
            "matmul",
            "attention",
            "elementwise",
            "reduction",
            "optimizer"
        ]
    );
    let total: f64 = f16_run.classes.iter().map(|c| c.share).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    assert!(
        f16_run.classes.iter().all(|c| c.ms > 0.0),
        "{:?}",
        f16_run.classes
    );
    let err = run("bf16").unwrap_err().to_string();
    assert!(err.contains("no bf16") && err.contains("\"f16\""), "{err}");
}
