//! `prior train`: train a model from a mix (see prior-model's trainer).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prior_model::train::{train, StepMetrics, TrainConfig, TrainSummary};
use prior_runtime::device::{run_on, OnDevice};
use prior_runtime::{DeviceInfo, DeviceKind};
use std::io::IsTerminal;

use crate::ui;

#[derive(Args)]
pub struct TrainArgs {
    /// Training config (TOML): [model], [data] mix = ..., [train].
    config: PathBuf,
    /// Continue from the newest whole checkpoint in train.checkpoint_dir.
    #[arg(long)]
    resume: bool,
    /// The compute type, overriding `[train] precision`: bf16 or f16
    /// (activations and matmul operands in that type, f32 master weights,
    /// gradients and optimizer; f16 with dynamic loss scaling), tf32 or
    /// f32. Default: bf16 where the device has it (CUDA), else f32.
    #[arg(long)]
    precision: Option<String>,
    /// Print the summary as JSON (no progress bar).
    #[arg(long)]
    json: bool,
}

struct TrainTask {
    cfg: TrainConfig,
    text: String,
    resume: bool,
    quiet: bool,
}

impl OnDevice for TrainTask {
    type Output = Result<TrainSummary, prior_model::train::TrainError>;
    fn run<R: prior_runtime::cubecl::Runtime>(
        self,
        client: prior_runtime::cubecl::prelude::ComputeClient<R>,
        device: &DeviceInfo,
    ) -> Self::Output {
        let bar = ProgressBar::new(self.cfg.train.steps);
        if self.quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("train [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        // An error here is the run's too: it reports it, with its context.
        if let (false, Ok((precision, plan))) = (
            self.quiet,
            prior_model::train::memory_plan(&client, &self.cfg),
        ) {
            eprintln!(
                "train: {precision} on {}; device memory: {plan}",
                device.name
            );
        }
        let mut on_step = |m: &StepMetrics| {
            bar.set_position(m.step);
            bar.set_message(format!("loss {:.4}, {:.0} tok/s", m.loss, m.tokens_per_s));
        };
        let r = train(
            client,
            &device.name,
            &self.cfg,
            &self.text,
            self.resume,
            &mut on_step,
        );
        bar.finish_and_clear();
        r
    }
}

pub fn run(a: TrainArgs) -> Result<()> {
    let (mut cfg, text) = TrainConfig::load(&a.config)?;
    if let Some(p) = &a.precision {
        cfg.train.precision = Some(
            p.parse()
                .map_err(|e: String| anyhow::anyhow!("--precision: {e}"))?,
        );
    }
    let kind: DeviceKind = cfg.train.device.parse()?;
    let task = TrainTask {
        cfg,
        text,
        resume: a.resume,
        quiet: a.json,
    };
    let summary = run_on(kind, task)??;
    if a.json {
        return ui::print_json(&summary);
    }
    println!(
        "trained to step {}{} on {}: final loss {:.4}; checkpoint {}",
        summary.steps,
        summary
            .resumed_from
            .map(|s| format!(" (resumed from step {s})"))
            .unwrap_or_default(),
        summary.device,
        summary.final_loss,
        summary.checkpoint.as_deref().unwrap_or("none")
    );
    Ok(())
}
