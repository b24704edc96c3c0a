//! `prior bench ...`: device-side benchmarks.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use prior_runtime::bench::SHAPES;
use prior_runtime::device::{choose, run_on, DeviceKind};
use prior_runtime::BenchTask;
use serde_json::json;

use crate::ui;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time every kernel at one model's layer sizes, with achieved TFLOP/s or GB/s.
    Kernels(KernelsArgs),
    /// Time full training steps: tokens/s, MFU, phase and per-kernel breakdown.
    Step(StepArgs),
}

#[derive(Args)]
pub struct StepArgs {
    /// Model preset (micro, tiny, pythia-14m ... pythia-6.9b).
    #[arg(long, default_value = "pythia-160m")]
    model: String,
    #[arg(long, default_value = "auto")]
    device: String,
    /// A mix spec to take the batches from (its seq_len and global_batch
    /// set the step). Without it, a synthetic corpus is written to a
    /// temporary directory and read by the same loader.
    #[arg(long)]
    mix: Option<PathBuf>,
    /// Sequence length (default 2048; with --mix, the mix's seq_len).
    #[arg(long)]
    seq: Option<usize>,
    /// Sequences per step (default 8; with --mix, the mix's global_batch).
    #[arg(long)]
    batch: Option<usize>,
    /// Sequences per forward and backward; a step accumulates gradients
    /// over batch / micro-batch of them, as train.micro_batch does
    /// (default: the whole batch).
    #[arg(long)]
    micro_batch: Option<usize>,
    /// Timed steps (after the warm-up).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps first (kernel compilation, caches).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Vocabulary (Pythia's padded 50304 by default; raised to the corpus
    /// tokenizer's when that is larger).
    #[arg(long, default_value_t = 50304)]
    vocab: usize,
    /// Peak dense FLOP/s of the device in TFLOP/s, for MFU on a card the
    /// built-in table does not know.
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Skip the profiled step that gives per-kernel times.
    #[arg(long)]
    no_kernels: bool,
    /// The compute type, as `[train] precision`: bf16 or f16 (mixed
    /// precision: f32 master weights and accumulation; f16 with loss
    /// scaling), tf32 (f32 values, TF32 tensor-core matmuls) or f32
    /// (exact). Default: bf16 where the device has it (CUDA), else f32.
    #[arg(long)]
    precision: Option<String>,
    #[arg(long)]
    json: bool,
}

struct StepTask(prior_perf::step::StepBenchOptions, bool);

impl prior_runtime::device::OnDevice for StepTask {
    type Output = Result<prior_perf::step::StepBenchReport, prior_perf::step::StepBenchError>;
    fn run<R: prior_runtime::cubecl::Runtime>(
        self,
        client: prior_runtime::cubecl::prelude::ComputeClient<R>,
        device: &prior_runtime::DeviceInfo,
    ) -> Self::Output {
        let bar = ui::count_bar(0, "bench", self.1);
        let r = prior_perf::step::bench_step(client, &device.name, &self.0, &mut |d, t| {
            bar.set_length(t as u64);
            bar.set_position(d as u64);
        });
        bar.finish_and_clear();
        r
    }
}

