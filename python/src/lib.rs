//! `prior_loader._native`: prior's loader as a Python extension module,
//! re-exported by the `prior_loader` package (python/prior_loader).
//!
//! It owns the boundary and nothing else: the schedule, the threads, the
//! hashes and the resume state are prior-loader's, so a batch here has the
//! bits and the hash `prior loader replay` prints for the same step. Token
//! arrays are numpy arrays that own the Rust vector they were filled in (no
//! copy after the fill); the GIL is released while a batch is awaited; every
//! Rust error becomes a [`PriorError`] carrying its message, never a panic.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::ndarray::Array2;
use numpy::PyArray2;
use prior_loader::sampler::{document_starts, SequenceMeta};
use prior_loader::{
    Batch as RsBatch, Loader as RsLoader, LoaderError, LoaderOptions, LoaderState, MixSpec,
    Sampler, Start, Token,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    prior_loader,
    PriorError,
    PyException,
    "An error of prior's loader; the message is the Rust error's, naming the file, key, shard or frame at fault."
);
create_exception!(
    prior_loader,
    CorruptDataError,
    PriorError,
    "A shard, frame or corpus manifest that is damaged, truncated or missing."
);
create_exception!(
    prior_loader,
    ConfigError,
    PriorError,
    "A mix file, argument or loader state that is not valid."
);

fn py_err(e: LoaderError) -> PyErr {
    let msg = e.to_string();
    let mut inner = &e;
    while let LoaderError::Stopped { source, .. } = inner {
        inner = source;
    }
    match inner {
        LoaderError::Frame { .. } | LoaderError::Data(_) => CorruptDataError::new_err(msg),
        LoaderError::Mix { .. } | LoaderError::State(_) | LoaderError::Usage(_) => {
            ConfigError::new_err(msg)
        }
        _ => PriorError::new_err(msg),
    }
}

/// A mix file (`mix.toml`) and the corpus it names, opened once.
#[pyclass(frozen, module = "prior_loader._native")]
struct Mix {
    path: PathBuf,
    sampler: Arc<Sampler>,
    /// Shard files by shard index.
    shard_files: Arc<Vec<String>>,
}

impl Mix {
    fn spec(&self) -> &MixSpec {
        self.sampler.spec()
    }
}

#[pymethods]
impl Mix {
    /// Opens the mix at `path` and its corpus. Raises ConfigError for a bad
    /// mix (naming the file and key) and CorruptDataError for a bad corpus.
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let (spec, corpus) = MixSpec::load(&path).map_err(py_err)?;
        let sampler = Sampler::new(spec, corpus, None).map_err(py_err)?;
        let shards = sampler.shards();
        let shard_files = (0..shards.len() as u32)
            .map(|i| shards.entry(i).file.clone())
            .collect();
        Ok(Mix {
            path,
            sampler: Arc::new(sampler),
            shard_files: Arc::new(shard_files),
        })
    }

    /// Tokens per sequence the model sees (each row holds one more: the
    /// last target).
    #[getter]
    fn seq_len(&self) -> u32 {
        self.spec().seq_len
    }

    /// Sequences per step, over all ranks.
    #[getter]
    fn global_batch(&self) -> u32 {
        self.spec().global_batch
    }

    /// The category names, in the mix's order (a batch's `categories` uses
    /// these names).
    #[getter]
    fn categories(&self) -> Vec<String> {
        self.spec().categories.clone()
    }

    /// The phase names, in order.
    #[getter]
    fn phases(&self) -> Vec<String> {
        self.spec().phases.iter().map(|p| p.name.clone()).collect()
    }

    /// The mix key (hex): what a loader state must match.
    #[getter]
    fn key(&self) -> String {
        format!("{:016x}", self.spec().key)
    }

    /// The name of the phase step `step` (0-based) belongs to.
    fn phase_of(&self, step: u64) -> String {
        self.spec().phases[self.spec().phase_of(step)].name.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Mix('{}', seq_len={}, global_batch={}, categories={:?})",
            self.path.display(),
            self.seq_len(),
            self.global_batch(),
            self.spec().categories
        )
    }
}

