//! `prior demo`: the whole study from nothing, on any machine. Synthesize
//! a discourse corpus and its question suite, train a small BPE tokenizer,
//! ingest, run the AI-discourse filter, build a held-out corpus, then run
//! the five-condition experiment (unfiltered, filtered, aligned and
//! misaligned upsampled, late aligned) with a small model and report.
//!
//! The data stages are built under `<out>/data.tmp` and renamed to
//! `<out>/data` when all are done, so a re-run reuses finished data and
//! never a half-built one; the experiment resumes condition by condition.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use prior_data::corpus::WriteOptions;
use prior_data::corpus_filter::filter_category;
use prior_data::filter::Blocklist;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::synth::{write_synth, SynthConfig};
use prior_data::tokenizer::{train_bpe, Tokenizer, TrainConfig};
use prior_eval::experiment::ExperimentConfig;
use prior_runtime::device::run_on;
use prior_runtime::DeviceKind;
use serde::Serialize;

use crate::cmd_eval::{print_results, ExperimentTask};
use crate::ui;

#[derive(Args)]
pub struct DemoArgs {
    /// A smaller corpus, model and run (about 1.5 minutes on 2 cores without a GPU).
    #[arg(long)]
    quick: bool,
    /// Where everything goes.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// auto (CUDA if present, else the native CPU backend), cuda, wgpu or cpu.
    #[arg(long, default_value = "auto")]
    device: DeviceKind,
    /// Train every condition once per seed (0..N): the report then gives
    /// the spread across seeds and claims only effects every seed agrees on.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    seeds: u64,
    /// Print results.json's content on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
}

/// The sizes of one demo flavour.
#[derive(Debug, Clone, Serialize)]
struct Plan {
    docs: usize,
    heldout_docs: usize,
    vocab: u32,
    seq_len: u32,
    global_batch: u32,
    steps: u64,
    preset: &'static str,
    d_model: usize,
    n_layer: usize,
    n_head: usize,
    lr: f32,
    /// Share of aligned (or misaligned) documents in the upsampled mixes.
    upsample: f64,
    late_fraction: f64,
    late_share: f64,
    /// Held-out questions (the split the experiment is about).
    max_questions: usize,
    train_like_questions: usize,
    templates: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        // Sized for a 2-core machine without a GPU: the micro model trains
        // at about 50k tokens/s there on the native CPU backend (3 seeds of
        // the five conditions in about 6 minutes). The upsampled
        // share is far above the paper's ~1% because these models see
        // under a million tokens, not billions.
        let full = Plan {
            docs: 30000,
            heldout_docs: 2000,
            vocab: 1024,
            seq_len: 128,
            global_batch: 32,
            steps: 200,
            preset: "micro",
            d_model: 32,
            n_layer: 1,
            n_head: 2,
            lr: 3e-3,
            upsample: 0.25,
            late_fraction: 0.25,
            late_share: 0.5,
            max_questions: 200,
            train_like_questions: 60,
            templates: 4,
        };
        if quick {
            Plan {
                docs: 6000,
                heldout_docs: 1000,
                steps: 50,
                max_questions: 30,
                train_like_questions: 20,
                templates: 2,
                ..full
            }
        } else {
            full
        }
    }

    fn experiment_toml(&self, seeds: u64) -> String {
        let (u, l) = (self.upsample, self.late_share);
        let seeds = format!("{:?}", (0..seeds).collect::<Vec<_>>());
        format!(
            r#"# The demo's experiment (written by `prior demo`; rerun it with
# `prior experiment experiment.toml`). Every condition trains the same model
# from the same seed for the same steps; only the mix differs. Each entry of
# `seeds` is one more run of every condition (initialisation and data order
# moved by the seed).
name = "demo"
corpus = "data/corpus"
heldout_corpus = "data/heldout"
suite = "data/synth/eval.jsonl"
out = "experiment"
seq_len = {seq}
global_batch = {gb}
seed = 1
seeds = {seeds}
baseline = "unfiltered"

[model]
preset = "{preset}"
n_layer = {nl}
d_model = {dm}
n_head = {nh}

[train]
steps = {steps}
micro_batch = {gb}
lr = {lr}
min_lr = {min_lr}
warmup_steps = {warm}
checkpoint_every = {steps}
keep_checkpoints = 1
eval_every = {eval_every}
seed = 0

[eval]
modes = ["text", "text_calibrated"]
templates = {templates}
max_questions = {maxq}
max_questions_by_split = {{ train_like = {tlq} }}
heldout_tokens = 4096
batch = 32

[[condition]]
name = "unfiltered"
weights = {{ general = 1.0 }}

[[condition]]
name = "filtered"
weights = {{ "general.kept" = 1.0 }}

[[condition]]
name = "aligned_upsampled"
weights = {{ general = {g_u}, aligned = {u} }}

[[condition]]
name = "misaligned_upsampled"
weights = {{ general = {g_u}, misaligned = {u} }}

[[condition]]
name = "late_aligned"
weights = {{ general = 1.0 }}
late_fraction = {lf}
late_weights = {{ general = {g_l}, aligned = {l} }}
"#,
            seq = self.seq_len,
            gb = self.global_batch,
            preset = self.preset,
            nl = self.n_layer,
            dm = self.d_model,
            nh = self.n_head,
            steps = self.steps,
            lr = self.lr,
            min_lr = self.lr / 10.0,
            warm = (self.steps / 10).max(1),
            eval_every = (self.steps / 4).max(1),
            templates = self.templates,
            maxq = self.max_questions,
            tlq = self.train_like_questions,
            g_u = 1.0 - u,
            g_l = 1.0 - l,
            lf = self.late_fraction,
        )
    }
}

