//! Hugging Face interop: a model directory (`config.json` +
//! `model.safetensors`) that `transformers`' `GPTNeoXForCausalLM` loads, and
//! the reverse, so a Pythia checkpoint from the Hub can be continued here.
//!
//! Tensor names are already GPTNeoX's (see [`crate::params`]), so export is
//! a config file plus the checkpoint's weights, and import is a check that
//! the config describes the architecture this crate implements (parallel
//! residual, exact GELU, 4x MLP, untied embeddings, rotary base 10000), then
//! a load by name. Every refusal names the file and the field.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use serde_json::{json, Value};

use crate::checkpoint::{self, model_safetensors, TrainState};
use crate::config::ModelConfig;
use crate::params::ParamLayout;

#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Bad { path: PathBuf, detail: String },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

type Result<T> = std::result::Result<T, HfError>;

fn bad(path: &Path, detail: impl Into<String>) -> HfError {
    HfError::Bad {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| HfError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Tensors a `transformers` GPTNeoX file may carry besides parameters
/// (causal-mask and rotary buffers of older versions); they are ignored.
fn is_buffer(name: &str) -> bool {
    name.ends_with("attention.bias")
        || name.ends_with("attention.masked_bias")
        || name.ends_with("rotary_emb.inv_freq")
}

/// `config.json` for `cfg`, as `transformers` writes it for GPTNeoX.
pub fn config_json(cfg: &ModelConfig, max_positions: usize, eos: Option<u32>) -> Value {
    let mut v = json!({
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "intermediate_size": 4 * cfg.d_model,
        "hidden_act": "gelu",
        "rotary_pct": cfg.rotary_pct,
        "rotary_emb_base": 10000,
        "max_position_embeddings": max_positions,
        "layer_norm_eps": cfg.layer_norm_eps,
        "use_parallel_residual": true,
        "tie_word_embeddings": false,
        "attention_bias": true,
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": true,
        "torch_dtype": "float32",
    });
    if let Some(e) = eos {
        v["eos_token_id"] = json!(e);
        v["bos_token_id"] = json!(e);
    }
    v
}

/// The fields of a GPTNeoX `config.json` this crate reads, by
/// `transformers`' names; every other field is ignored, and a `null` reads
/// as absent. transformers 5 moved the rotary settings into
/// `rope_parameters` under new names (`partial_rotary_factor`,
/// `rope_theta`); both spellings are read, the old one first. They are
/// separate fields rather than serde aliases because a file may carry both
/// (an alias would refuse it as a duplicate).
#[derive(serde::Deserialize)]
struct GptNeoxConfig {
    model_type: Option<String>,
    num_hidden_layers: usize,
    hidden_size: usize,
    num_attention_heads: usize,
    vocab_size: usize,
    intermediate_size: Option<usize>,
    hidden_act: Option<String>,
    use_parallel_residual: Option<bool>,
    tie_word_embeddings: Option<bool>,
    layer_norm_eps: Option<f64>,
    rotary_pct: Option<f64>,
    partial_rotary_factor: Option<f64>,
    rotary_emb_base: Option<f64>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
}

/// `rope_parameters` of a transformers 5 config.
#[derive(serde::Deserialize)]
struct RopeParameters {
    partial_rotary_factor: Option<f64>,
    rope_theta: Option<f64>,
}

impl GptNeoxConfig {
    fn rotary_pct(&self) -> f64 {
        self.rotary_pct
            .or(self.partial_rotary_factor)
            .or(self
                .rope_parameters
                .as_ref()
                .and_then(|r| r.partial_rotary_factor))
            .unwrap_or(0.25)
    }

    fn rotary_base(&self) -> f64 {
        self.rotary_emb_base
            .or(self.rope_theta)
            .or(self.rope_parameters.as_ref().and_then(|r| r.rope_theta))
            .unwrap_or(10000.0)
    }
}

/// Reads a GPTNeoX `config.json` and checks it is the architecture this
/// crate implements.
pub fn read_config(path: &Path) -> Result<ModelConfig> {
    let v: Value = serde_json::from_slice(&read(path)?).map_err(|e| {
        bad(
            path,
            format!("line {}, column {}: {e}", e.line(), e.column()),
        )
    })?;
    // The sizes first, so that a wrong one is named (serde's own message
    // for a float or a string where an integer belongs names no key).
    for key in [
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "vocab_size",
    ] {
        if !v.get(key).is_some_and(|x| x.is_u64()) {
            return Err(bad(
                path,
                format!("`{key}` is missing or not a positive integer"),
            ));
        }
    }
    let c: GptNeoxConfig = serde_json::from_value(v).map_err(|e| bad(path, e.to_string()))?;
    if let Some(t) = &c.model_type {
        if t != "gpt_neox" {
            return Err(bad(
                path,
                format!("`model_type` is {t:?}; only \"gpt_neox\" (Pythia) models load here"),
            ));
        }
    }
    let (n_layer, d_model, n_head) = (c.num_hidden_layers, c.hidden_size, c.num_attention_heads);
    let intermediate = c.intermediate_size.unwrap_or(4 * d_model);
    let act = c.hidden_act.as_deref().unwrap_or("gelu");
    let checks: [(bool, String); 6] = [
        (
            n_head == 0 || !d_model.is_multiple_of(n_head),
            format!("`hidden_size` {d_model} is not a multiple of `num_attention_heads` {n_head}"),
        ),
        (
            intermediate != 4 * d_model,
            format!("`intermediate_size` {intermediate} is not 4 x hidden_size; only the 4x MLP is implemented"),
        ),
        (
            act != "gelu",
            format!("`hidden_act` is {act:?}; only exact \"gelu\" is implemented"),
        ),
        (
            c.use_parallel_residual == Some(false),
            "`use_parallel_residual` is false; only the parallel residual is implemented".into(),
        ),
        (
            c.tie_word_embeddings == Some(true),
            "`tie_word_embeddings` is true; GPT-NeoX's embeddings are untied".into(),
        ),
        (
            c.rotary_base() != 10000.0,
            "`rotary_emb_base` is not 10000; only base 10000 is implemented".into(),
        ),
    ];
    if let Some((_, why)) = checks.iter().find(|c| c.0) {
        return Err(bad(path, why.clone()));
    }
    Ok(ModelConfig {
        n_layer,
        d_model,
        n_head,
        vocab_size: c.vocab_size,
        rotary_pct: c.rotary_pct() as f32,
        layer_norm_eps: c.layer_norm_eps.unwrap_or(1e-5) as f32,
    })
}

/// The safetensors files of an HF directory: `model.safetensors`, or the
/// shards a `model.safetensors.index.json` lists.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let v: Value =
            serde_json::from_slice(&read(&index)?).map_err(|e| bad(&index, e.to_string()))?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(&index, "`weight_map` is missing"))?;
        let mut files: Vec<PathBuf> = map
            .values()
            .filter_map(Value::as_str)
            .map(|f| dir.join(f))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    Err(bad(
        dir,
        "no model.safetensors (or model.safetensors.index.json); PyTorch .bin weights are not read: convert them with transformers' save_pretrained(safe_serialization=True)",
    ))
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Loads an HF GPTNeoX directory: its config and its weights in the flat
/// layout (f32; f16 and bf16 files are widened).
pub fn load_dir(dir: &Path) -> Result<(ModelConfig, Vec<f32>)> {
    let cfg = read_config(&dir.join("config.json"))?;
    let layout = ParamLayout::new(&cfg);
    let mut flat = vec![0f32; layout.total];
    let mut found: BTreeMap<String, ()> = BTreeMap::new();
    for file in weight_files(dir)? {
        let bytes = read(&file)?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(&file, format!("not a safetensors file: {e}")))?;
        for (name, view) in st.tensors() {
            // transformers 5 names the head `lm_head` in memory; files from
            // it and from its predecessors say `embed_out`.
            let name = if name == "lm_head.weight" {
                "embed_out.weight".to_string()
            } else {
                name
            };
            let Some(t) = layout.tensors.iter().find(|t| t.name == name) else {
                if is_buffer(&name) {
                    continue;
                }
                return Err(bad(
                    &file,
                    format!("tensor {name} is not part of a GPTNeoX model with this config"),
                ));
            };
            if view.shape() != t.shape.as_slice() {
                return Err(bad(
                    &file,
                    format!(
                        "tensor {name} has shape {:?}; config.json implies {:?}",
                        view.shape(),
                        t.shape
                    ),
                ));
            }
            let values = to_f32(view.dtype(), view.data()).ok_or_else(|| {
                bad(
                    &file,
                    format!(
                        "tensor {name} is {:?}; F32, F16 or BF16 expected",
                        view.dtype()
                    ),
                )
            })?;
            flat[t.offset..t.offset + t.len()].copy_from_slice(&values);
            found.insert(name, ());
        }
    }
    if let Some(missing) = layout.tensors.iter().find(|t| !found.contains_key(&t.name)) {
        return Err(bad(dir, format!("tensor {} is missing", missing.name)));
    }
    Ok((cfg, flat))
}

