//! Errors of the runtime: a device that is absent or failed, a kernel the
//! device rejected, or a buffer larger than the device takes.

use crate::buffer::{mib, BufferLimit};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("device: {0}")]
    Device(String),
    #[error("kernel {kernel}: {detail}")]
    Kernel {
        kernel: &'static str,
        detail: String,
    },
    /// Refused before allocation: past the limit cubecl would fail only at
    /// the next sync, naming no buffer. `advice` is what the caller knows
    /// to do about it (the model: the largest batch that fits), or empty.
    #[error(
        "{name} buffer of {} ({bytes} bytes) exceeds the device's {limit}{}",
        mib(*.bytes),
        if .advice.is_empty() { String::new() } else { format!("; {}", .advice) }
    )]
    BufferTooLarge {
        name: String,
        bytes: u64,
        limit: BufferLimit,
        advice: String,
    },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
