//! Errors of the loader: a bad mix spec names the file and key; a data
//! fault met mid-run carries prior-data's error, which names the shard and
//! frame.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("mix {}: {detail}", path.display())]
    Mix { path: PathBuf, detail: String },
    #[error(transparent)]
    Data(#[from] prior_data::DataError),
    #[error("loader state: {0}")]
    State(String),
    #[error("{0}")]
    Usage(String),
    #[error("loader stopped at step {step}: {source}")]
    Stopped {
        step: u64,
        #[source]
        source: Box<LoaderError>,
    },
}

pub type Result<T, E = LoaderError> = std::result::Result<T, E>;
