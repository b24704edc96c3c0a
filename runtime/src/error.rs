//! Errors of the runtime: a device that is absent or failed, a kernel the
//! device rejected, a launch whose buffers do not fit its shape, or a
//! buffer larger than the device takes.

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
    /// A launcher's buffers disagree with each other or with the shape it
    /// was given: refused before anything runs, since a kernel would read
    /// or write past a tensor, or round a row count down, without a word.
    #[error("kernel {kernel}: {detail}")]
    Shape {
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
