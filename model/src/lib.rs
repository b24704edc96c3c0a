//! prior-model: the GPT-NeoX/Pythia model and trainer (not built yet).
//!
//! Will own the architecture on runtime kernels, the flat parameter
//! layout, the training step, the optimizer, safetensors checkpoints with
//! Hugging Face names, and the CPU reference model. Nothing here is usable
//! yet.
