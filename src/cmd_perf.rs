//! `prior perf report`: a training run's metrics as an HTML report.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};

use crate::ui;

#[derive(Subcommand)]
pub enum PerfCommand {
    /// Turn a run's metrics.jsonl into report.html (throughput, stall share, loss).
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// A training run's checkpoint_dir (or its metrics.jsonl).
    run: PathBuf,
    /// Where to write the HTML (default: <run>/report.html).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: PerfCommand) -> Result<()> {
    match cmd {
        PerfCommand::Report(a) => report(a),
    }
}

fn report(a: ReportArgs) -> Result<()> {
    let (html, s) = prior_perf::report::run_report(&a.run).map_err(|e| anyhow!(e))?;
    let out = a.out.unwrap_or_else(|| {
        if a.run.is_dir() {
            a.run.join("report.html")
        } else {
            a.run.with_file_name("report.html")
        }
    });
    prior_data::atomic::write_atomic(&out, html.as_bytes())?;
    if a.json {
        return ui::print_json(&serde_json::json!({ "report": out, "summary": s }));
    }
    println!(
        "{} steps: {:.0} tokens/s mean (p10 {:.0}, p90 {:.0}), step p50 {:.1} ms, p99 {:.1} ms, loader stall {:.2}%, loss {:.4} -> {:.4}",
        s.steps, s.tokens_per_s_mean, s.tokens_per_s_p10, s.tokens_per_s_p90, s.step_ms_p50, s.step_ms_p99,
        100.0 * s.stall_share, s.first_loss, s.final_loss
    );
    println!("report: {}", out.display());
    Ok(())
}
