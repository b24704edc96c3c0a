//! Where a model to evaluate comes from: a training checkpoint (a
//! `checkpoints/step-N` directory or a run's checkpoint_dir, whose newest
//! checkpoint is taken) or a Hugging Face GPTNeoX directory. The tokenizer
//! is the checkpoint's corpus's, the HF directory's `tokenizer.json`, or the
//! one given.

use std::path::{Path, PathBuf};

use prior_data::tokenizer::Tokenizer;
use prior_data::Corpus;
use prior_model::checkpoint::{self, TrainState};
use prior_model::{hf, ModelConfig, ParamLayout};

use crate::EvalError;

pub struct LoadedModel {
    pub cfg: ModelConfig,
    pub params: Vec<f32>,
    pub tokenizer: Tokenizer,
    /// What was loaded (for reports).
    pub description: String,
}

/// Loads the model at `path`; `tokenizer` overrides where the tokenizer
/// comes from (`byte`, a tokenizer.json, or a corpus directory).
pub fn load_model(path: &Path, tokenizer: Option<&Path>) -> Result<LoadedModel, EvalError> {
    let explicit = match tokenizer {
        Some(t) if t.join("manifest.json").is_file() => Some(Corpus::open(t)?.tokenizer()?),
        Some(t) => Some(Tokenizer::from_spec(&t.to_string_lossy())?),
        None => None,
    };
    if path.join("config.json").is_file() {
        let (cfg, params) = hf::load_dir(path)?;
        let tok_path = path.join("tokenizer.json");
        let tokenizer = match explicit {
            Some(t) => t,
            None if tok_path.is_file() => Tokenizer::from_path(&tok_path)?,
            None => {
                return Err(EvalError::Usage(format!(
                    "{} has no tokenizer.json; name one with --tokenizer (a tokenizer.json, `byte`, or a corpus directory)",
                    path.display()
                )))
            }
        };
        return Ok(LoadedModel {
            cfg,
            params,
            tokenizer,
            description: format!("Hugging Face directory {}", path.display()),
        });
    }
    let dir = hf::resolve_checkpoint(path)?;
    let sp = dir.join("state.json");
    let bytes = std::fs::read(&sp).map_err(|source| EvalError::Io {
        path: sp.clone(),
        source,
    })?;
    let state: TrainState = serde_json::from_slice(&bytes)
        .map_err(|e| EvalError::Usage(format!("{}: {e}", sp.display())))?;
    let layout = ParamLayout::new(&state.model);
    let params = checkpoint::load_model_safetensors(&dir.join("model.safetensors"), &layout)?;
    let tokenizer = match (explicit, &state.corpus) {
        (Some(t), _) => t,
        (None, Some(c)) => Corpus::open(c)?.tokenizer()?,
        (None, None) => {
            return Err(EvalError::Usage(format!(
                "{} does not record its corpus; name the tokenizer with --tokenizer",
                sp.display()
            )))
        }
    };
    Ok(LoadedModel {
        cfg: state.model,
        params,
        tokenizer,
        description: format!("checkpoint {} (step {})", dir.display(), state.step),
    })
}

/// The checkpoint a training run finished with, if it finished `steps`
/// (`None` also when it has none yet). A checkpoint directory that cannot
/// be listed is an error naming it.
pub fn finished_checkpoint(run_dir: &Path, steps: u64) -> Result<Option<PathBuf>, EvalError> {
    Ok(checkpoint::list(run_dir)?
        .pop()
        .filter(|(s, _)| *s == steps)
        .map(|(_, d)| d))
}