// Batch buffers (a quarter to half a MiB each) freed by numpy and made
// again every step: glibc serves them with mmap/munmap, mimalloc reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The widths a batch's tokens can be delivered in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    U16,
    I32,
    U32,
    I64,
}

impl Dtype {
    fn parse(name: &str, vocab: u32) -> PyResult<Self> {
        let d = match name {
            "uint16" => Dtype::U16,
            "int32" => Dtype::I32,
            "uint32" => Dtype::U32,
            "int64" => Dtype::I64,
            other => {
                return Err(ConfigError::new_err(format!(
                "dtype {other:?}: use \"int64\" (the default), \"int32\", \"uint32\" or \"uint16\""
            )))
            }
        };
        if d == Dtype::U16 && vocab > 1 << 16 {
            return Err(ConfigError::new_err(format!(
                "dtype \"uint16\" cannot hold the tokens of a vocabulary of {vocab}"
            )));
        }
        Ok(d)
    }
}

/// A loader filling batches in one of the [`Dtype`]s.
enum AnyLoader {
    U16(RsLoader<u16>),
    I32(RsLoader<i32>),
    U32(RsLoader<u32>),
    I64(RsLoader<i64>),
}

/// A batch in one of the [`Dtype`]s.
enum AnyBatch {
    U16(RsBatch<u16>),
    I32(RsBatch<i32>),
    U32(RsBatch<u32>),
    I64(RsBatch<i64>),
}

/// Runs `$body` with `$l` bound to the typed value inside `$any`, an
/// [`AnyLoader`] or [`AnyBatch`] (`$enum`).
macro_rules! each_dtype {
    ($any:expr, $enum:ident, |$l:ident| $body:expr) => {
        match $any {
            $enum::U16($l) => $body,
            $enum::I32($l) => $body,
            $enum::U32($l) => $body,
            $enum::I64($l) => $body,
        }
    };
}

impl AnyLoader {
    fn new(
        dtype: Dtype,
        sampler: Arc<Sampler>,
        start: Start,
        options: &LoaderOptions,
    ) -> prior_loader::Result<AnyLoader> {
        Ok(match dtype {
            Dtype::U16 => AnyLoader::U16(RsLoader::typed(sampler, start, options)?),
            Dtype::I32 => AnyLoader::I32(RsLoader::typed(sampler, start, options)?),
            Dtype::U32 => AnyLoader::U32(RsLoader::typed(sampler, start, options)?),
            Dtype::I64 => AnyLoader::I64(RsLoader::typed(sampler, start, options)?),
        })
    }

    fn next_batch(&mut self) -> prior_loader::Result<Option<AnyBatch>> {
        Ok(match self {
            AnyLoader::U16(l) => l.next_batch()?.map(AnyBatch::U16),
            AnyLoader::I32(l) => l.next_batch()?.map(AnyBatch::I32),
            AnyLoader::U32(l) => l.next_batch()?.map(AnyBatch::U32),
            AnyLoader::I64(l) => l.next_batch()?.map(AnyBatch::I64),
        })
    }

    fn state(&self) -> &LoaderState {
        each_dtype!(self, AnyLoader, |l| l.state())
    }

    fn delivered_tokens(&self) -> u64 {
        each_dtype!(self, AnyLoader, |l| l.delivered_tokens())
    }
}

impl Dtype {
    /// Step `step`'s batch for `rank` of `world`, in this width.
    fn batch_at(
        self,
        sampler: &Sampler,
        step: u64,
        rank: u32,
        world: u32,
    ) -> prior_loader::Result<AnyBatch> {
        Ok(match self {
            Dtype::U16 => AnyBatch::U16(sampler.batch_at_as(step, rank, world)?),
            Dtype::I32 => AnyBatch::I32(sampler.batch_at_as(step, rank, world)?),
            Dtype::U32 => AnyBatch::U32(sampler.batch_at_as(step, rank, world)?),
            Dtype::I64 => AnyBatch::I64(sampler.batch_at_as(step, rank, world)?),
        })
    }
}

