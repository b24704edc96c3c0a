//! `prior bench step`: where the time of a full training step goes.
//!
//! A step is the trainer's own: the batch comes from a real
//! [`prior_loader::Loader`] driven as the trainer drives it
//! ([`train::loader_options`]), the gradients from
//! [`train::accumulate_gradients`] over its micro-batches, and the update
//! from [`train::Optimizer::step`] (gradient norm, clipping, learning rate,
//! AdamW with weight decay on the matrices only) with the trainer's default
//! `[train]` hyperparameters. Batches come from the user's mix (`--mix`) or,
//! without one, from a synthetic discourse corpus (the generator behind
//! `prior data synth`, byte tokenizer) written to a temporary directory, so
//! the loader wait reported is the wait of a real loader reading shards.
//!
//! The phases are timed with a device sync at the end of each, so that each
//! phase's time is its own; the syncs cost a little, and the step total is
//! what a user would see within a few percent. Kernel times come from a
//! separate profiled step in which every kernel is followed by a sync (so
//! their sum exceeds a real step's time; read them as shares).
//!
//! Model FLOPs per token are `6 N` (N: every parameter except the input
//! embedding, whose lookup is not a matmul) plus the attention term
//! `12 n_layer d_model seq` (scores and weighted sum, forward and backward,
//! counted in full as PaLM's MFU does). MFU divides the achieved model
//! FLOP/s by the device's dense bf16 peak from [`peak_flops`] or an override.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cubecl::prelude::*;
use prior_data::corpus::WriteOptions;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::synth::{write_synth, SynthConfig};
use prior_data::tokenizer::Tokenizer;
use prior_loader::{Loader, MixSpec, Sampler, Start};
use prior_model::device::{DeviceModel, MemoryPlan};
use prior_model::train::{self, Optimizer, PhaseTimes, TrainPrecision, TrainSection};
use prior_model::{ModelConfig, ParamLayout};
use prior_runtime::buffer::sync;
use serde::Serialize;

/// Sequence length without `--mix` and without `--seq`.
pub const DEFAULT_SEQ: usize = 2048;
/// Sequences per step without `--mix` and without `--batch`.
pub const DEFAULT_BATCH: usize = 8;

/// Categories of the synthetic corpus and their token shares in its mix:
/// mostly general text with a little discourse of each kind, the shape of
/// the experiments the project runs.
const SYNTH_MIX: [(&str, f64); 3] = [("general", 0.9), ("aligned", 0.05), ("misaligned", 0.05)];

/// The most documents the synthetic corpus is grown to (about 450 M tokens).
const MAX_SYNTH_DOCS: usize = 500_000;

