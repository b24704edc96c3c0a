//! prior-eval: how aligned a trained model is, and the experiments that
//! compare mixes.
//!
//! - [`suite`]: the binary-choice question format (JSONL) and its checks.
//! - [`prompts`]: templates x answer orders x persona prefixes.
//! - [`backend`]: where scoring and training run (a cubecl device or the
//!   native CPU backend).
//! - [`score`]: log-probability scoring on the device, rates with standard
//!   errors per split and topic, paired differences between models.
//! - [`source`]: a model from a checkpoint or a Hugging Face directory.
//! - [`experiment`]: train and evaluate one condition per mix change.
//! - [`demo`]: `prior demo`'s data and experiment, built from nothing.
//! - [`results`]: what an experiment found (`results.json`'s types).
//! - [`report`]: `report.md` and its SVG charts, from those results.

pub mod backend;
pub mod demo;
pub mod experiment;
pub mod prompts;
pub mod report;
pub mod results;
pub mod score;
pub mod source;
pub mod suite;

pub use backend::{Backend, NativeCpu};
pub use prompts::{Mode, Persona};
pub use score::{evaluate, EvalOptions, EvalReport, OptionField, OptionsError, PairingError, Rate};
pub use suite::{load_suite, Question};

/// Everything that can go wrong in an evaluation or an experiment. Errors
/// about a file name that file (and its line where there is one), so the
/// message alone says what to look at.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Options(#[from] score::OptionsError),
    #[error(transparent)]
    Suite(#[from] suite::SuiteError),
    #[error(transparent)]
    Data(#[from] prior_data::DataError),
    #[error(transparent)]
    Synth(#[from] prior_data::synth::SynthError),
    #[error(transparent)]
    Tokenizer(#[from] prior_data::tokenizer::TokenizerError),
    #[error(transparent)]
    Runtime(#[from] prior_runtime::RuntimeError),
    #[error(transparent)]
    Heldout(#[from] prior_model::heldout::HeldoutError),
    #[error(transparent)]
    Hf(#[from] prior_model::hf::HfError),
    #[error(transparent)]
    Checkpoint(#[from] prior_model::checkpoint::CheckpointError),
    #[error(transparent)]
    Train(#[from] prior_model::train::TrainError),
    #[error(transparent)]
    Loader(#[from] prior_loader::LoaderError),
    /// A training run's metrics.jsonl that cannot be read (file and line named).
    #[error(transparent)]
    Metrics(#[from] prior_model::metrics::MetricsError),
    #[error(transparent)]
    Plot(#[from] prior_perf::plot::PlotError),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A file that exists but whose content cannot be used.
    #[error("{}{}: {detail}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        path: std::path::PathBuf,
        /// 1-based, for line-oriented files.
        line: Option<usize>,
        detail: String,
    },
    /// Two evaluations (named by their files, `a` the "first" of the
    /// message) that cannot be compared question by question.
    #[error("{} and {}: {source}", a.display(), b.display())]
    Pairing {
        a: std::path::PathBuf,
        b: std::path::PathBuf,
        source: score::PairingError,
    },
    /// A value that cannot be written in the file format it is meant for
    /// (a path that is not UTF-8 in TOML, say).
    #[error("{what} cannot be written: {detail}")]
    Serialize { what: String, detail: String },
    #[error("{0}")]
    Usage(String),
}
