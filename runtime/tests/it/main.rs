//! The runtime's integration tests, one binary (one link of cubecl and
//! wgpu instead of one per file): kernels against the CPU reference, and
//! device limits met as clear errors.

mod attention;
mod cuda_offline;
mod kernels;
mod limits;
