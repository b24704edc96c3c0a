//! Experiments: one corpus, one model and trainer config, and a list of
//! conditions, each a change of the mix (filter the general data, upsample
//! aligned or misaligned discourse, insert it late). Every condition trains
//! with the same seeds and step count, so conditions differ only by what
//! they read; each is then evaluated on the same questions.
//!
//! With several `seeds`, every condition is trained once per seed (the
//! seed moves both the initialisation and the data order), each run is
//! compared with the baseline condition's run of the same seed, and the
//! results give the spread across seeds and how many seeds agree on the
//! sign of each difference: for models this small, seed-to-seed spread is
//! usually larger than the spread over questions.
//!
//! ```text
//! <out>/<condition>/mix.toml      the condition's mix (a `prior train`-ready spec), first seed;
//!                                 each further seed's run in <out>/<condition>/seed-<s>/
//! <out>/<condition>/train.toml    its training config
//! <out>/<condition>/train/        checkpoints and metrics.jsonl
//! <out>/<condition>/eval.json     its evaluation (per-question scores included)
//! <out>/untrained.eval.json  the untrained model's evaluation (the baseline of "no disposition")
//! <out>/results.json, report.md, *.svg
//! ```
//!
//! Re-running an experiment resumes it: a condition whose final checkpoint
//! exists is not retrained, and its evaluation is reused when it was made
//! from that checkpoint with the same settings. A file the resumed run
//! depends on (`mix.toml`, `eval.json`, the checkpoint's `state.json`,
//! `metrics.jsonl`) that cannot be read or parsed is an error naming it,
//! never a silent fallback: a fallback would redo work, or report numbers
//! that do not describe the run.
//!
//! Mixes are built as [`ConditionMix`] values and written with `toml`, so a
//! category name or path with quotes, backslashes or any Unicode comes back
//! exactly as given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use prior_data::atomic::write_atomic;
use prior_model::checkpoint::TrainState;
use prior_model::heldout::HeldoutSet;
use prior_model::metrics::{self, StepMetrics};
use prior_model::train::{DataSection, ModelSection, TrainConfig, TrainSection};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::prompts::{Mode, Persona};
use crate::report::{LossCurve, ReportInput};
use crate::results::one_seed;
// The results' types, where callers have always found them.
pub use crate::results::{ConditionResult, ExperimentResults, SeedResult, SignAgreement};
use crate::score::{
    evaluate, paired_difference, paired_difference_in, EvalOptions, EvalReport, SplitRate,
};
use crate::source::{finished_checkpoint, load_model};
use crate::suite::{load_suite, Question};
use crate::EvalError;

/// `[[condition]]`: a name and the mix it trains on.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub name: String,
    /// Category weights for the whole run (or until the late phase).
    pub weights: BTreeMap<String, f64>,
    /// Share of the final steps (0 < x < 1) trained on `late_weights`.
    pub late_fraction: Option<f64>,
    pub late_weights: Option<BTreeMap<String, f64>>,
}

/// `[eval]` of an experiment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    pub persona: String,
    /// Scoring modes; the first is the headline rate.
    pub modes: Vec<String>,
    pub templates: usize,
    /// Questions per split (0: all), the first ones in the suite's order.
    pub max_questions: usize,
    /// Per-split overrides of `max_questions`, e.g. `{ train_like = 60 }`.
    pub max_questions_by_split: BTreeMap<String, usize>,
    pub batch: usize,
    /// Tokens per category for the held-out loss.
    pub heldout_tokens: usize,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            persona: "none".into(),
            modes: vec!["text".into(), "letter".into()],
            templates: 4,
            max_questions: 0,
            max_questions_by_split: BTreeMap::new(),
            batch: 16,
            heldout_tokens: 16384,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub name: String,
    /// The corpus every condition reads (relative to this file).
    pub corpus: PathBuf,
    /// The question suite (JSONL).
    pub suite: PathBuf,
    /// A corpus of documents no condition trains on, for held-out loss.
    pub heldout_corpus: Option<PathBuf>,
    /// Output directory (default: `<name>` beside this file).
    pub out: Option<PathBuf>,
    pub seq_len: u32,
    pub global_batch: u32,
    /// Seed of the mix order (the model's is `train.seed`); the same for
    /// every condition.
    pub seed: u64,
    /// Replicates: each condition is trained once per entry, which is
    /// added to both `seed` (data order) and `train.seed`
    /// (initialisation). The default `[0]` is one run as configured.
    #[serde(default = "one_seed")]
    pub seeds: Vec<u64>,
    /// The condition the others are compared with (default: the first).
    pub baseline: Option<String>,
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub train: TrainSection,
    #[serde(default)]
    pub eval: EvalSection,
    #[serde(rename = "condition")]
    pub conditions: Vec<Condition>,
}

