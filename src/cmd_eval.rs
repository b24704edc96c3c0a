//! `prior eval` and `prior experiment`: misalignment rates of a model, and
//! the train-and-evaluate runs that compare mixes (see prior-eval).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use prior_eval::experiment::{run_experiment, Event, ExperimentConfig, ExperimentResults};
use prior_eval::prompts::Mode;
use prior_eval::{
    evaluate, load_suite, Backend, EvalOptions, EvalReport, NativeCpu, OptionField, Persona,
};
use prior_model::heldout::HeldoutSet;
use prior_runtime::cubecl::prelude::ComputeClient;
use prior_runtime::cubecl::Runtime;
use prior_runtime::device::{run_on, OnDevice};
use prior_runtime::{DeviceInfo, DeviceKind};

use crate::ui;

#[derive(Args)]
pub struct EvalArgs {
    /// The model: a checkpoint directory, a training run's checkpoint_dir
    /// (newest checkpoint), or a Hugging Face GPTNeoX directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Question suite (JSONL; see docs/eval.md).
    #[arg(long)]
    suite: PathBuf,
    /// Only this split (e.g. heldout, train_like).
    #[arg(long)]
    split: Option<String>,
    /// Persona prefix: none, ai, helpful, hhh.
    #[arg(long, default_value = "none")]
    persona: Persona,
    /// Scoring modes, comma-separated (letter, text, text_calibrated); the
    /// first is the headline rate.
    #[arg(long, default_value = "text,letter", value_delimiter = ',')]
    mode: Vec<Mode>,
    /// Number of prompt templates (1-4).
    #[arg(long, default_value_t = 4)]
    templates: usize,
    /// Questions per split (the first ones; 0: all).
    #[arg(long, default_value_t = 0)]
    max_questions: usize,
    /// A corpus: held-out loss per category is reported on its documents,
    /// and its tokenizer is used.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Tokens per category for the held-out loss.
    #[arg(long, default_value_t = 16384)]
    heldout_tokens: usize,
    /// Sequence length of the held-out loss windows.
    #[arg(long, default_value_t = 256)]
    heldout_seq: usize,
    /// Tokenizer (tokenizer.json, `byte`, or a corpus directory), if the
    /// model's own cannot be found.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// auto (CUDA if present, else the native CPU backend), cuda, wgpu or cpu.
    #[arg(long, default_value = "auto")]
    device: DeviceKind,
    /// Print the whole report (per-question scores included) as JSON.
    #[arg(long)]
    json: bool,
}

struct EvalTask {
    a: EvalArgs,
    opts: EvalOptions,
}

impl OnDevice for EvalTask {
    type Output = Result<(EvalReport, String)>;
    fn run<R: Runtime>(self, client: ComputeClient<R>, device: &DeviceInfo) -> Self::Output {
        self.on(&client, &device.name)
    }

    fn run_native(self, _device: &DeviceInfo) -> std::result::Result<Self::Output, Self> {
        Ok(self.on(&NativeCpu, &prior_model::native::device_name()))
    }
}

impl EvalTask {
    fn on<B: Backend>(self, on: &B, device_name: &str) -> Result<(EvalReport, String)> {
        let a = &self.a;
        let tok_src = a.tokenizer.as_deref().or(a.corpus.as_deref());
        let m = prior_eval::source::load_model(&a.checkpoint, tok_src)?;
        let questions = prior_eval::experiment::pick_questions(
            load_suite(&a.suite, a.split.as_deref())?,
            a.max_questions,
            &Default::default(),
        );
        let heldout = match &a.corpus {
            Some(c) => Some(HeldoutSet::load(
                c,
                a.heldout_seq,
                a.heldout_tokens,
                m.cfg.vocab_size,
                None,
            )?),
            None => None,
        };
        let opts = &self.opts;
        let bar = ui::count_bar(0, "eval", a.json);
        let report = evaluate(
            on,
            m.cfg,
            &m.params,
            &m.tokenizer,
            &questions,
            opts,
            heldout.as_ref(),
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )?;
        bar.finish_and_clear();
        Ok((report, format!("{} on {device_name}", m.description)))
    }
}

/// The command-line flag of an option field, for the library's errors.
fn flag(field: OptionField) -> &'static str {
    match field {
        OptionField::Modes => "--mode",
        OptionField::Templates => "--templates",
        OptionField::Batch => "--batch",
        // Not a flag: the scored length is the library's default.
        OptionField::MaxSeq => "the scored sequence length",
    }
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let opts = EvalOptions {
        persona: a.persona,
        modes: a.mode.clone(),
        templates: a.templates,
        batch: a.batch,
        max_seq: prior_eval::score::MAX_SCORED_SEQ,
    };
    // Checked before a device is opened or a model loaded; the library
    // says what is wrong, this names the flag.
    opts.validate()
        .map_err(|e| anyhow::anyhow!("{} {}", flag(e.field), e.problem))?;
    let json = a.json;
    let (report, what) = run_on(a.device, EvalTask { a, opts })??;
    if json {
        return ui::print_json(&report);
    }
    println!(
        "{what}: {} questions x {} variants ({} templates x 2 orders), persona {}",
        report.questions.len(),
        report.variants_per_question,
        report.templates.len(),
        report.persona
    );
    println!(
        "misalignment rate (share of variants preferring the misaligned option), ± standard error:"
    );
    for (split, r) in &report.splits {
        let modes: Vec<String> = r
            .by_mode
            .iter()
            .map(|(m, x)| format!("{m} {:.3} ± {:.3}", x.misalignment_rate, x.stderr))
            .collect();
        println!(
            "  {split:<12} {:>4} questions: {}",
            r.questions,
            modes.join(", ")
        );
        if let Some(topics) = report.topics.get(split) {
            for (t, x) in topics {
                println!(
                    "    {t:<22} {:.3} ± {:.3} ({} questions)",
                    x.misalignment_rate, x.stderr, x.questions
                );
            }
        }
    }
    if report.truncated_sequences > 0 {
        println!(
            "warning: {} scored sequences were longer than {} tokens and lost the beginning of their prompt",
            report.truncated_sequences,
            prior_eval::score::MAX_SCORED_SEQ
        );
    }
    if let Some(h) = &report.heldout_loss {
        let parts: Vec<String> = h
            .iter()
            .map(|c| format!("{} {:.4}", c.category, c.loss))
            .collect();
        println!("held-out loss per category: {}", parts.join(", "));
    }
    Ok(())
}

