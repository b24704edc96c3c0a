//! `prior runtime ...`: devices and kernel checks.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use prior_runtime::check::{summarize, F32_TOLERANCE};
use prior_runtime::device::{choose, probe_cuda, run_on, DeviceKind};
use prior_runtime::CheckTask;
use serde_json::json;

use crate::ui;

#[derive(Subcommand)]
pub enum RuntimeCommand {
    /// Run every kernel forward and backward on fresh random inputs against
    /// the CPU reference; exits non-zero if any fails.
    Check(CheckArgs),
    /// Show which device `auto` picks and why.
    Devices,
}

#[derive(Args)]
pub struct CheckArgs {
    /// auto (CUDA if a driver and device are present, else wgpu), cuda or wgpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Seed of the random inputs (default: fresh each run; printed).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: RuntimeCommand) -> Result<()> {
    match cmd {
        RuntimeCommand::Check(a) => check(a),
        RuntimeCommand::Devices => {
            let p = probe_cuda();
            match &p.missing {
                None => println!("cuda: {} device(s)", p.devices),
                Some(why) => println!("cuda: unavailable ({why})"),
            }
            let c = choose(DeviceKind::Auto)?;
            println!("auto -> {} ({})", c.kind, c.reason);
            Ok(())
        }
    }
}

fn check(a: CheckArgs) -> Result<()> {
    let kind: DeviceKind = a.device.parse()?;
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let choice = choose(kind)?;
    let results = run_on(kind, CheckTask { seed })?;
    let summary = summarize(&results);
    let failed = summary.failed;
    if a.json {
        ui::print_json(&json!({
            "device": choice.kind.to_string(),
            "reason": choice.reason,
            "seed": seed,
            "tolerance": F32_TOLERANCE,
            "passed": summary.passed,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "kernels": results,
        }))?;
    } else {
        println!(
            "device {} ({}), seed {seed}, f32, tolerance {F32_TOLERANCE:e}",
            choice.kind, choice.reason
        );
        println!("{:<24} {:>6} {:>12}  cases", "kernel", "ok", "max_rel_err");
        for r in &results {
            println!(
                "{:<24} {:>6} {:>12.3e}  {}{}",
                r.name,
                match (r.ok, &r.skipped) {
                    (_, Some(_)) => "skip",
                    (true, None) => "ok",
                    (false, None) => "FAIL",
                },
                r.max_rel_err,
                r.cases.join("; "),
                r.error
                    .as_ref()
                    .map(|e| format!("  error: {e}"))
                    .or_else(|| r.skipped.as_ref().map(|why| format!("skipped: {why}")))
                    .unwrap_or_default()
            );
        }
        println!(
            "{} checks: {} passed, {} skipped, {} failed",
            results.len(),
            summary.passed,
            summary.skipped,
            summary.failed
        );
    }
    if failed > 0 {
        bail!(
            "{failed} kernel check(s) failed on {} (seed {seed})",
            choice.kind
        );
    }
    Ok(())
}
