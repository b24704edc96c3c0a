//! Errors of the runtime: a device that is absent or failed, or a kernel
//! the device rejected.

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("device: {0}")]
    Device(String),
    #[error("kernel {kernel}: {detail}")]
    Kernel {
        kernel: &'static str,
        detail: String,
    },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
