//! The mix spec: which categories of a corpus, in what token shares, over
//! which phases of training, at what sequence length, batch size and seed.
//!
//! ```toml
//! corpus = "runs/corpus"     # relative to this file's directory
//! seq_len = 2048             # the loader yields seq_len + 1 tokens per sequence
//! global_batch = 512         # sequences per optimizer step, over all ranks
//! seed = 1234
//! [[phase]]
//! steps = 9000
//! weights = { general = 0.99, aligned = 0.01 }
//! [[phase]]                  # the last phase may omit `steps` (open-ended)
//! weights = { general = 0.9, aligned = 0.1 }
//! ```
//!
//! Weights are token shares. They need not sum to 1: each phase's weights
//! are divided by their sum (`prior loader stats` prints the result). To
//! make every machine compute identical allocations, normalised weights are
//! held as integers in units of 1e-9 (largest remainder, ties to the
//! earlier category name), so a decimal weight such as 0.01 is exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prior_data::Corpus;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{LoaderError, Result};

/// Normalised weights are integers summing to this.
pub const WEIGHT_UNITS: u64 = 1_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    corpus: PathBuf,
    seq_len: u32,
    global_batch: u32,
    seed: u64,
    /// Independent places each category's stream is read from at once, so
    /// one batch holds sequences from many parts of the corpus.
    #[serde(default = "default_interleave")]
    interleave: u32,
    #[serde(rename = "phase", default)]
    phases: Vec<PhaseFile>,
}

fn default_interleave() -> u32 {
    16
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFile {
    name: Option<String>,
    steps: Option<u64>,
    weights: BTreeMap<String, f64>,
}

/// One phase, validated: its categories and their normalised shares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: String,
    /// `None` for an open-ended last phase.
    pub steps: Option<u64>,
    pub first_step: u64,
    /// Per category index of [`MixSpec::categories`]: share in units of
    /// [`WEIGHT_UNITS`].
    pub units: Vec<u64>,
}

impl Phase {
    pub fn share(&self, category: usize) -> f64 {
        self.units[category] as f64 / WEIGHT_UNITS as f64
    }
}

/// A validated mix, bound to an opened corpus.
#[derive(Debug, Clone)]
pub struct MixSpec {
    pub source: PathBuf,
    pub corpus_dir: PathBuf,
    pub seq_len: u32,
    pub global_batch: u32,
    pub seed: u64,
    pub interleave: u32,
    /// Categories with a positive weight in some phase, sorted by name.
    pub categories: Vec<String>,
    pub phases: Vec<Phase>,
    /// Hash of corpus fingerprint, mix parameters and seed: every random
    /// decision of the loader is keyed on it.
    pub key: u64,
}

