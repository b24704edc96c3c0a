//! The error type of prior-data's storage side (shards, corpora, ingest).
//!
//! Every variant names the file at fault, and where it helps the frame,
//! line or manifest field, because the user's next step is to look at that
//! exact place. Nothing here panics on bad bytes.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where inside a shard a fault was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardRegion {
    Header,
    Frame(usize),
    Index,
    Footer,
}

impl fmt::Display for ShardRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardRegion::Header => write!(f, "header"),
            ShardRegion::Frame(i) => write!(f, "frame {i}"),
            ShardRegion::Index => write!(f, "index"),
            ShardRegion::Footer => write!(f, "footer"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt shard {}, {region}: {detail}", path.display())]
    CorruptShard {
        path: PathBuf,
        region: ShardRegion,
        detail: String,
    },
    #[error("corpus manifest {}: {detail}", path.display())]
    Manifest { path: PathBuf, detail: String },
    #[error("{}{}: {detail}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Input {
        path: PathBuf,
        line: Option<u64>,
        detail: String,
    },
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    #[error(transparent)]
    Filter(#[from] crate::filter::FilterError),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: &Path,
        region: ShardRegion,
        detail: impl Into<String>,
    ) -> DataError {
        DataError::CorruptShard {
            path: path.to_path_buf(),
            region,
            detail: detail.into(),
        }
    }

    pub(crate) fn manifest(path: &Path, detail: impl Into<String>) -> DataError {
        DataError::Manifest {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn input(path: &Path, line: Option<u64>, detail: impl Into<String>) -> DataError {
        DataError::Input {
            path: path.to_path_buf(),
            line,
            detail: detail.into(),
        }
    }
}

/// Extension to attach a path to `std::io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| DataError::io(path, e))
    }
}
