//! Held-out loss per corpus category: the mean next-token cross-entropy of
//! a model on fixed windows of each category of a corpus it is not trained
//! on. The windows are the first tokens of each category's stream (its
//! documents in order, each ending in end-of-text, as the loader sees them),
//! so the same corpus gives the same windows on every run and the numbers of
//! different runs and checkpoints compare directly.

use std::path::{Path, PathBuf};

use cubecl::prelude::*;
use prior_data::{Corpus, FrameDecoder};
use serde::Serialize;

use crate::device::DeviceModel;

#[derive(Debug, thiserror::Error)]
pub enum HeldoutError {
    #[error("held-out corpus: {0}")]
    Data(#[from] prior_data::DataError),
    #[error(transparent)]
    Runtime(#[from] prior_runtime::RuntimeError),
    #[error("held-out corpus {}: {detail}", path.display())]
    Bad { path: PathBuf, detail: String },
}

type Result<T> = std::result::Result<T, HeldoutError>;

/// One category's windows: `windows x (seq + 1)` tokens.
#[derive(Debug, Clone)]
pub struct HeldoutCategory {
    pub name: String,
    pub tokens: Vec<u32>,
    pub windows: usize,
}

#[derive(Debug, Clone)]
pub struct HeldoutSet {
    pub seq: usize,
    pub categories: Vec<HeldoutCategory>,
}

/// Held-out loss of one category.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CategoryLoss {
    pub category: String,
    pub loss: f64,
    pub tokens: usize,
}

impl HeldoutSet {
    /// Up to `max_tokens` per category (at least one window of `seq + 1`),
    /// from every category of the corpus at `dir`, or from `only`.
    pub fn load(
        dir: &Path,
        seq: usize,
        max_tokens: usize,
        vocab: usize,
        only: Option<&[String]>,
    ) -> Result<HeldoutSet> {
        let corpus = Corpus::open(dir)?;
        let names: Vec<String> = match only {
            Some(list) => list.to_vec(),
            None => corpus.manifest().categories.keys().cloned().collect(),
        };
        let want_windows = (max_tokens / seq).max(1);
        let mut categories = Vec::new();
        let mut dec = FrameDecoder::new();
        for name in names {
            let entry = corpus.category(&name)?;
            let want = want_windows * (seq + 1);
            let mut tokens: Vec<u32> = Vec::with_capacity(want);
            for shard in &entry.shards {
                if tokens.len() >= want {
                    break;
                }
                let reader = corpus.open_shard_entry(shard)?;
                let take = (want - tokens.len()) as u64;
                let end = reader.num_tokens().min(take);
                tokens.extend(reader.read_tokens(0..end, &mut dec)?);
            }
            let windows = tokens.len() / (seq + 1);
            if windows == 0 {
                return Err(HeldoutError::Bad {
                    path: dir.to_path_buf(),
                    detail: format!(
                        "category {name:?} has {} tokens, fewer than one window of {}",
                        tokens.len(),
                        seq + 1
                    ),
                });
            }
            tokens.truncate(windows * (seq + 1));
            if let Some(&t) = tokens.iter().find(|&&t| t as usize >= vocab) {
                return Err(HeldoutError::Bad {
                    path: dir.to_path_buf(),
                    detail: format!(
                        "category {name:?} holds token id {t}, outside the model's vocabulary of {vocab}: a different tokenizer?"
                    ),
                });
            }
            categories.push(HeldoutCategory {
                name,
                tokens,
                windows,
            });
        }
        Ok(HeldoutSet { seq, categories })
    }
}

/// Mean loss per category. The model must have been built for `set.seq`;
/// windows go through it `model.batch` at a time (the last batch padded
/// with repeats that are not counted). Gradients are not touched.
pub fn heldout_loss<R: Runtime, F: Float + CubeElement>(
    model: &mut DeviceModel<R, F>,
    set: &HeldoutSet,
) -> Result<Vec<CategoryLoss>> {
    assert_eq!(
        model.seq, set.seq,
        "model built for another sequence length"
    );
    let batch = model.batch;
    heldout_loss_with(set, batch, |ids, targets| {
        Ok(model.forward_token_losses(ids, targets)?)
    })
}

/// [`heldout_loss`] for any model: `token_losses(ids, targets)` gives
/// each position's loss for `batch` windows of `set.seq` tokens.
pub fn heldout_loss_with<E>(
    set: &HeldoutSet,
    batch: usize,
    mut token_losses: impl FnMut(&[u32], &[u32]) -> std::result::Result<Vec<f32>, E>,
) -> std::result::Result<Vec<CategoryLoss>, E> {
    let seq = set.seq;
    let mut out = Vec::new();
    for cat in &set.categories {
        let mut sum = 0f64;
        let mut counted = 0usize;
        for first in (0..cat.windows).step_by(batch) {
            let mut ids = Vec::with_capacity(batch * seq);
            let mut targets = Vec::with_capacity(batch * seq);
            for k in 0..batch {
                let w = (first + k).min(cat.windows - 1);
                let row = &cat.tokens[w * (seq + 1)..(w + 1) * (seq + 1)];
                ids.extend_from_slice(&row[..seq]);
                targets.extend_from_slice(&row[1..]);
            }
            let losses = token_losses(&ids, &targets)?;
            let real = batch.min(cat.windows - first);
            sum += losses[..real * seq].iter().map(|&x| x as f64).sum::<f64>();
            counted += real * seq;
        }
        out.push(CategoryLoss {
            category: cat.name.clone(),
            loss: sum / counted as f64,
            tokens: counted,
        });
    }
    Ok(out)
}
