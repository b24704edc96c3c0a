//! `prior train`: train a model from a mix (see prior-model's trainer).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prior_model::train::{train_data_parallel, StepMetrics, TrainConfig, TrainSummary};
use prior_runtime::device::{run_on_index, OnDevice};
use prior_runtime::dist::{rendezvous, Group, Placement};
use prior_runtime::{DeviceInfo, DeviceKind};
use std::io::IsTerminal;
use std::time::Duration;

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
    /// Seconds a data-parallel rank waits for the others (to join, or at
    /// any step) before it stops with an error naming the rank it waited
    /// for. The launcher's variables (torchrun, srun, mpirun) set the rank
    /// and world; see docs/distributed.md.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    dist_timeout: f64,
}

struct TrainTask {
    cfg: TrainConfig,
    text: String,
    resume: bool,
    quiet: bool,
    group: Group,
}

impl TrainTask {
    /// The progress bar of rank 0 on a terminal (hidden elsewhere) and the
    /// callback that moves it.
    fn progress(&self) -> ProgressBar {
        let bar = ProgressBar::new(self.cfg.train.steps);
        if self.quiet || self.group.rank() != 0 || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("train [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        bar
    }
}

fn show_step(bar: &ProgressBar, m: &StepMetrics) {
    bar.set_position(m.step);
    bar.set_message(format!("loss {:.4}, {:.0} tok/s", m.loss, m.tokens_per_s));
}

impl OnDevice for TrainTask {
    type Output = Result<TrainSummary, prior_model::train::TrainError>;
    fn run<R: prior_runtime::cubecl::Runtime>(
        mut self,
        client: prior_runtime::cubecl::prelude::ComputeClient<R>,
        device: &DeviceInfo,
    ) -> Self::Output {
        let bar = self.progress();
        // An error here is the run's too: it reports it, with its context.
        if let (false, Ok((precision, plan))) = (
            self.quiet,
            prior_model::train::memory_plan(&client, &self.cfg, self.group.world()),
        ) {
            eprintln!(
                "train: {precision} on {}; device memory: {plan}",
                device.name
            );
        }
        let r = train_data_parallel(
            client,
            &device.name,
            &self.cfg,
            &self.text,
            self.resume,
            &mut self.group,
            &mut |m| show_step(&bar, m),
        );
        bar.finish_and_clear();
        r
    }

    fn run_native(mut self, device: &DeviceInfo) -> Result<Self::Output, Self> {
        // The native backend trains in f32 in one process; for anything
        // else `auto` takes wgpu (and `cpu` asked for says why not).
        let can = prior_model::native::can_train(&self.cfg.train, self.group.world());
        if device.auto && !can {
            return Err(self);
        }
        let bar = self.progress();
        // Where it cannot, train_native refuses with the reason.
        if !self.quiet && can {
            eprintln!("train: f32 on {}", prior_model::native::device_name());
        }
        let r = prior_model::train::train_native(
            &self.cfg,
            &self.text,
            self.resume,
            &mut self.group,
            &mut |m| show_step(&bar, m),
        );
        bar.finish_and_clear();
        Ok(r)
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
    let place = Placement::from_env()?;
    if !(a.dist_timeout > 0.0 && a.dist_timeout.is_finite()) {
        anyhow::bail!(
            "--dist-timeout: {} is not a positive number of seconds",
            a.dist_timeout
        );
    }
    // A rank joins only a job with its own config, mix and precision.
    // (Every rank runs this binary, so std's fixed-key hasher agrees.)
    let job = if place.world == 1 {
        0
    } else {
        use std::hash::{Hash, Hasher};
        let (spec, _) = prior_loader::MixSpec::load(&cfg.data.mix)?;
        let mut h = std::hash::DefaultHasher::new();
        (&text, format!("{:?}", cfg.train.precision), spec.key).hash(&mut h);
        h.finish()
    };
    if place.world > 1 {
        eprintln!("train: {}", place.describe());
    }
    let (group, _) = rendezvous::join(&place, job, &[], Duration::from_secs_f64(a.dist_timeout))?;
    if place.world > 1 && place.rank == 0 {
        let nccl = match prior_runtime::dist::nccl::probe() {
            Ok(found) => format!("{found} found, not used yet"),
            Err(_) => "no NCCL found".into(),
        };
        eprintln!(
            "train: {} ranks joined (host collective: gradients summed on rank 0 in rank order and scattered, AdamW moments sharded ZeRO-1; {nccl})",
            place.world
        );
    }
    let task = TrainTask {
        cfg,
        text,
        resume: a.resume,
        quiet: a.json,
        group,
    };
    let summary = run_on_index(kind, place.local_rank as usize, task)??;
    if a.json {
        return ui::print_json(&summary);
    }
    if place.rank != 0 {
        println!(
            "rank {} of {}: trained to step {} (rank 0 writes metrics and checkpoints)",
            place.rank, place.world, summary.steps
        );
        return Ok(());
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