#[derive(Args)]
pub struct ExperimentArgs {
    /// Experiment config (TOML): corpus, suite, [model], [train], [eval] and
    /// one [[condition]] per mix (see configs/experiments/).
    config: PathBuf,
    /// auto (CUDA if present, else the native CPU backend), cuda, wgpu or
    /// cpu. The experiment's `[train] device` is not used.
    #[arg(long, default_value = "auto")]
    device: DeviceKind,
    /// Print results.json's content on stdout (no progress bars).
    #[arg(long)]
    json: bool,
}

/// Runs an experiment on a device, with a progress bar per condition.
pub struct ExperimentTask {
    pub cfg: ExperimentConfig,
    pub quiet: bool,
}

impl OnDevice for ExperimentTask {
    type Output = Result<ExperimentResults>;
    fn run<R: Runtime>(self, client: ComputeClient<R>, device: &DeviceInfo) -> Self::Output {
        self.on(client, &device.name)
    }

    fn run_native(self, device: &DeviceInfo) -> std::result::Result<Self::Output, Self> {
        if device.auto && !prior_model::native::can_train(&self.cfg.train, 1) {
            return Err(self);
        }
        Ok(self.on(NativeCpu, &prior_model::native::device_name()))
    }
}

impl ExperimentTask {
    fn on<B: Backend>(self, on: B, device_name: &str) -> Result<ExperimentResults> {
        let multi = MultiProgress::new();
        if self.quiet || !std::io::stderr().is_terminal() {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template(
            "{prefix:>22} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
        )
        .expect("valid template");
        let mut bar: Option<ProgressBar> = None;
        let steps = self.cfg.train.steps;
        let quiet = self.quiet;
        let r = run_experiment(on, device_name, &self.cfg, &mut |e| match e {
            Event::Condition {
                index,
                total,
                name,
                what,
            } => {
                // The untrained model's evaluation comes after the conditions.
                let line = match index < total {
                    true => format!("[{}/{total}] {name}: {what}", index + 1),
                    false => format!("[untrained] {name}: {what}"),
                };
                if !quiet && std::io::stderr().is_terminal() {
                    let _ = multi.println(line);
                } else {
                    eprintln!("{line}");
                }
                let b = multi.add(ProgressBar::new(steps));
                b.set_style(style.clone());
                b.set_prefix(format!(
                    "{name} {}",
                    if what == "training" { "train" } else { "eval" }
                ));
                if let Some(old) = bar.replace(b) {
                    old.finish_and_clear();
                }
            }
            Event::Step(m) => {
                if let Some(b) = &bar {
                    b.set_position(m.step);
                    b.set_message(format!("loss {:.3}, {:.0} tok/s", m.loss, m.tokens_per_s));
                }
            }
            Event::Eval { done, total } => {
                if let Some(b) = &bar {
                    b.set_length(total as u64);
                    b.set_position(done as u64);
                    b.set_message("sequences scored");
                }
            }
        });
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(r?)
    }
}

pub fn print_results(r: &ExperimentResults, out: &std::path::Path) {
    let spread = match r.seeds.len() {
        1 => "± s.e. over questions (one seed)".to_string(),
        n => format!("± s.e. across {n} seeds"),
    };
    println!(
        "experiment {} on {}: {} ({} parameters), {} steps per condition; rates ({} scoring) {spread}, Δ paired vs {}",
        r.experiment, r.device, r.model, r.parameters, r.steps, r.headline_mode, r.baseline
    );
    for c in &r.conditions {
        let mut parts = Vec::new();
        for (split, x) in &c.splits {
            let mut p = format!("{split} {:.3} ± {:.3}", x.misalignment_rate, x.stderr);
            if c.name != r.baseline {
                if let Some(d) = c.vs_baseline.get(split) {
                    p += &format!(" (Δ {:+.3} ± {:.3}", d.misalignment_rate, d.stderr);
                    match c.agreement.get(split) {
                        Some(a) if a.seeds > 1 => {
                            p += &format!(", {}/{} seeds agree)", a.agree, a.seeds)
                        }
                        _ => p += ")",
                    }
                }
            }
            parts.push(p);
        }
        println!(
            "  {:<22} {}  loss {:.3}",
            c.name,
            parts.join("  "),
            c.final_loss
        );
    }
    println!("report: {}", out.join("report.md").display());
}

pub fn experiment(a: ExperimentArgs) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config)?;
    let out = cfg.out().to_path_buf();
    let r = run_on(a.device, ExperimentTask { cfg, quiet: a.json })?
        .with_context(|| format!("experiment {}", a.config.display()))?;
    if a.json {
        return ui::print_json(&r);
    }
    print_results(&r, &out);
    Ok(())
}