impl ExperimentConfig {
    /// Reads and checks an experiment; paths become relative to its file.
    pub fn load(path: &Path) -> Result<ExperimentConfig, EvalError> {
        let bad = |d: String| EvalError::Usage(format!("{}: {d}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c: ExperimentConfig =
            toml::from_str(&text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.corpus);
        fix(&mut c.suite);
        if let Some(h) = c.heldout_corpus.as_mut() {
            fix(h);
        }
        let mut out = c.out.clone().unwrap_or_else(|| PathBuf::from(&c.name));
        fix(&mut out);
        c.out = Some(out);
        if let Some(i) = c.model.init.as_mut() {
            fix(i);
        }
        // `[model]` errors met while training a condition name this file.
        c.model.source = Some(path.to_path_buf());
        if c.conditions.is_empty() {
            return Err(bad("no [[condition]]".into()));
        }
        if c.seeds.is_empty() {
            return Err(bad(
                "seeds is empty: give at least one (seeds = [0] is one run)".into(),
            ));
        }
        if let Some(i) = (1..c.seeds.len()).find(|&i| c.seeds[..i].contains(&c.seeds[i])) {
            return Err(bad(format!("seeds lists {} twice", c.seeds[i])));
        }
        let mut seen = std::collections::HashSet::new();
        for cond in &c.conditions {
            prior_data::corpus::check_category_name(&cond.name)
                .map_err(|e| bad(format!("condition name {:?}: {e}", cond.name)))?;
            if !seen.insert(cond.name.clone()) {
                return Err(bad(format!("condition {:?} appears twice", cond.name)));
            }
            match (cond.late_fraction, &cond.late_weights) {
                (None, None) => {}
                (Some(f), Some(_)) if f > 0.0 && f < 1.0 => {}
                (Some(f), Some(_)) => {
                    return Err(bad(format!(
                        "condition {:?}: late_fraction {f} must be between 0 and 1",
                        cond.name
                    )))
                }
                _ => {
                    return Err(bad(format!(
                        "condition {:?}: late_fraction and late_weights go together",
                        cond.name
                    )))
                }
            }
        }
        if c.train.steps < 2 && c.conditions.iter().any(|x| x.late_fraction.is_some()) {
            return Err(bad(
                "a condition with late_fraction needs train.steps of at least 2".into(),
            ));
        }
        if let Some(b) = &c.baseline {
            if !seen.contains(b) {
                return Err(bad(format!("baseline {b:?} is not a condition")));
            }
        }
        c.eval_options().map_err(bad)?;
        if c.train.eval_every > 0 && c.heldout_corpus.is_none() {
            return Err(bad("train.eval_every needs heldout_corpus".into()));
        }
        Ok(c)
    }

    pub fn out(&self) -> &Path {
        self.out.as_deref().expect("set at load")
    }

    /// Where condition `c`'s run with `seed` lives: `<out>/<c>` for the
    /// first seed, `<out>/<c>/seed-<seed>` for each further one, so adding
    /// seeds to a finished experiment keeps (and reuses) its runs.
    pub fn run_dir(&self, c: &str, seed: u64) -> PathBuf {
        let dir = self.out().join(c);
        match self.seeds.first() == Some(&seed) {
            true => dir,
            false => dir.join(format!("seed-{seed}")),
        }
    }

    pub fn baseline(&self) -> &str {
        self.baseline.as_deref().unwrap_or(&self.conditions[0].name)
    }

    pub fn eval_options(&self) -> Result<EvalOptions, String> {
        let e = &self.eval;
        let modes = e
            .modes
            .iter()
            .map(|m| m.parse::<Mode>().map_err(|x| format!("eval.modes: {x}")))
            .collect::<Result<Vec<_>, _>>()?;
        let opts = EvalOptions {
            persona: e
                .persona
                .parse::<Persona>()
                .map_err(|x| format!("eval.persona: {x}"))?,
            modes,
            templates: e.templates,
            batch: e.batch,
            max_seq: crate::score::MAX_SCORED_SEQ,
        };
        // The library's field names are this section's keys.
        opts.validate().map_err(|x| format!("eval.{x}"))?;
        Ok(opts)
    }

    /// The mix of one condition's run with `seed` (corpus path absolute).
    pub fn mix(&self, c: &Condition, seed: u64) -> Result<ConditionMix, EvalError> {
        let corpus = std::path::absolute(&self.corpus).map_err(|source| EvalError::Io {
            path: self.corpus.clone(),
            source,
        })?;
        let phase = |name: &str, steps, weights: &BTreeMap<String, f64>| MixPhase {
            name: name.into(),
            steps,
            weights: weights.clone(),
        };
        let steps = self.train.steps;
        let phases = match (c.late_fraction, &c.late_weights) {
            (Some(f), Some(late)) => {
                // At least one step in each phase. `load` refuses fewer
                // than two steps; were there fewer, the main phase would
                // get 0 steps, which the loader names, rather than wrap.
                let late_steps = ((steps as f64 * f).round() as u64).clamp(1, steps.max(2) - 1);
                vec![
                    phase("main", Some(steps.saturating_sub(late_steps)), &c.weights),
                    phase("late", Some(late_steps), late),
                ]
            }
            _ => vec![phase("main", None, &c.weights)],
        };
        Ok(ConditionMix {
            corpus,
            seq_len: self.seq_len,
            global_batch: self.global_batch,
            seed: self.seed.wrapping_add(seed),
            phases,
        })
    }

    /// The mix spec of one condition as TOML text (a `prior train`-ready
    /// file), serialized so that any category name or path is quoted
    /// exactly.
    pub fn mix_toml(&self, c: &Condition, seed: u64) -> Result<String, EvalError> {
        let body = toml::to_string(&self.mix(c, seed)?).map_err(|e| EvalError::Serialize {
            what: format!("the mix of condition {:?}", c.name),
            detail: e.to_string(),
        })?;
        // The heading is a comment, never read back; `{:?}` escapes every
        // control character, so a name with a line break cannot end the
        // comment and add keys to the mix.
        Ok(format!(
            "# Condition {:?} of experiment {:?}.\n{body}",
            c.name, self.name
        ))
    }
}

/// A condition's mix as `<condition>/mix.toml` holds it: the loader's mix
/// format (see prior-loader's `mix` module), written with `toml` so names
/// need no care, and read back to tell whether a trained condition's mix
/// has changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionMix {
    pub corpus: PathBuf,
    pub seq_len: u32,
    pub global_batch: u32,
    pub seed: u64,
    #[serde(rename = "phase")]
    pub phases: Vec<MixPhase>,
}

/// One `[[phase]]` of a [`ConditionMix`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixPhase {
    pub name: String,
    /// `None`: open-ended (the only phase of a condition without a late one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    pub weights: BTreeMap<String, f64>,
}

