//! `prior bench ...`: device-side benchmarks.

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
        println!(
            "{:<16} {:>10.3} {:>8.3} {:<8} {}",
            t.name, t.ms, t.rate, t.unit, t.what
        );
    }
    Ok(())
}
