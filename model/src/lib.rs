//! prior-model: the GPT-NeoX/Pythia architecture (LayerNorm, parallel
//! attention + MLP residual, rotary on 25% of head dimensions, exact GELU
//! MLP at 4x, untied embeddings, vocabulary padded to 128) over one flat
//! parameter buffer with Hugging Face tensor names.
//!
//! - [`config`]: presets (tiny ones for tests, the Pythia suite).
//! - [`params`]: the flat layout and GPT-NeoX initialisation.
//! - [`cpu`]: the CPU reference model, forward and backward.
//!
//! The device model and the trainer build on these (in progress).

pub mod config;
pub mod cpu;
pub mod device;
pub mod params;

pub use config::ModelConfig;
pub use params::ParamLayout;