impl MixSpec {
    /// Reads a mix TOML and checks it against the corpus it names.
    pub fn load(path: &Path) -> Result<(MixSpec, Corpus)> {
        let text = std::fs::read_to_string(path).map_err(|e| LoaderError::Mix {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_str(&text, path, base)
    }

    /// Parses `text` (named `source` in errors); a relative `corpus` is
    /// resolved against `base_dir`.
    pub fn from_toml_str(text: &str, source: &Path, base_dir: &Path) -> Result<(MixSpec, Corpus)> {
        let bad = |detail: String| LoaderError::Mix {
            path: source.to_path_buf(),
            detail,
        };
        let file: MixFile =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
        if file.seq_len == 0 {
            return Err(bad("`seq_len` must be at least 1".into()));
        }
        if file.global_batch == 0 {
            return Err(bad("`global_batch` must be at least 1".into()));
        }
        if file.interleave == 0 {
            return Err(bad("`interleave` must be at least 1".into()));
        }
        if file.phases.is_empty() {
            return Err(bad(
                "no [[phase]] given: a mix needs at least one phase with `weights`".into(),
            ));
        }
        let corpus_dir = if file.corpus.is_absolute() {
            file.corpus.clone()
        } else {
            base_dir.join(&file.corpus)
        };
        let corpus = Corpus::open(&corpus_dir)?;

        let mut categories: Vec<String> = Vec::new();
        for (i, p) in file.phases.iter().enumerate() {
            if p.weights.is_empty() {
                return Err(bad(format!("phase[{i}].weights is empty")));
            }
            for (name, &w) in &p.weights {
                let key = format!("phase[{i}].weights.{name}");
                if !w.is_finite() || w < 0.0 {
                    return Err(bad(format!(
                        "{key} = {w}: weights must be finite and not negative"
                    )));
                }
                let cat = corpus
                    .category(name)
                    .map_err(|e| bad(format!("{key}: {e}")))?;
                if w > 0.0 {
                    if cat.tokens <= file.seq_len as u64 {
                        return Err(bad(format!(
                            "{key}: category {name:?} holds {} tokens, not enough for one sequence of seq_len + 1 = {}",
                            cat.tokens,
                            file.seq_len as u64 + 1
                        )));
                    }
                    if !categories.contains(name) {
                        categories.push(name.clone());
                    }
                }
            }
            if p.weights.values().all(|&w| w == 0.0) {
                return Err(bad(format!("phase[{i}].weights are all zero")));
            }
            match p.steps {
                Some(0) => return Err(bad(format!("phase[{i}].steps must be at least 1"))),
                None if i + 1 < file.phases.len() => {
                    return Err(bad(format!(
                        "phase[{i}] has no `steps` (open-ended), so phase[{}] after it could never start",
                        i + 1
                    )))
                }
                _ => {}
            }
        }
        categories.sort();
        let mut phases = Vec::new();
        let mut first_step = 0u64;
        for (i, p) in file.phases.iter().enumerate() {
            let raw: Vec<f64> = categories
                .iter()
                .map(|c| p.weights.get(c).copied().unwrap_or(0.0))
                .collect();
            phases.push(Phase {
                name: p.name.clone().unwrap_or_else(|| format!("phase{i}")),
                steps: p.steps,
                first_step,
                units: normalise(&raw),
            });
            first_step = first_step.saturating_add(p.steps.unwrap_or(0));
        }
        let mut h = Xxh3::new();
        h.update(corpus.fingerprint().as_bytes());
        for v in [
            file.seq_len as u64,
            file.global_batch as u64,
            file.seed,
            file.interleave as u64,
        ] {
            h.update(&v.to_le_bytes());
        }
        for c in &categories {
            h.update(c.as_bytes());
            h.update(&[0]);
        }
        for p in &phases {
            h.update(&p.steps.map_or(u64::MAX, |s| s).to_le_bytes());
            for u in &p.units {
                h.update(&u.to_le_bytes());
            }
        }
        let spec = MixSpec {
            source: source.to_path_buf(),
            corpus_dir,
            seq_len: file.seq_len,
            global_batch: file.global_batch,
            seed: file.seed,
            interleave: file.interleave,
            categories,
            phases,
            key: h.digest(),
        };
        Ok((spec, corpus))
    }

    /// The phase that step `step` belongs to.
    pub fn phase_of(&self, step: u64) -> usize {
        self.phases
            .iter()
            .rposition(|p| p.first_step <= step)
            .expect("phase 0 starts at step 0")
    }

    /// Total steps if the last phase is bounded.
    pub fn total_steps(&self) -> Option<u64> {
        let last = self.phases.last().expect("at least one phase");
        last.steps.map(|s| last.first_step + s)
    }

    /// Tokens per sequence as delivered (inputs plus the shifted target).
    pub fn sequence_tokens(&self) -> usize {
        self.seq_len as usize + 1
    }
}

/// Shares in units of [`WEIGHT_UNITS`], summing exactly to it.
fn normalise(raw: &[f64]) -> Vec<u64> {
    let total: f64 = raw.iter().sum();
    let exact: Vec<f64> = raw
        .iter()
        .map(|w| w / total * WEIGHT_UNITS as f64)
        .collect();
    let mut units: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let assigned: u64 = units.iter().sum();
    let mut order: Vec<usize> = (0..raw.len()).filter(|&i| raw[i] > 0.0).collect();
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.partial_cmp(&fa)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for &i in order
        .iter()
        .cycle()
        .take(WEIGHT_UNITS.saturating_sub(assigned) as usize)
    {
        units[i] += 1;
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_sums_exactly_and_keeps_decimal_weights_exact() {
        assert_eq!(normalise(&[0.99, 0.01]), vec![990_000_000, 10_000_000]);
        assert_eq!(
            normalise(&[1.0, 1.0, 1.0]).iter().sum::<u64>(),
            WEIGHT_UNITS
        );
        assert_eq!(
            normalise(&[3.0, 0.0, 1.0]),
            vec![750_000_000, 0, 250_000_000]
        );
    }
}
