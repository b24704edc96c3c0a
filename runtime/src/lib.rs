//! prior-runtime: the cubecl training runtime (not built yet).
//!
//! Will own device selection (CUDA, wgpu/Vulkan), device buffers, every
//! transformer kernel forward and backward, and collectives. Nothing here
//! is usable yet.