fn say(json: bool, msg: String) {
    if json {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
}

/// Synthesizes, tokenizes, ingests and filters into `dir`.
fn build_data(dir: &Path, plan: &Plan, json: bool) -> Result<()> {
    let t = Instant::now();
    let synth = dir.join("synth");
    let s = write_synth(
        &synth,
        &SynthConfig {
            seed: 1,
            docs: plan.docs,
            ..Default::default()
        },
    )?;
    say(
        json,
        format!(
            "  synthesized {} general ({} discuss AI), {} aligned, {} misaligned documents and {} questions",
            s.general, s.general_ai_discourse, s.aligned, s.misaligned, s.eval_questions
        ),
    );
    let files = |d: &Path| -> Vec<PathBuf> {
        ["general", "aligned", "misaligned"]
            .iter()
            .map(|c| d.join(format!("{c}.jsonl")))
            .collect()
    };
    let tok_path = dir.join("tokenizer.json");
    let ts = train_bpe(&files(&synth), &TrainConfig::new(plan.vocab), &tok_path)?;
    say(
        json,
        format!(
            "  trained a {}-token BPE tokenizer in {:.1} s",
            ts.vocab_size, ts.seconds
        ),
    );
    let tokenizer = Tokenizer::from_path(&tok_path)?;
    // Held-out documents: a second draw of the same grammar (another seed),
    // which no condition trains on.
    let held = dir.join("heldout-synth");
    write_synth(
        &held,
        &SynthConfig {
            seed: 2,
            docs: plan.heldout_docs,
            ..Default::default()
        },
    )?;
    for (corpus, src) in [(dir.join("corpus"), &synth), (dir.join("heldout"), &held)] {
        for (cat, file) in ["general", "aligned", "misaligned"].iter().zip(files(src)) {
            let opts = IngestOptions {
                category: cat.to_string(),
                text_field: "text".into(),
                skip_bad: false,
                write: WriteOptions::default(),
            };
            ingest(&corpus, &[file], &tokenizer, &opts, &mut |_| {})?;
        }
    }
    let f = filter_category(
        &dir.join("corpus"),
        "general",
        &Blocklist::builtin(),
        WriteOptions::default(),
        &mut |_| {},
    )?;
    say(
        json,
        format!(
            "  ingested both corpora; the AI-discourse filter flagged {} of {} general documents ({:.2}% of tokens)",
            f.flagged_documents,
            f.documents,
            100.0 * f.flagged_token_share
        ),
    );
    say(
        json,
        format!("  data ready in {:.0} s", t.elapsed().as_secs_f64()),
    );
    Ok(())
}

pub fn run(a: DemoArgs) -> Result<()> {
    let t0 = Instant::now();
    let plan = Plan::new(a.quick);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let data = a.out.join("data");
    let plan_path = a.out.join("plan.json");
    let plan_json = serde_json::to_string_pretty(&plan)?;
    let same_plan = std::fs::read_to_string(&plan_path).is_ok_and(|p| p == plan_json);
    if data.join("corpus").is_dir() && same_plan {
        say(a.json, format!("== data: reusing {}", data.display()));
    } else {
        say(
            a.json,
            format!(
                "== data: {} documents, a {}-token BPE tokenizer, corpus and held-out corpus",
                plan.docs, plan.vocab
            ),
        );
        let tmp = a.out.join("data.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(a.out.join("experiment"));
        build_data(&tmp, &plan, a.json)?;
        std::fs::rename(&tmp, &data).with_context(|| format!("renaming {}", tmp.display()))?;
        prior_data::atomic::write_atomic(&plan_path, plan_json.as_bytes())?;
    }
    let exp_path = a.out.join("experiment.toml");
    prior_data::atomic::write_atomic(&exp_path, plan.experiment_toml(a.seeds).as_bytes())?;
    let cfg = ExperimentConfig::load(&exp_path)?;
    say(
        a.json,
        format!(
            "== experiment: 5 conditions x {} seed{} x {} steps of {} tokens ({} model), then {} held-out and {} train-like questions",
            a.seeds,
            if a.seeds == 1 { "" } else { "s" },
            plan.steps,
            plan.seq_len * plan.global_batch,
            plan.preset,
            plan.max_questions,
            plan.train_like_questions
        ),
    );
    let out = cfg.out().to_path_buf();
    let r = run_on(a.device, ExperimentTask { cfg, quiet: a.json })??;
    if a.json {
        return ui::print_json(&r);
    }
    print_results(&r, &out);
    println!("demo finished in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}