#[derive(Debug, Clone)]
pub struct StepBenchOptions {
    pub model: String,
    /// The model's vocabulary; raised to the corpus tokenizer's when that is
    /// larger (the synthetic corpus's byte tokenizer has 258 ids).
    pub vocab: usize,
    /// Sequence length. With `mix`, it must agree with the mix's `seq_len`
    /// (`None`: the mix's); without, `None` is [`DEFAULT_SEQ`].
    pub seq: Option<usize>,
    /// Sequences per step. With `mix`, it must agree with the mix's
    /// `global_batch` (`None`: the mix's); without, `None` is [`DEFAULT_BATCH`].
    pub batch: Option<usize>,
    /// Sequences per forward and backward, as `train.micro_batch`: a step
    /// accumulates `batch / micro_batch` of them (`None`: the whole batch).
    pub micro_batch: Option<usize>,
    /// A mix spec to take batches from; `None`: a synthetic corpus.
    pub mix: Option<PathBuf>,
    pub steps: usize,
    pub warmup: usize,
    /// Peak FLOP/s override (else the device table).
    pub peak_flops: Option<f64>,
    /// Also run one profiled step for per-kernel times.
    pub kernels: bool,
    /// The compute type, as `train.precision` (`None`: the trainer's
    /// default for the device, bf16 on CUDA and f32 elsewhere).
    pub precision: Option<TrainPrecision>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepBenchError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Synth(#[from] prior_data::synth::SynthError),
    #[error(transparent)]
    Data(#[from] prior_data::DataError),
    #[error(transparent)]
    Loader(#[from] prior_loader::LoaderError),
    #[error(transparent)]
    Train(#[from] prior_model::train::TrainError),
    #[error(transparent)]
    Runtime(#[from] prior_runtime::RuntimeError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("step {step}: loss is {loss}")]
    NonFinite { step: usize, loss: f32 },
}

type Result<T> = std::result::Result<T, StepBenchError>;

#[derive(Debug, Clone, Serialize)]
pub struct FlopsPerToken {
    pub six_n: f64,
    pub attention: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepPercentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

/// Mean milliseconds per step of each phase.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// Time the step waited for the loader's next batch.
    pub loader_wait_ms: f64,
    pub h2d_ms: f64,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelTime {
    pub kernel: String,
    pub ms: f64,
    pub launches: u64,
    pub share: f64,
}

/// The profiled step's time by kind of kernel, with the optimizer step
/// (timed apart, per step) as its own class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassTime {
    /// matmul, attention, elementwise, reduction or optimizer.
    pub class: &'static str,
    pub ms: f64,
    pub share: f64,
    /// Achieved TFLOP/s, for the classes whose FLOPs the model's count
    /// gives (matmul: 6N per token; attention: its own term).
    pub tflops: Option<f64>,
}

/// The class of a profiled kernel, by its name: reductions are the
/// kernels that sum across a row or a column (LayerNorm, the loss, the
/// bias and embedding gradients).
pub fn kernel_class(kernel: &str) -> &'static str {
    if kernel.starts_with("matmul::") {
        "matmul"
    } else if kernel.starts_with("attention::") {
        "attention"
    } else if kernel.starts_with("layernorm::")
        || kernel.starts_with("cross_entropy::")
        || kernel.ends_with("bias_bwd")
        || kernel == "embedding::embedding_bwd"
    {
        "reduction"
    } else {
        "elementwise"
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepBenchReport {
    pub model: String,
    pub device: String,
    pub seq: usize,
    pub batch: usize,
    pub micro_batch: usize,
    /// The model's (padded) vocabulary.
    pub vocab: usize,
    pub steps: usize,
    pub parameters: usize,
    /// Where the batches came from: the mix file, or a description of the
    /// synthetic corpus.
    pub data: String,
    /// The loader's running hash over every batch served (warm-up steps
    /// included): the same as a loader over the same mix gives for those
    /// steps, which shows the batches were the loader's.
    pub loader_hash: String,
    /// The loss of every step, warm-up included, in order.
    pub losses: Vec<f32>,
    pub tokens_per_s: f64,
    /// Model FLOP utilisation (null when the device's peak is unknown).
    pub mfu: Option<f64>,
    pub flops_per_token: FlopsPerToken,
    pub achieved_flops: f64,
    pub peak_flops: Option<f64>,
    pub peak_source: String,
    pub step_ms: StepPercentiles,
    pub breakdown: Breakdown,
    pub kernels: Vec<KernelTime>,
    pub precision: String,
    /// Device memory of the model at this micro-batch.
    pub memory: MemoryPlan,
    /// The profiled step by kernel class (empty without `kernels`).
    pub classes: Vec<ClassTime>,
}

pub use prior_runtime::device::peak_flops;

pub fn flops_per_token(cfg: &ModelConfig, seq: usize) -> FlopsPerToken {
    let (six_n, attention) = cfg.flops_per_token(seq);
    FlopsPerToken {
        six_n,
        attention,
        total: six_n + attention,
    }
}

/// Writes a synthetic corpus (byte tokenizer) and a mix over it into
/// `dir`, big enough that `steps` batches of `batch` sequences of `seq`
/// tokens read mostly distinct text and every category holds a few
/// sequences; returns the mix's path and a description.
pub fn synth_mix(dir: &Path, seq: usize, batch: usize, steps: usize) -> Result<(PathBuf, String)> {
    let seq_tokens = seq + 1;
    // The byte tokenizer gives roughly 900 tokens per synthetic document
    // (perf/NOTES.md); aim a little over what the run reads, capped so
    // that a large benchmark does not spend minutes writing text.
    let wanted = (steps * batch * seq_tokens).max(40 * seq_tokens);
    let mut docs = (wanted / 800).clamp(100, 50_000);
    let io = |path: &Path, source| StepBenchError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Each category needs more than one sequence of tokens; the discourse
    // categories get a tenth of the documents each, so should their
    // documents come out shorter than expected, write more and try again.
    for _ in 0..4 {
        let text = dir.join("synth");
        let corpus = dir.join("corpus");
        for d in [&text, &corpus] {
            if d.exists() {
                std::fs::remove_dir_all(d).map_err(|e| io(d, e))?;
            }
        }
        write_synth(
            &text,
            &SynthConfig {
                seed: 0,
                docs,
                ..Default::default()
            },
        )?;
        let mut smallest = u64::MAX;
        let mut total = 0u64;
        for (cat, _) in SYNTH_MIX {
            let opts = IngestOptions {
                category: cat.into(),
                text_field: "text".into(),
                skip_bad: false,
                write: WriteOptions::default(),
            };
            let input = text.join(format!("{cat}.jsonl"));
            let r = ingest(&corpus, &[input], &Tokenizer::byte(), &opts, &mut |_| {})?;
            smallest = smallest.min(r.tokens);
            total += r.tokens;
        }
        if smallest < 2 * seq_tokens as u64 {
            let short = (2 * seq_tokens as u64).div_ceil(smallest.max(1)) as usize;
            docs = docs.saturating_mul(short + 1);
            if docs > MAX_SYNTH_DOCS {
                break;
            }
            continue;
        }
        #[derive(serde::Serialize)]
        struct Mix {
            corpus: &'static str,
            seq_len: usize,
            global_batch: usize,
            seed: u64,
            phase: [Phase; 1],
        }
        #[derive(serde::Serialize)]
        struct Phase {
            weights: BTreeMap<&'static str, f64>,
        }
        let mix_text = toml::to_string(&Mix {
            corpus: "corpus",
            seq_len: seq,
            global_batch: batch,
            seed: 0,
            phase: [Phase {
                weights: SYNTH_MIX.into_iter().collect(),
            }],
        })
        .map_err(|e| StepBenchError::Usage(format!("synthetic mix: {e}")))?;
        let mix = dir.join("mix.toml");
        std::fs::write(&mix, mix_text).map_err(|e| io(&mix, e))?;
        let shares: Vec<String> = SYNTH_MIX.iter().map(|(c, w)| format!("{c} {w}")).collect();
        let what = format!(
            "synthetic corpus: {docs} documents, {total} tokens (byte tokenizer); mix {}",
            shares.join(", ")
        );
        return Ok((mix, what));
    }
    Err(StepBenchError::Usage(format!(
        "--seq {seq} is too long for a synthetic corpus of at most {MAX_SYNTH_DOCS} documents; pass --mix"
    )))
}

/// Runs the benchmark on `client`.
pub fn bench_step<R: Runtime>(
    client: ComputeClient<R>,
    device_name: &str,
    o: &StepBenchOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<StepBenchReport> {
    let precision = o
        .precision
        .unwrap_or_else(|| TrainPrecision::default_for(&client));
    precision
        .check(&client)
        .map_err(|e| StepBenchError::Usage(format!("--{e}")))?;
    match precision {
        TrainPrecision::Bf16 => {
            bench_step_in::<R, half::bf16>(client, device_name, o, precision, progress)
        }
        TrainPrecision::F16 => {
            bench_step_in::<R, half::f16>(client, device_name, o, precision, progress)
        }
        TrainPrecision::F32 | TrainPrecision::Tf32 => {
            bench_step_in::<R, f32>(client, device_name, o, precision, progress)
        }
    }
}

fn bench_step_in<R: Runtime, F: Float + CubeElement>(
    client: ComputeClient<R>,
    device_name: &str,
    o: &StepBenchOptions,
    train_precision: TrainPrecision,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<StepBenchReport> {
    let usage = |s: String| StepBenchError::Usage(s);
    // The model name first: an unknown one fails before any data is made.
    ModelConfig::preset(&o.model, 1).ok_or_else(|| {
        usage(format!(
            "unknown model {:?} (one of: {})",
            o.model,
            ModelConfig::preset_names().join(", ")
        ))
    })?;
    let total = o.warmup + o.steps;
    // `_synth_dir` keeps the synthetic corpus on disk until the end.
    let (mix_path, data, _synth_dir) = match &o.mix {
        Some(m) => (m.clone(), format!("mix {}", m.display()), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("prior-bench-step-")
                .tempdir()
                .map_err(|e| StepBenchError::Io {
                    path: std::env::temp_dir(),
                    source: e,
                })?;
            let seq = o.seq.unwrap_or(DEFAULT_SEQ);
            let batch = o.batch.unwrap_or(DEFAULT_BATCH);
            let (mix, what) = synth_mix(dir.path(), seq, batch, total)?;
            (mix, what, Some(dir))
        }
    };
    let (spec, corpus) = MixSpec::load(&mix_path)?;
    let (seq, batch) = (spec.seq_len as usize, spec.global_batch as usize);
    for (flag, given, mix_value, key) in [
        ("--seq", o.seq, seq, "seq_len"),
        ("--batch", o.batch, batch, "global_batch"),
    ] {
        if let Some(g) = given.filter(|&g| g != mix_value) {
            return Err(usage(format!(
                "{flag} {g} differs from {key} = {mix_value} of mix {}; leave {flag} out to use the mix's",
                mix_path.display()
            )));
        }
    }
    let micro = o.micro_batch.unwrap_or(batch);
    if micro == 0 || !batch.is_multiple_of(micro) {
        return Err(usage(format!(
            "--micro-batch {micro} does not divide the batch of {batch} sequences"
        )));
    }
    if let Some(end) = spec.total_steps().filter(|&e| e < total as u64) {
        return Err(usage(format!(
            "mix {} ends after {end} steps; --warmup {} + --steps {} need {total}",
            mix_path.display(),
            o.warmup,
            o.steps
        )));
    }
    let corpus_vocab = corpus.manifest().tokenizer.vocab_size as usize;
    let cfg = ModelConfig::preset(&o.model, o.vocab.max(corpus_vocab))
        .ok_or_else(|| usage(format!("unknown model {:?}", o.model)))?;
    // Checked before the host holds the initial weights.
    let memory = DeviceModel::<R, F>::fit_memory(
        &cfg,
        (micro, seq),
        prior_runtime::device::device_memory(&client),
        None,
        "--micro-batch",
    )
    .map_err(|detail| train::TrainError::Memory { detail })?;
    let layout = ParamLayout::new(&cfg);
    let params = layout.init(&cfg, 0);
    let mut model =
        DeviceModel::<R, F>::with_compute_type(client.clone(), cfg, &params, micro, seq)?;
    model.precision = train_precision.matmul();
    let precision = model.precision.effective(&client);
    let optimizer = Optimizer::zeros(&client, &layout);
    // The trainer's defaults, over a run as long as the benchmark.
    let hyper = TrainSection {
        steps: total as u64,
        micro_batch: micro,
        ..TrainSection::default()
    };
    let sampler = Arc::new(Sampler::new(spec, corpus, None)?);
    let mut loader = Loader::new(
        sampler,
        Start::Step(0),
        &train::loader_options(total as u64),
    )?;

    let mut phase = [0f64; 5];
    let mut step_ms = Vec::with_capacity(o.steps);
    let mut last_batch = None;
    let mut losses = Vec::with_capacity(total);
    for s in 0..total {
        let t0 = Instant::now();
        let b = loader.next_batch()?.ok_or_else(|| {
            usage(format!(
                "the loader of mix {} stopped after {s} batches",
                mix_path.display()
            ))
        })?;
        let t1 = Instant::now();
        let mut times = PhaseTimes::default();
        let loss =
            train::accumulate_gradients(&mut model, &b.tokens, b.seq_tokens, Some(&mut times))?;
        if !loss.is_finite() {
            return Err(StepBenchError::NonFinite { step: s, loss });
        }
        losses.push(loss);
        let t4 = Instant::now();
        optimizer.apply(&mut model, &hyper, s as u64)?;
        sync(&client)?;
        let t5 = Instant::now();
        if s >= o.warmup {
            let d = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            let parts = [
                d(t0, t1),
                times.h2d_ms,
                times.forward_ms,
                times.backward_ms,
                d(t4, t5),
            ];
            for (acc, x) in phase.iter_mut().zip(parts) {
                *acc += x;
            }
            step_ms.push(d(t0, t5));
        }
        last_batch = Some(b);
        progress(s + 1, total);
    }
    let loader_hash = format!("{:016x}", loader.running_hash());
    let mut kernels = Vec::new();
    if let Some(b) = last_batch.filter(|_| o.kernels) {
        model.profile_kernels(true);
        train::accumulate_gradients(&mut model, &b.tokens, b.seq_tokens, None)?;
        let prof = model.profile_kernels(false).unwrap_or_default();
        let sum: f64 = prof.totals.values().map(|x| x.0).sum();
        let mut list: Vec<KernelTime> = prof
            .totals
            .iter()
            .map(|(k, (ms, n))| KernelTime {
                kernel: k.to_string(),
                ms: *ms,
                launches: *n,
                share: ms / sum.max(1e-12),
            })
            .collect();
        list.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        kernels = list;
    }
    let n = step_ms.len().max(1) as f64;
    let mean = step_ms.iter().sum::<f64>() / n;
    let fpt = flops_per_token(&cfg, seq);
    let classes = if kernels.is_empty() {
        Vec::new()
    } else {
        let tokens = (batch * seq) as f64;
        let optimizer_ms = phase[4] / n;
        let mut by_class: Vec<ClassTime> = ["matmul", "attention", "elementwise", "reduction"]
            .into_iter()
            .map(|class| ClassTime {
                class,
                ms: kernels
                    .iter()
                    .filter(|k| kernel_class(&k.kernel) == class)
                    .map(|k| k.ms)
                    .sum(),
                share: 0.0,
                tflops: None,
            })
            .collect();
        by_class.push(ClassTime {
            class: "optimizer",
            ms: optimizer_ms,
            share: 0.0,
            tflops: None,
        });
        let total: f64 = by_class.iter().map(|c| c.ms).sum();
        for c in &mut by_class {
            c.share = c.ms / total.max(1e-12);
            let flops = match c.class {
                "matmul" => Some(fpt.six_n * tokens),
                "attention" => Some(fpt.attention * tokens),
                _ => None,
            };
            c.tflops = flops
                .filter(|_| c.ms > 0.0)
                .map(|f| f / (c.ms / 1e3) / 1e12);
        }
        by_class
    };
    let mut hist =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for ms in &step_ms {
        hist.saturating_record((ms * 1e3).round() as u64);
    }
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1e3;
    let tokens_per_s = (batch * seq) as f64 / (mean / 1e3);
    let achieved = fpt.total * tokens_per_s;
    let (peak, source) = match (o.peak_flops, peak_flops(device_name)) {
        (Some(p), _) => (Some(p), "--peak-tflops".to_string()),
        (None, Some((p, s))) => (Some(p), s.to_string()),
        (None, None) => (
            None,
            "unknown device: pass --peak-tflops for MFU".to_string(),
        ),
    };
    Ok(StepBenchReport {
        model: o.model.clone(),
        device: device_name.to_string(),
        seq,
        batch,
        micro_batch: micro,
        vocab: cfg.vocab_size,
        steps: o.steps,
        parameters: cfg.parameters(),
        data,
        loader_hash,
        losses,
        tokens_per_s,
        mfu: peak.map(|p| achieved / p),
        flops_per_token: fpt,
        achieved_flops: achieved,
        peak_flops: peak,
        peak_source: source,
        step_ms: StepPercentiles {
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            mean,
        },
        breakdown: Breakdown {
            loader_wait_ms: phase[0] / n,
            h2d_ms: phase[1] / n,
            forward_ms: phase[2] / n,
            backward_ms: phase[3] / n,
            optimizer_ms: phase[4] / n,
        },
        kernels,
        precision: match train_precision {
            TrainPrecision::F32 | TrainPrecision::Tf32 => format!("f32, matmuls in {precision}"),
            p => format!("{p} compute, f32 master weights and accumulation"),
        },
        memory,
        classes,
    })
}

/// Per-kernel sums in a map (for tests and reports).
pub fn kernel_map(r: &StepBenchReport) -> BTreeMap<String, f64> {
    r.kernels.iter().map(|k| (k.kernel.clone(), k.ms)).collect()
}