/// One rank's slice of one step: `tokens` is `[global_batch / world,
/// seq_len + 1]` (inputs `[:, :-1]`, targets `[:, 1:]`).
#[pyclass(frozen, module = "prior_loader._native")]
struct Batch {
    /// The step (0-based).
    #[pyo3(get)]
    step: u64,
    /// The batch's hash, the hex `prior loader hash --per-step` prints.
    #[pyo3(get)]
    hash: String,
    /// The phase the step belongs to.
    #[pyo3(get)]
    phase: String,
    /// numpy `[rows, seq_len + 1]` in the loader's dtype.
    #[pyo3(get)]
    tokens: Py<PyAny>,
    /// Each row's category name.
    #[pyo3(get)]
    categories: Vec<String>,
    /// Each row's sources and the end-of-text id, for the on-demand
    /// document starts and provenance (a batch's consumer rarely asks).
    sequences: Vec<SequenceMeta>,
    eot_id: u32,
    /// The shard file of each shard index the pieces name.
    shard_files: Arc<Vec<String>>,
}

#[pymethods]
impl Batch {
    /// Positions in row `i` where a document starts (after an end-of-text
    /// token, or where the row jumps to another frame).
    fn document_starts(&self, py: Python<'_>, i: usize) -> PyResult<Vec<u32>> {
        let i = self.row(i)?;
        let row: Vec<i64> = self
            .tokens
            .bind(py)
            .get_item(i)?
            .call_method0("tolist")?
            .extract()?;
        Ok(document_starts(
            &row,
            &self.sequences[i].pieces,
            self.eot_id,
        ))
    }

    /// Where row `i`'s tokens come from: a list of dicts with the shard
    /// file, the frame, and the token range (`start`, `len`) in it.
    fn provenance<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let i = self.row(i)?;
        self.sequences[i]
            .pieces
            .iter()
            .map(|p| {
                let d = PyDict::new(py);
                d.set_item("shard", &self.shard_files[p.shard as usize])?;
                d.set_item("frame", p.frame)?;
                d.set_item("start", p.start)?;
                d.set_item("len", p.len)?;
                Ok(d)
            })
            .collect()
    }

    fn __len__(&self) -> usize {
        self.categories.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Batch(step={}, rows={}, hash='{}')",
            self.step,
            self.categories.len(),
            self.hash
        )
    }
}

impl Batch {
    fn row(&self, i: usize) -> PyResult<usize> {
        if i < self.categories.len() {
            Ok(i)
        } else {
            Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "row {i} of a batch of {}",
                self.categories.len()
            )))
        }
    }

    fn from_any(py: Python<'_>, mix: &Mix, b: AnyBatch) -> Batch {
        each_dtype!(b, AnyBatch, |b| Batch::from_rust(py, mix, b))
    }

    /// The numpy array takes over the batch's token vector (no copy).
    fn from_rust<T: Token + numpy::Element>(py: Python<'_>, mix: &Mix, b: RsBatch<T>) -> Batch {
        let spec = mix.spec();
        let rows = b.len();
        let categories = b
            .sequences
            .iter()
            .map(|m| spec.categories[m.category as usize].clone())
            .collect();
        Batch {
            step: b.step,
            hash: format!("{:016x}", b.hash),
            phase: spec.phases[b.phase].name.clone(),
            categories,
            eot_id: b.eot_id,
            shard_files: mix.shard_files.clone(),
            tokens: {
                let a = Array2::from_shape_vec((rows, b.seq_tokens), b.tokens)
                    .expect("rows * (seq_len + 1) tokens");
                PyArray2::from_owned_array(py, a).into_any().unbind()
            },
            sequences: b.sequences,
        }
    }
}

