//! prior-model's integration tests, one binary: every test file would
//! otherwise be its own binary that links and compiles the GPU kernels
//! again.
//!
//! - [`hf`]: logits against `transformers`, Hugging Face config checks.
//! - [`model`]: gradients of the CPU reference and of the device model.
//! - [`native`]: the native CPU backend against the reference and wgpu.
//! - [`train`]: the trainer end to end, its step's pieces (micro-batch
//!   accumulation, the optimizer, the learning-rate schedule) and its errors.

mod hf;
mod model;
mod native;
mod train;
