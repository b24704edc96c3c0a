//! prior-model: the GPT-NeoX/Pythia architecture (LayerNorm, parallel
//! attention + MLP residual, rotary on 25% of head dimensions, exact GELU
//! MLP at 4x, untied embeddings, vocabulary padded to 128) over one flat
//! parameter buffer with Hugging Face tensor names.
//!
//! - [`config`]: presets (tiny ones for tests, the Pythia suite).
//! - [`params`]: the flat layout and GPT-NeoX initialisation.
//! - [`cpu`]: the CPU reference model, forward and backward.
//! - [`device`]: the same model on runtime kernels, forward and backward.
//! - [`native`]: the native CPU backend: the reference model on a GEMM,
//!   trained and scored on the host (`--device cpu`).
//! - [`train`]: the training loop, and the pieces of its step that
//!   `prior bench step` times (accumulation, optimizer, loader options);
//!   [`checkpoint`]: safetensors checkpoints; [`metrics`]: the run's
//!   metrics.jsonl, its line types and the one reader of it.
//! - [`hf`]: Hugging Face `config.json` + safetensors export and import.
//! - [`heldout`]: held-out loss per corpus category.
//! - [`compile_check`]: a training step's kernels as CUDA for a named
//!   architecture, without a GPU (`prior runtime compile-check`).

pub mod checkpoint;
pub mod compile_check;
pub mod config;
pub mod cpu;
pub mod device;
pub mod heldout;
pub mod hf;
pub mod metrics;
pub mod native;
pub mod parallel;
pub mod params;
pub mod train;

pub use config::ModelConfig;
pub use params::ParamLayout;