/// The mix a trained condition was trained on, from its `mix.toml` (`None`
/// when there is none). A file that cannot be read or parsed is an error:
/// without it there is no telling whether the mix has changed.
fn trained_mix(path: &Path, dir: &Path) -> Result<Option<ConditionMix>, EvalError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EvalError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let hint = format!(
        "without it there is no telling whether the condition's mix changed since it was trained (remove {} to retrain it)",
        dir.display()
    );
    let bad = |detail: String| EvalError::Parse {
        path: path.to_path_buf(),
        line: None,
        detail: format!("{detail}; {hint}"),
    };
    let text = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| bad(e.to_string().trim_end().to_string()))
}

/// A checkpoint's state and the hash of its `state.json` (the checkpoint's
/// identity for reusing an evaluation).
fn checkpoint_state(checkpoint: &Path) -> Result<(TrainState, u64), EvalError> {
    let path = checkpoint.join("state.json");
    let bytes = std::fs::read(&path).map_err(|source| EvalError::Io {
        path: path.clone(),
        source,
    })?;
    let state = serde_json::from_slice(&bytes).map_err(|e| EvalError::Parse {
        path: path.clone(),
        line: None,
        detail: e.to_string(),
    })?;
    Ok((state, xxhash_rust::xxh3::xxh3_64(&bytes)))
}