/// A checkpoint directory (`.../checkpoints/step-N`), or a training run's
/// `checkpoint_dir`, whose newest whole checkpoint is meant.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf> {
    if path.join("state.json").is_file() {
        return Ok(path.to_path_buf());
    }
    match checkpoint::list(path)?.pop() {
        Some((_, dir)) => Ok(dir),
        None => Err(bad(
            path,
            "not a checkpoint (no state.json) and no checkpoints/step-* inside",
        )),
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Export {
    pub checkpoint: PathBuf,
    pub out: PathBuf,
    pub step: u64,
    pub parameters: usize,
    pub files: Vec<String>,
}

/// Writes `config.json` and `model.safetensors` of a checkpoint into `out`
/// (created if needed). Each file is written whole or not at all.
pub fn export(checkpoint_path: &Path, out: &Path) -> Result<Export> {
    let ck = resolve_checkpoint(checkpoint_path)?;
    let sp = ck.join("state.json");
    let state: TrainState =
        serde_json::from_slice(&read(&sp)?).map_err(|e| bad(&sp, e.to_string()))?;
    let layout = ParamLayout::new(&state.model);
    let params = checkpoint::load_model_safetensors(&ck.join("model.safetensors"), &layout)?;
    fs::create_dir_all(out).map_err(|source| HfError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let cfg = config_json(&state.model, state.seq_len.max(2048), state.eot_id);
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = out.join(name);
        prior_data::atomic::write_atomic(&p, bytes).map_err(|e| bad(&p, e.to_string()))
    };
    write(
        "config.json",
        serde_json::to_string_pretty(&cfg)
            .expect("config serializes")
            .as_bytes(),
    )?;
    write("model.safetensors", &model_safetensors(&layout, &params))?;
    let mut files = vec!["config.json".to_string(), "model.safetensors".to_string()];
    // The corpus's tokenizer makes the directory self-contained (for
    // `prior eval` and for transformers users); byte-level corpora have none.
    if let Some(tok) = state
        .corpus
        .as_ref()
        .map(|c| c.join("tokenizer.json"))
        .filter(|p| p.is_file())
    {
        write("tokenizer.json", &read(&tok)?)?;
        files.push("tokenizer.json".into());
    }
    Ok(Export {
        checkpoint: ck,
        out: out.to_path_buf(),
        step: state.step,
        parameters: state.model.parameters(),
        files,
    })
}
