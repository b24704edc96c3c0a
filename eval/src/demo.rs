//! The demo: the whole study from nothing, on any machine. Synthesize a
//! discourse corpus and its question suite, train a small BPE tokenizer,
//! ingest, run the AI-discourse filter, build a held-out corpus, and write
//! the five-condition experiment (unfiltered, filtered, aligned and
//! misaligned upsampled, late aligned) for a small model; `prior demo`
//! then runs it with [`crate::experiment`] and prints the results.
//!
//! The data stages are built under `<out>/data.tmp` and renamed to
//! `<out>/data` when all are done, so a re-run reuses finished data and
//! never a half-built one (the plan they were built for is kept beside
//! them, and other sizes rebuild them); the experiment resumes condition by
//! condition.

use std::path::{Path, PathBuf};
use std::time::Instant;

use prior_data::corpus::WriteOptions;
use prior_data::corpus_filter::filter_category;
use prior_data::filter::Blocklist;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::synth::{write_synth, SynthConfig};
use prior_data::tokenizer::{train_bpe, Tokenizer, TrainConfig};
use serde::Serialize;

use crate::experiment::ExperimentConfig;
use crate::EvalError;

/// The sizes of one demo flavour.
#[derive(Debug, Clone, Serialize)]
pub struct DemoPlan {
    pub docs: usize,
    pub heldout_docs: usize,
    pub vocab: u32,
    pub seq_len: u32,
    pub global_batch: u32,
    pub steps: u64,
    pub preset: &'static str,
    pub d_model: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub lr: f32,
    /// Share of aligned (or misaligned) documents in the upsampled mixes.
    pub upsample: f64,
    pub late_fraction: f64,
    pub late_share: f64,
    /// Held-out questions (the split the experiment is about).
    pub max_questions: usize,
    pub train_like_questions: usize,
    pub templates: usize,
}

impl DemoPlan {
    pub fn new(quick: bool) -> DemoPlan {
        // Sized for a 2-core machine without a GPU: the micro model trains
        // at about 50k tokens/s there on the native CPU backend (3 seeds of
        // the five conditions in about 6 minutes). The upsampled
        // share is far above the paper's ~1% because these models see
        // under a million tokens, not billions.
        let full = DemoPlan {
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
            DemoPlan {
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

    pub fn experiment_toml(&self, seeds: u64) -> String {
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

/// Builds (or reuses) the demo's data under `out/data` and writes
/// `out/experiment.toml` for `seeds` seeds; returns the experiment to run.
/// `say` receives one line per stage, for the caller to print.
pub fn prepare(
    out: &Path,
    quick: bool,
    seeds: u64,
    say: &mut dyn FnMut(String),
) -> Result<(DemoPlan, ExperimentConfig), EvalError> {
    let plan = DemoPlan::new(quick);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let data = out.join("data");
    let plan_path = out.join("plan.json");
    let plan_json = serde_json::to_string_pretty(&plan).expect("a plan serializes");
    let same_plan = std::fs::read_to_string(&plan_path).is_ok_and(|p| p == plan_json);
    if data.join("corpus").is_dir() && same_plan {
        say(format!("== data: reusing {}", data.display()));
    } else {
        say(format!(
            "== data: {} documents, a {}-token BPE tokenizer, corpus and held-out corpus",
            plan.docs, plan.vocab
        ));
        let tmp = out.join("data.tmp");
        // Whatever an earlier run left is rebuilt: a half-built data.tmp,
        // data for another plan, and the experiment trained on it.
        for stale in [&tmp, &data, &out.join("experiment")] {
            match std::fs::remove_dir_all(stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(stale)(e));
                }
                _ => {}
            }
        }
        build_data(&tmp, &plan, say)?;
        std::fs::rename(&tmp, &data).map_err(io(&tmp))?;
        prior_data::atomic::write_atomic(&plan_path, plan_json.as_bytes())?;
    }
    let exp_path = out.join("experiment.toml");
    prior_data::atomic::write_atomic(&exp_path, plan.experiment_toml(seeds).as_bytes())?;
    let cfg = ExperimentConfig::load(&exp_path)?;
    say(format!(
        "== experiment: 5 conditions x {} seed{} x {} steps of {} tokens ({} model), then {} held-out and {} train-like questions",
        seeds,
        if seeds == 1 { "" } else { "s" },
        plan.steps,
        plan.seq_len * plan.global_batch,
        plan.preset,
        plan.max_questions,
        plan.train_like_questions
    ));
    Ok((plan, cfg))
}

/// Synthesizes, tokenizes, ingests and filters into `dir`.
fn build_data(dir: &Path, plan: &DemoPlan, say: &mut dyn FnMut(String)) -> Result<(), EvalError> {
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
    say(format!(
            "  synthesized {} general ({} discuss AI), {} aligned, {} misaligned documents and {} questions",
            s.general, s.general_ai_discourse, s.aligned, s.misaligned, s.eval_questions
    ));
    let files = |d: &Path| -> Vec<PathBuf> {
        ["general", "aligned", "misaligned"]
            .iter()
            .map(|c| d.join(format!("{c}.jsonl")))
            .collect()
    };
    let tok_path = dir.join("tokenizer.json");
    let ts = train_bpe(&files(&synth), &TrainConfig::new(plan.vocab), &tok_path)?;
    say(format!(
        "  trained a {}-token BPE tokenizer in {:.1} s",
        ts.vocab_size, ts.seconds
    ));
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
    say(format!(
            "  ingested both corpora; the AI-discourse filter flagged {} of {} general documents ({:.2}% of tokens)",
            f.flagged_documents,
            f.documents,
            100.0 * f.flagged_token_share
    ));
    say(format!(
        "  data ready in {:.0} s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}