/// The evaluation stored for a condition, if any. A file that cannot be
/// read or parsed is an error naming it rather than quietly redone: it is
/// written whole or not at all, so damage there is worth knowing about.
fn stored_eval(path: &Path) -> Result<Option<StoredEval>, EvalError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| EvalError::Parse {
                path: path.to_path_buf(),
                line: None,
                detail: format!("{e}; remove it to evaluate the condition again"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EvalError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Progress of a running experiment.
pub enum Event<'a> {
    Condition {
        index: usize,
        total: usize,
        name: &'a str,
        what: &'a str,
    },
    Step(&'a StepMetrics),
    Eval {
        done: usize,
        total: usize,
    },
}

/// Per-condition evaluation on disk: the report and what it was made from.
#[derive(Debug, Serialize, Deserialize)]
struct StoredEval {
    checkpoint: String,
    settings: String,
    eval_seconds: f64,
    report: EvalReport,
}

fn json_to_file<T: Serialize>(path: &Path, v: &T) -> Result<(), EvalError> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| EvalError::Serialize {
        what: path.display().to_string(),
        detail: e.to_string(),
    })?;
    write_atomic(path, &bytes).map_err(EvalError::Data)
}

/// Questions used: the first `max` of each split (all when 0), or the
/// split's own limit from `by_split`.
pub fn pick_questions(
    all: Vec<Question>,
    max: usize,
    by_split: &BTreeMap<String, usize>,
) -> Vec<Question> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    all.into_iter()
        .filter(|q| {
            let limit = by_split.get(&q.split).copied().unwrap_or(max);
            let n = count.entry(q.split.clone()).or_default();
            *n += 1;
            limit == 0 || *n <= limit
        })
        .collect()
}

