//! Checkpoints: a directory per step, written whole or not at all.
//!
//! ```text
//! <checkpoint_dir>/checkpoints/step-00000200/model.safetensors      parameters, Hugging Face GPTNeoX names
//! <checkpoint_dir>/checkpoints/step-00000200/optimizer.safetensors  AdamW moments (flat, same layout)
//! <checkpoint_dir>/checkpoints/step-00000200/state.json             step, loader state, configs, metrics length
//! ```
//!
//! The directory is written under a temporary name, every file fsynced,
//! then renamed into place: a process killed mid-write leaves no directory
//! that looks whole, and `--resume` takes the newest whole one.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use prior_loader::LoaderState;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::params::ParamLayout;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {}: {detail}", path.display())]
    Bad { path: PathBuf, detail: String },
}

type Result<T> = std::result::Result<T, CheckpointError>;

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Everything besides tensors a resumed run needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps completed.
    pub step: u64,
    pub loader: LoaderState,
    pub model: ModelConfig,
    /// Bytes of metrics.jsonl at this step: a resumed run truncates to it,
    /// so the log holds each step once.
    pub metrics_bytes: u64,
    /// The training config as given (TOML text), for the record.
    pub config: String,
    /// Sequence length trained at, and the tokenizer's end-of-text id
    /// (for an exported `config.json`).
    #[serde(default)]
    pub seq_len: usize,
    #[serde(default)]
    pub eot_id: Option<u32>,
    /// The corpus trained on (its tokenizer encodes prompts for evaluation).
    #[serde(default)]
    pub corpus: Option<PathBuf>,
    /// The f16 loss scale after this step (absent for other precisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<crate::train::LossScale>,
    /// The number of data-parallel ranks the run had when it wrote this
    /// (a run may resume at another).
    #[serde(default = "one")]
    pub world: u32,
}

fn one() -> u32 {
    1
}

pub struct Checkpoint {
    pub dir: PathBuf,
    pub state: TrainState,
    pub params: Vec<f32>,
    pub exp_avg: Vec<f32>,
    pub exp_avg_sq: Vec<f32>,
}

// safetensors stores little-endian values, and the casts below reinterpret
// memory as it is: on a big-endian target they would silently swap bytes.
#[cfg(not(target_endian = "little"))]
compile_error!("checkpoints read and write f32 in native byte order, which safetensors requires to be little-endian");

fn as_bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// f32 values of a tensor's bytes. The bytes sit at whatever offset the
/// file gives them, so they are copied out rather than cast in place (a
/// cast needs 4-byte alignment).
fn from_bytes(b: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(b)
}