/// Rank and world from the launcher's variables: torchrun's, then Slurm's,
/// then Open MPI's; a world of one when none is set.
fn placement_from_env() -> PyResult<(u32, u32)> {
    for (r, w) in [
        ("RANK", "WORLD_SIZE"),
        ("SLURM_PROCID", "SLURM_NTASKS"),
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ] {
        if let (Ok(rank), Ok(world)) = (std::env::var(r), std::env::var(w)) {
            let parse = |name: &str, v: &str| {
                v.trim().parse::<u32>().map_err(|_| {
                    ConfigError::new_err(format!("{name}={v:?} is not a non-negative integer"))
                })
            };
            return Ok((parse(r, &rank)?, parse(w, &world)?));
        }
    }
    Ok((0, 1))
}

/// The loader: iterate it for this rank's batches, in step order.
#[pyclass(module = "prior_loader._native")]
struct Loader {
    mix: Py<Mix>,
    options: LoaderOptions,
    dtype: Dtype,
    inner: Mutex<AnyLoader>,
}

#[pymethods]
impl Loader {
    /// A loader over `mix` (a Mix or a path) for rank `rank` of `world`
    /// (defaults from RANK/WORLD_SIZE, SLURM_PROCID/SLURM_NTASKS or
    /// OMPI_COMM_WORLD_RANK/_SIZE, else 0 of 1), from `start_step` up to
    /// `end_step` (exclusive; None: the mix's end), with `threads`
    /// decompression threads and `prefetch` batches made ahead.
    #[new]
    #[pyo3(signature = (mix, *, rank=None, world=None, start_step=0, end_step=None, threads=2, prefetch=8, dtype="int64"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        mix: &Bound<'_, PyAny>,
        rank: Option<u32>,
        world: Option<u32>,
        start_step: u64,
        end_step: Option<u64>,
        threads: usize,
        prefetch: usize,
        dtype: &str,
    ) -> PyResult<Self> {
        let mix: Py<Mix> = match mix.cast::<Mix>() {
            Ok(m) => m.clone().unbind(),
            Err(_) => Py::new(py, Mix::new(mix.extract::<PathBuf>()?)?)?,
        };
        let (env_rank, env_world) = placement_from_env()?;
        let (rank, world) = (rank.unwrap_or(env_rank), world.unwrap_or(env_world));
        let m = mix.get();
        let vocab = m.sampler.shards().corpus().manifest().tokenizer.vocab_size;
        let dtype = Dtype::parse(dtype, vocab)?;
        let options = LoaderOptions {
            threads,
            prefetch,
            rank,
            world,
            end_step,
        };
        let inner = py
            .detach(|| AnyLoader::new(dtype, m.sampler.clone(), Start::Step(start_step), &options))
            .map_err(py_err)?;
        Ok(Loader {
            mix,
            options,
            dtype,
            inner: Mutex::new(inner),
        })
    }

    /// This loader's rank.
    #[getter]
    fn rank(&self) -> u32 {
        self.options.rank
    }

    /// The number of ranks the global batch is split over.
    #[getter]
    fn world(&self) -> u32 {
        self.options.world
    }

    /// The Mix this loader reads.
    #[getter]
    fn mix(&self, py: Python<'_>) -> Py<Mix> {
        self.mix.clone_ref(py)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Batch> {
        let next = py.detach(|| self.lock().and_then(|mut l| l.next_batch().map_err(py_err)))?;
        match next {
            Some(b) => Ok(Batch::from_any(py, self.mix.get(), b)),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// Step `step`'s batch for this rank, made on demand (the iteration is
    /// not moved).
    fn replay(&self, py: Python<'_>, step: u64) -> PyResult<Batch> {
        let m = self.mix.get();
        let (rank, world) = (self.options.rank, self.options.world);
        let dtype = self.dtype;
        let b = py
            .detach(|| dtype.batch_at(&m.sampler, step, rank, world))
            .map_err(py_err)?;
        Ok(Batch::from_any(py, m, b))
    }

    /// The state after the last batch served: a dict of ints and strings
    /// (picklable, JSON-able) that `load_state_dict` resumes from.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(self.lock()?.state())
            .map_err(|e| PriorError::new_err(format!("loader state: {e}")))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// Continues from `state` (a `state_dict()`, possibly saved at another
    /// world size: the global batch must be the same): the next batch is
    /// the one after the state's last.
    fn load_state_dict(&self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = py
            .import("json")?
            .call_method1("dumps", (state,))?
            .extract()?;
        let saved: LoaderState = serde_json::from_str(&text)
            .map_err(|e| ConfigError::new_err(format!("loader state: {e}")))?;
        let saved = saved.resharded(self.options.rank, self.options.world);
        let sampler = self.mix.get().sampler.clone();
        let fresh = py
            .detach(|| AnyLoader::new(self.dtype, sampler, Start::Resume(saved), &self.options))
            .map_err(py_err)?;
        *self.lock()? = fresh;
        Ok(())
    }

    /// Tokens served so far.
    #[getter]
    fn delivered_tokens(&self) -> PyResult<u64> {
        Ok(self.lock()?.delivered_tokens())
    }
}

impl Loader {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, AnyLoader>> {
        self.inner
            .lock()
            .map_err(|_| PriorError::new_err("the loader was poisoned by an earlier panic"))
    }
}

/// Tokens per second of `steps` batches of `mix` from `start_step` made
/// in `dtype` and consumed in Rust alone (no Python objects): the bar
/// `prior_loader.bench` compares against.
#[pyfunction]
#[pyo3(signature = (mix, steps, *, start_step=0, threads=2, prefetch=8, dtype="int64"))]
fn rust_tokens_per_s(
    py: Python<'_>,
    mix: &Mix,
    steps: u64,
    start_step: u64,
    threads: usize,
    prefetch: usize,
    dtype: &str,
) -> PyResult<f64> {
    let vocab = mix
        .sampler
        .shards()
        .corpus()
        .manifest()
        .tokenizer
        .vocab_size;
    let dtype = Dtype::parse(dtype, vocab)?;
    let options = LoaderOptions {
        threads,
        prefetch,
        rank: 0,
        world: 1,
        end_step: Some(start_step + steps),
    };
    let sampler = mix.sampler.clone();
    py.detach(move || {
        let mut loader = AnyLoader::new(dtype, sampler, Start::Step(start_step), &options)?;
        let t0 = std::time::Instant::now();
        let mut tokens = 0u64;
        while let Some(b) = loader.next_batch()? {
            tokens += each_dtype!(&b, AnyBatch, |b| std::hint::black_box(b).tokens.len()) as u64;
        }
        Ok(tokens as f64 / t0.elapsed().as_secs_f64())
    })
    .map_err(py_err)
}

/// Tokens per second of one thread doing nothing but zstd-decompressing
/// about `tokens` tokens of `mix`'s frames: the bar a loader is bound by.
#[pyfunction]
fn raw_zstd_tokens_per_s(py: Python<'_>, mix: &Mix, tokens: u64) -> PyResult<f64> {
    let sampler = mix.sampler.clone();
    py.detach(move || prior_loader::raw_rate::raw_zstd_rate(&sampler, tokens))
        .map(|(rate, _)| rate)
        .map_err(py_err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Mix>()?;
    m.add_class::<Loader>()?;
    m.add_class::<Batch>()?;
    m.add_function(wrap_pyfunction!(rust_tokens_per_s, m)?)?;
    m.add_function(wrap_pyfunction!(raw_zstd_tokens_per_s, m)?)?;
    let py = m.py();
    m.add("PriorError", py.get_type::<PriorError>())?;
    m.add("CorruptDataError", py.get_type::<CorruptDataError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
