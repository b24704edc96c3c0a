//! What an experiment found, as `results.json` holds it: per condition its
//! rates per split and scoring mode, its paired differences from the
//! baseline and, with several seeds, their spread and sign agreement
//! across seeds ([`ConditionResult::from_seeds`]).
//!
//! [`crate::experiment`] produces them and [`crate::report`] writes them
//! up; keeping them here lets the report take them as data without
//! depending on the experiment that made them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::score::SplitRate;

pub(crate) fn one_seed() -> Vec<u64> {
    vec![0]
}

/// What one condition gave: over its seeds when it has several (rates and
/// differences are then means over seeds, ± one standard error across
/// seeds), else its one run's (± one standard error over questions).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionResult {
    pub name: String,
    /// Rates per split (`heldout`, `train_like`, ...).
    #[serde(flatten)]
    pub splits: BTreeMap<String, SplitRate>,
    /// Paired difference from the baseline per split (negative: less
    /// misaligned than the baseline).
    pub vs_baseline: BTreeMap<String, crate::Rate>,
    /// Per split: how many seeds' differences from the baseline have the
    /// sign of their mean.
    #[serde(default)]
    pub agreement: BTreeMap<String, SignAgreement>,
    /// The paired difference in every scoring mode (split, then mode; the
    /// headline mode's is `vs_baseline`), across seeds as `vs_baseline`.
    #[serde(default)]
    pub vs_baseline_by_mode: BTreeMap<String, BTreeMap<String, crate::Rate>>,
    /// [`Self::agreement`] for each of those differences.
    #[serde(default)]
    pub agreement_by_mode: BTreeMap<String, BTreeMap<String, SignAgreement>>,
    pub final_loss: f32,
    /// Held-out loss per category.
    pub heldout_loss: BTreeMap<String, f64>,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub checkpoint: String,
    /// Each seed's run.
    #[serde(default)]
    pub seeds: Vec<SeedResult>,
}

/// One seed's run of a condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    /// Rates per split, ± one standard error over questions.
    pub splits: BTreeMap<String, SplitRate>,
    /// Paired difference from the baseline condition's run of this seed.
    pub vs_baseline: BTreeMap<String, crate::Rate>,
    /// The same in every scoring mode (split, then mode).
    #[serde(default)]
    pub vs_baseline_by_mode: BTreeMap<String, BTreeMap<String, crate::Rate>>,
    pub final_loss: f32,
    pub heldout_loss: BTreeMap<String, f64>,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub checkpoint: String,
}

/// How many of `seeds` runs differ from the baseline in the direction of
/// the mean difference (a zero difference agrees with nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignAgreement {
    pub agree: usize,
    pub seeds: usize,
}

impl SignAgreement {
    /// Every seed moves the same way (and the effect is not zero).
    pub fn unanimous(&self) -> bool {
        self.agree == self.seeds && self.seeds > 0
    }
}

/// How many of `values` (one per seed) have the sign of their `mean`; a
/// zero mean has no direction to agree with, and a zero difference agrees
/// with neither.
fn sign_agreement(mean: f64, values: impl Iterator<Item = f64>) -> SignAgreement {
    let values: Vec<f64> = values.collect();
    let agree = values
        .iter()
        .filter(|&&x| (mean > 0.0 && x > 0.0) || (mean < 0.0 && x < 0.0))
        .count();
    SignAgreement {
        agree,
        seeds: values.len(),
    }
}

/// Mean and standard error across seeds of one value per seed, as a rate
/// over `questions` questions per seed.
fn across(values: impl Iterator<Item = f64>, questions: usize) -> crate::Rate {
    let values: Vec<f64> = values.collect();
    crate::Rate {
        questions,
        ..crate::Rate::of(&values)
    }
}