/// Parameters as safetensors with their HF names and shapes.
pub fn model_safetensors(layout: &ParamLayout, params: &[f32]) -> Vec<u8> {
    let views: Vec<(String, TensorView)> = layout
        .tensors
        .iter()
        .map(|t| {
            let data = as_bytes(&params[t.offset..t.offset + t.len()]);
            (
                t.name.clone(),
                TensorView::new(Dtype::F32, t.shape.clone(), data).expect("shape matches data"),
            )
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(meta)).expect("safetensors serializes")
}

/// Reads parameters by HF name into the flat layout.
pub fn load_model_safetensors(path: &Path, layout: &ParamLayout) -> Result<Vec<f32>> {
    let bytes = io(path, fs::read(path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Bad {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut flat = vec![0f32; layout.total];
    for t in &layout.tensors {
        let view = st.tensor(&t.name).map_err(|_| CheckpointError::Bad {
            path: path.to_path_buf(),
            detail: format!("tensor {} is missing", t.name),
        })?;
        if view.shape() != t.shape.as_slice() || view.dtype() != Dtype::F32 {
            return Err(CheckpointError::Bad {
                path: path.to_path_buf(),
                detail: format!(
                    "tensor {} is {:?} {:?}, expected F32 {:?}",
                    t.name,
                    view.dtype(),
                    view.shape(),
                    t.shape
                ),
            });
        }
        flat[t.offset..t.offset + t.len()].copy_from_slice(&from_bytes(view.data()));
    }
    Ok(flat)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = io(path, fs::File::create(path))?;
    io(path, f.write_all(bytes))?;
    io(path, f.sync_all())
}

/// Writes step `state.step`'s checkpoint atomically; keeps the newest `keep`.
pub fn save(root: &Path, layout: &ParamLayout, ck: &Checkpoint, keep: usize) -> Result<PathBuf> {
    let dir = root.join("checkpoints");
    io(&dir, fs::create_dir_all(&dir))?;
    let name = format!("step-{:08}", ck.state.step);
    let tmp = dir.join(format!("{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    io(&tmp, fs::create_dir(&tmp))?;
    write_synced(
        &tmp.join("model.safetensors"),
        &model_safetensors(layout, &ck.params),
    )?;
    let opt = safetensors::serialize(
        [
            (
                "exp_avg",
                TensorView::new(Dtype::F32, vec![ck.exp_avg.len()], as_bytes(&ck.exp_avg))
                    .expect("flat"),
            ),
            (
                "exp_avg_sq",
                TensorView::new(
                    Dtype::F32,
                    vec![ck.exp_avg_sq.len()],
                    as_bytes(&ck.exp_avg_sq),
                )
                .expect("flat"),
            ),
        ],
        None,
    )
    .expect("safetensors serializes");
    write_synced(&tmp.join("optimizer.safetensors"), &opt)?;
    write_synced(
        &tmp.join("state.json"),
        &serde_json::to_vec_pretty(&ck.state).expect("state serializes"),
    )?;
    if let Ok(d) = fs::File::open(&tmp) {
        let _ = d.sync_all();
    }
    let final_dir = dir.join(&name);
    let _ = fs::remove_dir_all(&final_dir);
    io(&final_dir, fs::rename(&tmp, &final_dir))?;
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    // Keep the newest `keep` whole checkpoints; clear leftovers of killed writes.
    let mut whole = list(root)?;
    while whole.len() > keep.max(1) {
        let old = whole.remove(0);
        let _ = fs::remove_dir_all(old.1);
    }
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.contains(".tmp-") && e.path() != tmp {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(final_dir)
}

/// Whole checkpoints, oldest first: (step, dir).
pub fn list(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = root.join("checkpoints");
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for e in io(&dir, fs::read_dir(&dir))? {
        let e = io(&dir, e)?;
        let n = e.file_name().to_string_lossy().to_string();
        if let Some(step) = n.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok()) {
            if e.path().join("state.json").is_file() {
                out.push((step, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Loads the checkpoint in `dir`.
pub fn load(dir: &Path, layout: &ParamLayout) -> Result<Checkpoint> {
    let sp = dir.join("state.json");
    let state: TrainState =
        serde_json::from_slice(&io(&sp, fs::read(&sp))?).map_err(|e| CheckpointError::Bad {
            path: sp.clone(),
            detail: e.to_string(),
        })?;
    let params = load_model_safetensors(&dir.join("model.safetensors"), layout)?;
    let op = dir.join("optimizer.safetensors");
    let bytes = io(&op, fs::read(&op))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Bad {
        path: op.clone(),
        detail: e.to_string(),
    })?;
    let get = |name: &str| -> Result<Vec<f32>> {
        let v = st.tensor(name).map_err(|e| CheckpointError::Bad {
            path: op.clone(),
            detail: e.to_string(),
        })?;
        if v.dtype() != Dtype::F32 {
            return Err(CheckpointError::Bad {
                path: op.clone(),
                detail: format!("{name} is {:?}, expected F32", v.dtype()),
            });
        }
        let data = from_bytes(v.data());
        if data.len() != layout.total {
            return Err(CheckpointError::Bad {
                path: op.clone(),
                detail: format!(
                    "{name} has {} values, the model {}",
                    data.len(),
                    layout.total
                ),
            });
        }
        Ok(data)
    };
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        params,
        exp_avg: get("exp_avg")?,
        exp_avg_sq: get("exp_avg_sq")?,
        state,
    })
}