/// Trains and evaluates every condition (skipping finished work), then
/// writes results.json, report.md and the plots.
pub fn run_experiment<B: Backend>(
    on: B,
    device_name: &str,
    cfg: &ExperimentConfig,
    events: &mut dyn FnMut(Event),
) -> Result<ExperimentResults, EvalError> {
    let out = cfg.out();
    std::fs::create_dir_all(out).map_err(|source| EvalError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let questions = pick_questions(
        load_suite(&cfg.suite, None)?,
        cfg.eval.max_questions,
        &cfg.eval.max_questions_by_split,
    );
    let opts = cfg.eval_options().map_err(EvalError::Usage)?;
    // Everything an evaluation depends on besides the checkpoint (whose
    // state.json is hashed per condition below).
    let question_text = serde_json::to_string(&questions).expect("serializes");
    let settings = serde_json::to_string(&(
        &cfg.eval,
        &cfg.heldout_corpus,
        cfg.seq_len,
        xxhash_rust::xxh3::xxh3_64(question_text.as_bytes()),
    ))
    .expect("serializes");
    // Per run, in `runs` order: its result and its evaluation.
    let mut results: Vec<SeedResult> = Vec::new();
    let mut reports: Vec<EvalReport> = Vec::new();
    let mut model_desc = (String::new(), 0usize);
    let mut a_checkpoint = None;
    let runs: Vec<(&Condition, u64)> = cfg
        .conditions
        .iter()
        .flat_map(|c| cfg.seeds.iter().map(move |&s| (c, s)))
        .collect();
    let total = runs.len();
    for (index, &(cond, seed)) in runs.iter().enumerate() {
        let dir = cfg.run_dir(&cond.name, seed);
        // What progress and errors call this run.
        let label = match cfg.seeds.len() {
            1 => cond.name.clone(),
            _ => format!("{} seed {seed}", cond.name),
        };
        std::fs::create_dir_all(&dir).map_err(|source| EvalError::Io {
            path: dir.clone(),
            source,
        })?;
        let mix_path = dir.join("mix.toml");
        let mix = cfg.mix(cond, seed)?;
        let mix_text = cfg.mix_toml(cond, seed)?;
        // A trained condition whose mix has changed since is not silently
        // reused (its files would describe another model) nor deleted. The
        // mixes are compared as parsed, so a file written with other
        // formatting but the same content still counts as unchanged.
        let trained = !prior_model::checkpoint::list(&dir.join("train"))?.is_empty();
        if trained {
            if let Some(old) = trained_mix(&mix_path, &dir)? {
                if old != mix {
                    return Err(EvalError::Usage(format!(
                        "condition {label:?}: its mix changed since {} was trained; remove that directory to retrain it",
                        dir.display()
                    )));
                }
            }
        }
        write_atomic(&mix_path, mix_text.as_bytes())?;
        let mut train_section = cfg.train.clone();
        train_section.checkpoint_dir = dir.join("train");
        train_section.seed = cfg.train.seed.wrapping_add(seed);
        train_section.eval_corpus = cfg.heldout_corpus.clone();
        train_section.eval_tokens = cfg.eval.heldout_tokens;
        let tc = TrainConfig {
            model: cfg.model.clone(),
            data: DataSection { mix: mix_path },
            train: train_section,
        };
        let tc_path = dir.join("train.toml");
        let tc_text = toml::to_string(&tc).map_err(|e| EvalError::Serialize {
            what: tc_path.display().to_string(),
            detail: e.to_string(),
        })?;
        write_atomic(&tc_path, tc_text.as_bytes())?;

        let t0 = Instant::now();
        let run_dir = dir.join("train");
        let checkpoint = match finished_checkpoint(&run_dir, cfg.train.steps)? {
            Some(ck) => {
                events(Event::Condition {
                    index,
                    total,
                    name: &label,
                    what: "already trained",
                });
                ck
            }
            None => {
                events(Event::Condition {
                    index,
                    total,
                    name: &label,
                    what: "training",
                });
                on.train(device_name, &tc, &tc_text, true, &mut |m| {
                    events(Event::Step(m))
                })?;
                finished_checkpoint(&run_dir, cfg.train.steps)?.ok_or_else(|| {
                    EvalError::Usage(format!(
                        "condition {label:?}: training ended without a final checkpoint"
                    ))
                })?
            }
        };
        let train_seconds = t0.elapsed().as_secs_f64();
        a_checkpoint = Some(checkpoint.clone());
        // The checkpoint's identity: its path and its state (step, loader
        // hash of every batch served, config), so a retrained run at the
        // same path is not taken for the old one.
        let (state, state_hash) = checkpoint_state(&checkpoint)?;
        let ck_str = format!("{} #{state_hash:016x}", checkpoint.display());
        let eval_path = dir.join("eval.json");
        let stored =
            stored_eval(&eval_path)?.filter(|s| s.checkpoint == ck_str && s.settings == settings);
        let stored = match stored {
            Some(s) => {
                events(Event::Condition {
                    index,
                    total,
                    name: &label,
                    what: "already evaluated",
                });
                s
            }
            None => {
                events(Event::Condition {
                    index,
                    total,
                    name: &label,
                    what: "evaluating",
                });
                let t1 = Instant::now();
                let m = load_model(&checkpoint, None)?;
                let heldout = match &cfg.heldout_corpus {
                    Some(h) => Some(HeldoutSet::load(
                        h,
                        cfg.seq_len as usize,
                        cfg.eval.heldout_tokens,
                        m.cfg.vocab_size,
                        None,
                    )?),
                    None => None,
                };
                let report = evaluate(
                    &on,
                    m.cfg,
                    &m.params,
                    &m.tokenizer,
                    &questions,
                    &opts,
                    heldout.as_ref(),
                    &mut |done, total| events(Event::Eval { done, total }),
                )?;
                let s = StoredEval {
                    checkpoint: ck_str.clone(),
                    settings: settings.clone(),
                    eval_seconds: t1.elapsed().as_secs_f64(),
                    report,
                };
                json_to_file(&eval_path, &s)?;
                s
            }
        };
        let metrics_path = metrics::path_in(&run_dir);
        let metrics = metrics::read(&metrics_path)?.steps;
        let final_loss = metrics
            .last()
            .map(|m| m.loss)
            .ok_or_else(|| EvalError::Parse {
                path: metrics_path.clone(),
                line: None,
                detail: format!(
                    "no training steps logged, though the run has a checkpoint of step {}",
                    cfg.train.steps
                ),
            })?;
        // From the log, so a condition trained by an earlier invocation
        // reports its real time too.
        let step_tokens = cfg.global_batch as f64 * cfg.seq_len as f64;
        let logged: f64 = metrics
            .iter()
            .map(|m| step_tokens / m.tokens_per_s.max(1e-9))
            .sum();
        let train_seconds = if logged > 0.0 { logged } else { train_seconds };
        let st = &state.model;
        model_desc = (
            format!(
                "{} layers, d_model {}, {} heads, vocab {}",
                st.n_layer, st.d_model, st.n_head, st.vocab_size
            ),
            st.parameters(),
        );
        results.push(SeedResult {
            seed,
            splits: stored.report.splits.clone(),
            vs_baseline: BTreeMap::new(),
            vs_baseline_by_mode: BTreeMap::new(),
            final_loss,
            heldout_loss: stored
                .report
                .heldout_loss
                .iter()
                .flatten()
                .map(|c| (c.category.clone(), c.loss))
                .collect(),
            train_seconds,
            eval_seconds: stored.eval_seconds,
            checkpoint: checkpoint.display().to_string(),
        });
        reports.push(stored.report);
    }
    let untrained = match &a_checkpoint {
        Some(ck) => evaluate_untrained(&on, cfg, ck, &questions, &opts, &settings, events)?,
        None => BTreeMap::new(),
    };
    // Each run against the baseline condition's run of the same seed,
    // paired by question; then each condition over its seeds.
    let base_name = cfg.baseline().to_string();
    let at = |name: &str, seed: u64| {
        runs.iter()
            .position(|&(c, s)| c.name == name && s == seed)
            .ok_or_else(|| EvalError::Usage(format!("baseline {name:?} is not a condition")))
    };
    let mut conditions = Vec::with_capacity(cfg.conditions.len());
    for cond in &cfg.conditions {
        let mut per_seed = Vec::with_capacity(cfg.seeds.len());
        for &seed in &cfg.seeds {
            let (k, b) = (at(&cond.name, seed)?, at(&base_name, seed)?);
            let mut r = results[k].clone();
            for split in reports[k].splits.keys() {
                let d = paired_difference(&reports[b], &reports[k], split).map_err(|source| {
                    EvalError::Pairing {
                        a: cfg.run_dir(&base_name, seed).join("eval.json"),
                        b: cfg.run_dir(&cond.name, seed).join("eval.json"),
                        source,
                    }
                })?;
                r.vs_baseline.insert(split.clone(), d);
                let by_mode = r.vs_baseline_by_mode.entry(split.clone()).or_default();
                for mode in &reports[b].modes {
                    let d = paired_difference_in(&reports[b], &reports[k], split, mode).map_err(
                        |source| EvalError::Pairing {
                            a: cfg.run_dir(&base_name, seed).join("eval.json"),
                            b: cfg.run_dir(&cond.name, seed).join("eval.json"),
                            source,
                        },
                    )?;
                    by_mode.insert(mode.clone(), d);
                }
            }
            per_seed.push(r);
        }
        conditions.push(ConditionResult::from_seeds(cond.name.clone(), per_seed));
    }
    let res = ExperimentResults {
        experiment: cfg.name.clone(),
        device: device_name.to_string(),
        baseline: base_name,
        model: model_desc.0,
        parameters: model_desc.1,
        steps: cfg.train.steps,
        tokens_per_condition: cfg.train.steps * cfg.global_batch as u64 * cfg.seq_len as u64,
        headline_mode: opts.modes[0].name().to_string(),
        seeds: cfg.seeds.clone(),
        conditions,
        untrained,
    };
    json_to_file(&out.join("results.json"), &res)?;
    write_report(cfg, &res)?;
    Ok(res)
}

/// Writes the report of `r`, an experiment run with `cfg`, into its
/// output directory: gathers what [`crate::report`] needs from the
/// experiment's files (each condition's training curve, from its first
/// seed's metrics.jsonl) and hands it over. A log that is missing or has a
/// line that cannot be read is an error naming the file and line, not an
/// empty curve: the report would misstate the run.
pub fn write_report(cfg: &ExperimentConfig, r: &ExperimentResults) -> Result<(), EvalError> {
    // The first seed's run (every seed's curve is in its own log).
    let seed = r.seeds.first().copied().unwrap_or(0);
    let loss_curves = r
        .conditions
        .iter()
        .map(|c| {
            let log = metrics::read(&metrics::path_in(&cfg.run_dir(&c.name, seed).join("train")))?;
            Ok(LossCurve {
                condition: c.name.clone(),
                points: log.steps.iter().map(|m| (m.step, m.loss)).collect(),
            })
        })
        .collect::<Result<Vec<_>, EvalError>>()?;
    let input = ReportInput {
        results: r,
        loss_curves: &loss_curves,
        from_init: cfg.model.init.is_some(),
    };
    crate::report::write_report(cfg.out(), &input)
}

/// Scores the model every condition starts from (the initialisation of
/// `train.seed`, or `model.init`'s weights), with the tokenizer and shape of
/// the trained `checkpoint`; reuses `<out>/untrained.eval.json` when it was
/// made with the same settings.
fn evaluate_untrained<B: Backend>(
    on: &B,
    cfg: &ExperimentConfig,
    checkpoint: &Path,
    questions: &[Question],
    opts: &EvalOptions,
    settings: &str,
    events: &mut dyn FnMut(Event),
) -> Result<BTreeMap<String, SplitRate>, EvalError> {
    let total = cfg.conditions.len();
    let name = "untrained model";
    let trained = load_model(checkpoint, None)?;
    let (model_cfg, init) = cfg
        .model
        .resolve(trained.cfg.vocab_size)
        .map_err(|d| EvalError::Usage(format!("[model]: {d}")))?;
    // The first seed's initialisation (or `model.init`'s weights) and the
    // corpus the tokenizer belongs to, identified by what they are, so
    // other weights or another corpus are re-scored.
    let init_seed = cfg.train.seed.wrapping_add(cfg.seeds[0]);
    let params = init
        .unwrap_or_else(|| prior_model::ParamLayout::new(&model_cfg).init(&model_cfg, init_seed));
    let mut weights = xxhash_rust::xxh3::Xxh3::new();
    for x in &params {
        weights.update(&x.to_le_bytes());
    }
    let identity = format!(
        "init {:016x} {} corpus {}",
        weights.digest(),
        serde_json::to_string(&model_cfg).expect("serializes"),
        cfg.corpus.display()
    );
    let path = cfg.out().join("untrained.eval.json");
    if let Some(s) =
        stored_eval(&path)?.filter(|s| s.checkpoint == identity && s.settings == settings)
    {
        events(Event::Condition {
            index: total,
            total,
            name,
            what: "already evaluated",
        });
        return Ok(s.report.splits);
    }
    events(Event::Condition {
        index: total,
        total,
        name,
        what: "evaluating",
    });
    let t0 = Instant::now();
    let report = evaluate(
        on,
        model_cfg,
        &params,
        &trained.tokenizer,
        questions,
        opts,
        None,
        &mut |done, total| events(Event::Eval { done, total }),
    )?;
    let s = StoredEval {
        checkpoint: identity,
        settings: settings.to_string(),
        eval_seconds: t0.elapsed().as_secs_f64(),
        report,
    };
    json_to_file(&path, &s)?;
    Ok(s.report.splits)
}
