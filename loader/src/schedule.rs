//! The mix schedule: how many sequences of each category every global
//! batch holds, and in which batch positions.
//!
//! Exact shares: category c's ideal count per batch is `B * w_c`, usually
//! fractional. Every batch gives c either `floor(B * w_c)` or one more,
//! and the extra sequences go, step by step, to the categories whose
//! running deficit (ideal count so far minus actual) is largest. So each
//! batch is within one sequence of target for every category, and the
//! cumulative count never drifts from `steps * B * w_c` (the property tests
//! check |deficit| < 1 sequence). The arithmetic is in integers (weights in
//! units of 1e-9), identical on every machine.
//!
//! The deficits make the schedule a recurrence. Resuming needs only the
//! O(categories) state a checkpoint carries; starting cold at step s
//! replays the recurrence (a few nanoseconds a step, no data touched) from
//! the nearest cached snapshot.

use std::sync::Mutex;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use crate::mix::{MixSpec, WEIGHT_UNITS};

/// Steps between cached recurrence snapshots.
const SNAPSHOT_EVERY: u64 = 4096;

/// The schedule's state at the start of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocState {
    pub step: u64,
    /// Sequences of each category served before this step.
    pub consumed: Vec<u64>,
    /// Running deficit of each category in the current phase, in units of
    /// 1e-9 sequences.
    pub deficit: Vec<i64>,
}

#[derive(Debug, Clone)]
struct PhaseAlloc {
    first_step: u64,
    base: Vec<u64>,
    rem: Vec<i64>,
    extras: usize,
}

/// One step's plan: for each batch position, its category and the index
/// of the sequence within that category's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub step: u64,
    pub phase: usize,
    pub counts: Vec<u32>,
    pub positions: Vec<(u16, u64)>,
}

pub struct MixSchedule {
    batch: u64,
    key: u64,
    phases: Vec<PhaseAlloc>,
    snapshots: Mutex<Vec<AllocState>>,
}

impl MixSchedule {
    pub fn new(spec: &MixSpec) -> MixSchedule {
        let batch = spec.global_batch as u64;
        let phases = spec
            .phases
            .iter()
            .map(|p| {
                let base: Vec<u64> = p.units.iter().map(|&u| batch * u / WEIGHT_UNITS).collect();
                let rem: Vec<i64> = p
                    .units
                    .iter()
                    .map(|&u| (batch * u % WEIGHT_UNITS) as i64)
                    .collect();
                let extras = (batch - base.iter().sum::<u64>()) as usize;
                PhaseAlloc {
                    first_step: p.first_step,
                    base,
                    rem,
                    extras,
                }
            })
            .collect();
        let n = spec.categories.len();
        MixSchedule {
            batch,
            key: spec.key,
            phases,
            snapshots: Mutex::new(vec![AllocState {
                step: 0,
                consumed: vec![0; n],
                deficit: vec![0; n],
            }]),
        }
    }

    pub fn batch(&self) -> u64 {
        self.batch
    }

    fn phase_of(&self, step: u64) -> usize {
        self.phases
            .iter()
            .rposition(|p| p.first_step <= step)
            .expect("phase 0 starts at 0")
    }

    /// Category counts of `st.step`; advances `st` past it.
    pub fn advance(&self, st: &mut AllocState) -> Vec<u32> {
        let mut counts = Vec::new();
        self.advance_into(st, &mut counts);
        counts
    }

    fn advance_into(&self, st: &mut AllocState, counts: &mut Vec<u32>) {
        let p = &self.phases[self.phase_of(st.step)];
        if st.step == p.first_step {
            st.deficit.iter_mut().for_each(|d| *d = 0);
        }
        for (d, r) in st.deficit.iter_mut().zip(&p.rem) {
            *d += r;
        }
        counts.clear();
        counts.extend(p.base.iter().map(|&b| b as u32));
        // The extras go to the largest deficits (ties: lower index), one
        // each; `counts[c] > base[c]` marks a category already served.
        for _ in 0..p.extras {
            let mut best: Option<usize> = None;
            for (c, (&n, &base)) in counts.iter().zip(&p.base).enumerate() {
                if n as u64 == base && best.is_none_or(|b| st.deficit[c] > st.deficit[b]) {
                    best = Some(c);
                }
            }
            let c = best.expect("fewer extras than categories");
            counts[c] += 1;
            st.deficit[c] -= WEIGHT_UNITS as i64;
        }
        for (c, n) in st.consumed.iter_mut().zip(counts.iter()) {
            *c += *n as u64;
        }
        st.step += 1;
    }

    /// The state at the start of `step`, computed without touching data.
    pub fn state_at(&self, step: u64) -> AllocState {
        let mut snaps = self.snapshots.lock().expect("schedule snapshots");
        let idx = ((step / SNAPSHOT_EVERY) as usize).min(snaps.len() - 1);
        let mut st = snaps[idx].clone();
        let mut counts = Vec::new();
        while st.step < step {
            self.advance_into(&mut st, &mut counts);
            if st.step.is_multiple_of(SNAPSHOT_EVERY)
                && st.step / SNAPSHOT_EVERY == snaps.len() as u64
            {
                snaps.push(st.clone());
            }
        }
        st
    }

    /// The plan of `st.step` (positions shuffled by a key of the mix and
    /// step, so every rank's slice holds a fair mix); advances `st`.
    pub fn plan(&self, st: &mut AllocState) -> StepPlan {
        let step = st.step;
        let phase = self.phase_of(step);
        let before = st.consumed.clone();
        let counts = self.advance(st);
        let mut cats: Vec<u16> = Vec::with_capacity(self.batch as usize);
        for (c, &n) in counts.iter().enumerate() {
            cats.extend(std::iter::repeat_n(c as u16, n as usize));
        }
        let mut rng =
            ChaCha12Rng::seed_from_u64(self.key ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        cats.shuffle(&mut rng);
        let mut next = before;
        let positions = cats
            .into_iter()
            .map(|c| {
                let k = next[c as usize];
                next[c as usize] += 1;
                (c, k)
            })
            .collect();
        StepPlan {
            step,
            phase,
            counts,
            positions,
        }
    }
}