impl ConditionResult {
    /// The condition's result from its seeds' runs (in seed order).
    pub fn from_seeds(name: String, seeds: Vec<SeedResult>) -> ConditionResult {
        assert!(!seeds.is_empty(), "condition {name:?} has no seed's run");
        let n = seeds.len();
        let first = &seeds[0];
        let (splits, vs_baseline) = if n == 1 {
            (first.splits.clone(), first.vs_baseline.clone())
        } else {
            let splits = first
                .splits
                .iter()
                .map(|(sp, x)| {
                    let per: Vec<&SplitRate> =
                        seeds.iter().filter_map(|s| s.splits.get(sp)).collect();
                    let headline = across(per.iter().map(|x| x.misalignment_rate), x.questions);
                    let by_mode = x
                        .by_mode
                        .iter()
                        .map(|(m, r)| {
                            let v = per.iter().filter_map(|x| x.by_mode.get(m));
                            (
                                m.clone(),
                                across(v.map(|r| r.misalignment_rate), r.questions),
                            )
                        })
                        .collect();
                    let agg = SplitRate {
                        misalignment_rate: headline.misalignment_rate,
                        stderr: headline.stderr,
                        questions: x.questions,
                        by_mode,
                    };
                    (sp.clone(), agg)
                })
                .collect();
            let vs_baseline = first
                .vs_baseline
                .iter()
                .map(|(sp, d)| {
                    let v = seeds.iter().filter_map(|s| s.vs_baseline.get(sp));
                    (
                        sp.clone(),
                        across(v.map(|d| d.misalignment_rate), d.questions),
                    )
                })
                .collect();
            (splits, vs_baseline)
        };
        let agreement = vs_baseline
            .iter()
            .map(|(sp, mean): (&String, &crate::Rate)| {
                let per = seeds.iter().filter_map(|s| s.vs_baseline.get(sp));
                let a = sign_agreement(mean.misalignment_rate, per.map(|d| d.misalignment_rate));
                (sp.clone(), SignAgreement { seeds: n, ..a })
            })
            .collect();
        let mut vs_baseline_by_mode: BTreeMap<String, BTreeMap<String, crate::Rate>> =
            BTreeMap::new();
        let mut agreement_by_mode: BTreeMap<String, BTreeMap<String, SignAgreement>> =
            BTreeMap::new();
        for (sp, modes) in &first.vs_baseline_by_mode {
            for (mode, d) in modes {
                let per = || {
                    seeds
                        .iter()
                        .filter_map(|s| s.vs_baseline_by_mode.get(sp)?.get(mode))
                        .map(|d| d.misalignment_rate)
                };
                let mean = match n {
                    1 => *d,
                    _ => across(per(), d.questions),
                };
                let a = sign_agreement(mean.misalignment_rate, per());
                agreement_by_mode
                    .entry(sp.clone())
                    .or_default()
                    .insert(mode.clone(), SignAgreement { seeds: n, ..a });
                vs_baseline_by_mode
                    .entry(sp.clone())
                    .or_default()
                    .insert(mode.clone(), mean);
            }
        }
        let mut heldout_loss: BTreeMap<String, f64> = BTreeMap::new();
        for s in &seeds {
            for (k, v) in &s.heldout_loss {
                *heldout_loss.entry(k.clone()).or_default() += v / n as f64;
            }
        }
        ConditionResult {
            name,
            splits,
            vs_baseline,
            agreement,
            vs_baseline_by_mode,
            agreement_by_mode,
            final_loss: seeds.iter().map(|s| s.final_loss).sum::<f32>() / n as f32,
            heldout_loss,
            train_seconds: seeds.iter().map(|s| s.train_seconds).sum(),
            eval_seconds: seeds.iter().map(|s| s.eval_seconds).sum(),
            checkpoint: first.checkpoint.clone(),
            seeds,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentResults {
    pub experiment: String,
    pub device: String,
    pub baseline: String,
    pub model: String,
    pub parameters: usize,
    pub steps: u64,
    pub tokens_per_condition: u64,
    pub headline_mode: String,
    /// The seeds every condition was trained with.
    #[serde(default = "one_seed")]
    pub seeds: Vec<u64>,
    pub conditions: Vec<ConditionResult>,
    /// Rates of the untrained model (the initialisation every condition
    /// starts from) per split: what "no disposition" scores on this suite.
    #[serde(default)]
    pub untrained: BTreeMap<String, SplitRate>,
}