fn step(a: StepArgs) -> Result<()> {
    let kind: DeviceKind = a.device.parse()?;
    anyhow::ensure!(
        [a.batch, a.seq, a.micro_batch]
            .iter()
            .all(|v| v.is_none_or(|v| v > 0))
            && a.steps > 0,
        "--batch, --seq, --micro-batch and --steps must be at least 1"
    );
    let o = prior_perf::step::StepBenchOptions {
        model: a.model,
        vocab: a.vocab,
        seq: a.seq,
        batch: a.batch,
        micro_batch: a.micro_batch,
        mix: a.mix,
        steps: a.steps,
        warmup: a.warmup,
        peak_flops: a.peak_tflops.map(|t| t * 1e12),
        kernels: !a.no_kernels,
        precision: a
            .precision
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| anyhow::anyhow!("--precision: {e}"))?,
    };
    let r = run_on(kind, StepTask(o, a.json))??;
    if a.json {
        return ui::print_json(&r);
    }
    println!(
        "{} on {}: seq {} x batch {} (micro-batch {}), {} parameters, {}",
        r.model, r.device, r.seq, r.batch, r.micro_batch, r.parameters, r.precision
    );
    println!("  data: {}", r.data);
    println!("  device memory per micro-batch: {}", r.memory);
    println!(
        "  {:.0} tokens/s; step {:.1} ms mean, p50 {:.1}, p90 {:.1}, p99 {:.1} ({} steps)",
        r.tokens_per_s, r.step_ms.mean, r.step_ms.p50, r.step_ms.p90, r.step_ms.p99, r.steps
    );
    println!(
        "  model FLOPs/token {:.3e} = 6N {:.3e} + attention {:.3e}; achieved {:.3} TFLOP/s; MFU {}",
        r.flops_per_token.total,
        r.flops_per_token.six_n,
        r.flops_per_token.attention,
        r.achieved_flops / 1e12,
        match r.mfu {
            Some(m) => format!(
                "{:.2}% of {:.0} TFLOP/s ({})",
                100.0 * m,
                r.peak_flops.unwrap_or(0.0) / 1e12,
                r.peak_source
            ),
            None => r.peak_source.clone(),
        }
    );
    let b = &r.breakdown;
    let total = r.step_ms.mean.max(1e-9);
    println!("  breakdown per step:");
    for (k, v) in [
        ("batch (loader)", b.loader_wait_ms),
        ("host -> device", b.h2d_ms),
        ("forward", b.forward_ms),
        ("backward", b.backward_ms),
        ("optimizer", b.optimizer_ms),
    ] {
        println!("    {k:<16} {v:>9.2} ms  {:>5.1}%", 100.0 * v / total);
    }
    if !r.classes.is_empty() {
        println!("  by kernel class (the profiled forward+backward, and the optimizer step):");
        for c in &r.classes {
            let rate = c
                .tflops
                .map(|t| format!("  {t:.4} TFLOP/s"))
                .unwrap_or_default();
            println!(
                "    {:<12} {:>10.2} ms {:>6.1}%{rate}",
                c.class,
                c.ms,
                c.share * 100.0
            );
        }
    }
    if !r.kernels.is_empty() {
        println!("  kernels (one profiled forward+backward, each kernel synced):");
        for k in &r.kernels {
            println!(
                "    {:<32} {:>9.2} ms  {:>5.1}%  x{}",
                k.kernel,
                k.ms,
                100.0 * k.share,
                k.launches
            );
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct KernelsArgs {
    #[arg(long, default_value = "auto")]
    device: String,
    /// Layer sizes: small, pythia-160m or pythia-1b (default: small on wgpu,
    /// pythia-160m on CUDA).
    #[arg(long)]
    shape: Option<String>,
    /// Timed runs per kernel (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Kernels(a) => kernels(a),
        BenchCommand::Step(a) => step(a),
    }
}

fn kernels(a: KernelsArgs) -> Result<()> {
    let kind: DeviceKind = a.device.parse()?;
    let choice = choose(kind)?;
    let name = a.shape.clone().unwrap_or_else(|| {
        if choice.kind == DeviceKind::Cuda {
            "pythia-160m"
        } else {
            "small"
        }
        .to_string()
    });
    let shape = SHAPES
        .iter()
        .find(|s| s.name == name)
        .copied()
        .ok_or_else(|| anyhow!("unknown --shape {name:?} (small, pythia-160m, pythia-1b)"))?;
    let timings = run_on(
        kind,
        BenchTask {
            shape,
            reps: a.reps.max(1),
        },
    )??;
    if a.json {
        return ui::print_json(
            &json!({"device": choice.kind.to_string(), "shape": shape, "kernels": timings}),
        );
    }
    println!(
        "device {} ({}), shape {} (f32, median of {} runs)",
        choice.kind, choice.reason, shape.name, a.reps
    );
    println!("{:<16} {:>10} {:>12}  size", "kernel", "ms", "rate");
    for t in &timings {
        let beside = t.baseline.as_ref().map_or(String::new(), |b| {
            format!("; {} {:.3} ms, speedup {:.2}x", b.name, b.ms, b.speedup)
        });
        println!(
            "{:<16} {:>10.3} {:>8.3} {:<8} {}{beside}",
            t.name, t.ms, t.rate, t.unit, t.what
        );
    }
    Ok(())
}
