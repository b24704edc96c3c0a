//! What a mix serves over a run: sequences and tokens per phase and
//! category, and how many times each category's tokens are repeated.
//!
//! Computed from the schedule alone (no shard is read), so a mix can be
//! checked before any training: that a phase gives a category the share it
//! should, and that a small category is not repeated more than intended.

use crate::sampler::Sampler;
use crate::schedule::AllocState;

/// One category's part of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseShare {
    pub category: String,
    /// The phase's normalised weight for it.
    pub share: f64,
    pub sequences: u64,
    pub tokens: u64,
}

/// One phase of the run (the steps of it that fall before the end).
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseStats {
    pub name: String,
    pub first_step: u64,
    /// `None` for an open-ended last phase.
    pub steps: Option<u64>,
    /// In the mix's category order.
    pub categories: Vec<PhaseShare>,
}

/// One category over the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryTotal {
    pub category: String,
    pub sequences: u64,
    pub tokens: u64,
    /// Tokens of one epoch of the category in the corpus.
    pub category_tokens: u64,
    /// Sequences served / sequences in one epoch.
    pub repetition: f64,
}

/// [`Sampler::stats`]'s figures.
#[derive(Debug, Clone, PartialEq)]
pub struct MixStats {
    pub steps: u64,
    pub global_batch: u32,
    pub seq_len: u32,
    /// Tokens per sequence as delivered (inputs plus the shifted target).
    pub sequence_tokens: u64,
    pub phases: Vec<PhaseStats>,
    /// In the mix's category order.
    pub categories: Vec<CategoryTotal>,
}

impl Sampler {
    /// What the first `steps` steps serve, from the schedule alone.
    pub fn stats(&self, steps: u64) -> MixStats {
        let spec = self.spec();
        let n = spec.categories.len();
        let sched = self.schedule();
        let seq_tokens = spec.sequence_tokens() as u64;
        let mut per_phase = vec![vec![0u64; n]; spec.phases.len()];
        let mut st = AllocState {
            step: 0,
            consumed: vec![0; n],
            deficit: vec![0; n],
        };
        while st.step < steps {
            let p = spec.phase_of(st.step);
            let counts = sched.advance(&mut st);
            for c in 0..n {
                per_phase[p][c] += counts[c] as u64;
            }
        }
        let phases = spec
            .phases
            .iter()
            .enumerate()
            .map(|(p, phase)| PhaseStats {
                name: phase.name.clone(),
                first_step: phase.first_step,
                steps: phase.steps,
                categories: (0..n)
                    .map(|c| PhaseShare {
                        category: spec.categories[c].clone(),
                        share: phase.share(c),
                        sequences: per_phase[p][c],
                        tokens: per_phase[p][c] * seq_tokens,
                    })
                    .collect(),
            })
            .collect();
        let categories = (0..n)
            .map(|c| {
                let stream = &self.streams()[c];
                let sequences = st.consumed[c];
                CategoryTotal {
                    category: spec.categories[c].clone(),
                    sequences,
                    tokens: sequences * seq_tokens,
                    category_tokens: stream.epoch_tokens(),
                    repetition: sequences as f64 / stream.sequences_per_epoch() as f64,
                }
            })
            .collect();
        MixStats {
            steps,
            global_batch: spec.global_batch,
            seq_len: spec.seq_len,
            sequence_tokens: seq_tokens,
            phases,
            categories,
        }
    }
}
