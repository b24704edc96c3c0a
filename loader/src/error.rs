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
    #[error("shard {}, frame {frame}: {detail}", shard.display())]
    Frame {
        shard: PathBuf,
        frame: u32,
        detail: String,
    },
    #[error("loader thread {thread} panicked{}{}: {message}",
        step.map(|s| format!(" building step {s}")).unwrap_or_default(),
        reading.as_ref().map(|r| format!(" while reading {r}")).unwrap_or_default())]
    WorkerPanic {
        thread: String,
        step: Option<u64>,
        /// The shard and frame the thread was reading, when known.
        reading: Option<String>,
        message: String,
    },
    #[error("loader stopped at step {step}: {source}")]
    Stopped {
        step: u64,
        #[source]
        source: Box<LoaderError>,
    },
}

pub type Result<T, E = LoaderError> = std::result::Result<T, E>;

impl LoaderError {
    /// The step a loader failure belongs to, when it is known.
    pub fn failed_step(&self) -> Option<u64> {
        match self {
            LoaderError::Stopped { step, .. } => Some(*step),
            LoaderError::WorkerPanic { step, .. } => *step,
            _ => None,
        }
    }
}
