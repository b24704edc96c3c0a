//! `prior runtime ...`: devices and kernel checks.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use prior_model::compile_check::{step_kernels, KernelDtype};
use prior_model::ModelConfig;
use prior_runtime::check::{summarize, F32_TOLERANCE, TF32_TOLERANCE};
use prior_runtime::cuda_offline::nvrtc::Nvrtc;
use prior_runtime::cuda_offline::report::{compile_all, Recorded};
use prior_runtime::cuda_offline::{Arch, CardLimits};
use prior_runtime::device::{choose, probe_cuda, run_on, DeviceKind};
use prior_runtime::kernels::matmul::Precision;
use prior_runtime::CheckTask;
use serde_json::json;

use crate::ui;

#[derive(Subcommand)]
pub enum RuntimeCommand {
    /// Run every kernel forward and backward on fresh random inputs against
    /// the CPU reference; exits non-zero if any fails.
    Check(CheckArgs),
    /// Compile every kernel of a training step for a CUDA architecture
    /// with NVRTC, without a GPU: registers, spills, shared memory and the
    /// occupancy they imply, one row per kernel. Exits non-zero if any
    /// kernel fails to compile.
    CompileCheck(CompileCheckArgs),
    /// Show which device `auto` picks and why.
    Devices,
    /// Run NCCL's all-reduce, reduce-scatter and all-gather on CUDA
    /// buffers and compare each with the host collective on the same
    /// values. One process is a world of one; under torchrun, srun or
    /// mpirun every rank joins (one GPU per rank). Exits non-zero, naming
    /// what is missing, without NCCL or a CUDA device.
    NcclCheck(NcclCheckArgs),
}

#[derive(Args)]
pub struct NcclCheckArgs {
    /// f32 values each rank contributes to each collective.
    #[arg(long, default_value_t = 1 << 20)]
    count: usize,
    /// Seed of the random values (each rank's are drawn from it and its rank).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seconds any wait (the rendezvous, a collective) may last.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    dist_timeout: f64,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CompileCheckArgs {
    /// The CUDA architecture: sm_90a (H100/H200) or sm_80 (A100).
    #[arg(long, default_value = "sm_90a")]
    arch: String,
    /// Compute types of the trainer's step, comma-separated: f32, bf16
    /// and f16 (mixed precision: f32 master weights, gradients and
    /// optimizer around the compute-type activations and matmuls).
    #[arg(long, default_value = "f32,bf16", value_delimiter = ',')]
    dtype: Vec<String>,
    /// Models whose step shapes are compiled, comma-separated presets.
    #[arg(long, default_value = "pythia-160m,pythia-1b", value_delimiter = ',')]
    model: Vec<String>,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 2048)]
    seq: usize,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 1)]
    micro_batch: usize,
    /// Vocabulary the presets are padded from (Pythia's tokenizer).
    #[arg(long, default_value_t = 50277)]
    vocab: usize,
    /// How the f32 step's matmuls run: tf32 (tensor cores, training's
    /// default on CUDA) or f32 (exact).
    #[arg(long, default_value = "tf32")]
    precision: String,
    /// libnvrtc.so.* or the directory holding it (default: PRIOR_NVRTC, the
    /// .venv that ci/setup makes, then CUDA_PATH and /usr/local/cuda).
    #[arg(long)]
    nvrtc: Option<std::path::PathBuf>,
    /// Compile threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// auto (CUDA if a driver and device are present, else wgpu), cuda or wgpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Seed of the random inputs (default: fresh each run; printed).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: RuntimeCommand) -> Result<()> {
    match cmd {
        RuntimeCommand::Check(a) => check(a),
        RuntimeCommand::CompileCheck(a) => compile_check(a),
        RuntimeCommand::NcclCheck(a) => nccl_check(a),
        RuntimeCommand::Devices => {
            let p = probe_cuda();
            match &p.missing {
                None => println!("cuda: {} device(s)", p.devices),
                Some(why) => println!("cuda: unavailable ({why})"),
            }
            let c = choose(DeviceKind::Auto)?;
            match c.kind {
                DeviceKind::Cuda => println!("auto -> cuda ({})", c.reason),
                _ => {
                    let reason = c.reason.trim_start_matches("auto: wgpu, ");
                    println!(
                        "auto -> cpu, the native CPU backend, for train, eval and demo ({reason})"
                    );
                    println!("auto -> wgpu for the kernels' commands (bench step, runtime check) and data-parallel training");
                }
            }
            Ok(())
        }
    }
}

fn check(a: CheckArgs) -> Result<()> {
    let kind: DeviceKind = a.device.parse()?;
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let choice = choose(kind)?;
    let results = run_on(kind, CheckTask { seed })?;
    let summary = summarize(&results);
    let failed = summary.failed;
    if a.json {
        ui::print_json(&json!({
            "device": choice.kind.to_string(),
            "reason": choice.reason,
            "seed": seed,
            "tolerances": {"f32": F32_TOLERANCE, "tf32": TF32_TOLERANCE},
            "passed": summary.passed,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "kernels": results,
        }))?;
    } else {
        println!(
            "device {} ({}), seed {seed}; tolerance f32 {F32_TOLERANCE:e}, tf32 {TF32_TOLERANCE:e}",
            choice.kind, choice.reason
        );
        println!(
            "{:<24} {:>6} {:>9} {:>12} {:>9}  cases",
            "kernel", "ok", "precision", "max_rel_err", "tolerance"
        );
        for r in &results {
            println!(
                "{:<24} {:>6} {:>9} {:>12.3e} {:>9.0e}  {}{}",
                r.name,
                match (r.ok, &r.skipped) {
                    (_, Some(_)) => "skip",
                    (true, None) => "ok",
                    (false, None) => "FAIL",
                },
                r.precision.to_string(),
                r.max_rel_err,
                r.tolerance,
                r.cases.join("; "),
                r.error
                    .as_ref()
                    .map(|e| format!("  error: {e}"))
                    .or_else(|| r.skipped.as_ref().map(|why| format!("skipped: {why}")))
                    .unwrap_or_default()
            );
        }
        println!(
            "{} checks: {} passed, {} skipped, {} failed",
            results.len(),
            summary.passed,
            summary.skipped,
            summary.failed
        );
    }
    if failed > 0 {
        bail!(
            "{failed} kernel check(s) failed on {} (seed {seed})",
            choice.kind
        );
    }
    Ok(())
}

fn compile_check(a: CompileCheckArgs) -> Result<()> {
    let arch: Arch = a.arch.parse().map_err(anyhow::Error::msg)?;
    let precision: Precision = a.precision.parse().map_err(anyhow::Error::msg)?;
    let dtypes = a
        .dtype
        .iter()
        .map(|d| d.parse::<KernelDtype>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--dtype: {e}"))?;
    let models = a
        .model
        .iter()
        .map(|m| {
            ModelConfig::preset(m, a.vocab)
                .map(|c| (m.clone(), c))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--model: unknown preset {m:?}; presets: {}",
                        ModelConfig::preset_names().join(", ")
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    if a.seq == 0 || a.micro_batch == 0 {
        bail!("--seq and --micro-batch must be at least 1");
    }
    let nvrtc = Nvrtc::load(a.nvrtc.as_deref())?;
    let t0 = std::time::Instant::now();
    let mut recorded = Vec::new();
    for dtype in &dtypes {
        for (name, cfg) in &models {
            let kernels = step_kernels(arch, cfg, a.micro_batch, a.seq, *dtype, precision)
                .with_context(|| format!("recording the {dtype} step of {name}"))?;
            recorded.extend(kernels.into_iter().map(|kernel| Recorded {
                dtype: dtype.to_string(),
                model: name.clone(),
                kernel,
            }));
        }
    }
    let record_s = t0.elapsed().as_secs_f64();
    let bar = ui::count_bar(0, "compiling", a.json);
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let t1 = std::time::Instant::now();
    let rows = compile_all(&nvrtc, arch, recorded, threads, &|distinct| {
        bar.set_length(distinct as u64);
        bar.inc(1);
    });
    bar.finish_and_clear();
    let compile_s = t1.elapsed().as_secs_f64();
    let failed = rows.iter().filter(|r| !r.ok).count();
    let spilling = rows
        .iter()
        .filter(|r| r.spill_stores + r.spill_loads > 0)
        .count();
    let card = CardLimits::of(arch);
    if a.json {
        ui::print_json(&json!({
            "arch": arch.to_string(),
            "card": card.name,
            "nvrtc": {"path": nvrtc.library, "version": format!("{}.{}", nvrtc.version.0, nvrtc.version.1)},
            "precision": precision,
            "models": a.model,
            "seq": a.seq,
            "micro_batch": a.micro_batch,
            "failed": failed,
            "spilling": spilling,
            "record_s": record_s,
            "compile_s": compile_s,
            "kernels": rows,
        }))?;
    } else {
        println!(
            "{arch} ({}), NVRTC {}.{} at {}; step of {} at seq {}, micro-batch {}, f32 matmuls in {precision}",
            card.name,
            nvrtc.version.0,
            nvrtc.version.1,
            nvrtc.library.display(),
            a.model.join(", "),
            a.seq,
            a.micro_batch
        );
        println!(
            "{:<52} {:<5} {:>4} {:>5} {:>6} {:>6} {:>7} {:>7} {:>5}  {:<9}  models",
            "kernel", "dtype", "ok", "regs", "spill", "stack", "threads", "smem", "occ", "limiter"
        );
        for r in &rows {
            println!(
                "{:<52} {:<5} {:>4} {:>5} {:>6} {:>6} {:>7} {:>7} {:>4.0}%  {:<9}  {}",
                r.name,
                r.dtype,
                if r.ok { "ok" } else { "FAIL" },
                r.registers,
                r.spill_stores + r.spill_loads,
                r.stack_bytes,
                r.threads,
                r.shared_bytes,
                r.occupancy * 100.0,
                if r.ok {
                    format!("{:?}", r.limiter).to_lowercase()
                } else {
                    String::new()
                },
                r.models
                    .iter()
                    .map(|m| m.strip_prefix("pythia-").unwrap_or(m))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        for r in rows.iter().filter(|r| !r.ok) {
            println!(
                "\n{} ({}) failed:\n{}",
                r.name,
                r.dtype,
                r.log.as_deref().unwrap_or("")
            );
        }
        println!(
            "{} kernels: {} compiled, {failed} failed, {spilling} spill; recorded in {record_s:.1} s, compiled in {compile_s:.1} s",
            rows.len(),
            rows.len() - failed
        );
    }
    if failed > 0 {
        bail!("{failed} kernel(s) failed to compile for {arch}");
    }
    Ok(())
}

fn nccl_check(a: NcclCheckArgs) -> Result<()> {
    use prior_runtime::dist::{nccl, rendezvous, Placement};
    if !(a.dist_timeout > 0.0 && a.dist_timeout.is_finite()) {
        bail!(
            "--dist-timeout: {} is not a positive number of seconds",
            a.dist_timeout
        );
    }
    if a.count == 0 {
        bail!("--count: must be at least 1");
    }
    // NCCL first: on a machine without it, that is the answer.
    let lib = nccl::Nccl::load().map_err(|why| anyhow::anyhow!("nccl-check: {why}"))?;
    let cuda = probe_cuda();
    if let Some(why) = cuda.missing {
        bail!("nccl-check: {} is loadable, but {why}", lib.found);
    }
    let devices = cuda.devices;
    let place = Placement::from_env()?;
    let timeout = std::time::Duration::from_secs_f64(a.dist_timeout);
    // Every rank of one check runs this binary with the same arguments.
    let job = a.count as u64 ^ a.seed.rotate_left(17) ^ 0x6e63_636c;
    let (mut group, _) = rendezvous::join(&place, job, &[], timeout)?;
    let ordinal = if devices <= 1 {
        0
    } else {
        place.local_rank as usize
    };
    if ordinal >= devices.max(1) {
        bail!(
            "nccl-check: CUDA device {ordinal} asked for (the local rank), but this process sees {devices} (check CUDA_VISIBLE_DEVICES and the launcher's processes per node)"
        );
    }
    let found = lib.found.clone();
    use prior_runtime::cubecl::Runtime;
    let client = std::panic::catch_unwind(|| {
        prior_runtime::cubecl::cuda::CudaRuntime::client(
            &prior_runtime::cubecl::cuda::CudaDevice::new(ordinal),
        )
    })
    .map_err(|_| anyhow::anyhow!("nccl-check: could not start CUDA device {ordinal}"))?;
    let comm = nccl::NcclComm::init(lib, &mut group, ordinal)?;
    let checks = nccl::check_against_host(&comm, &mut group, &client, a.count, a.seed)?;
    let failed = checks.iter().filter(|c| !c.passed).count();
    if a.json {
        ui::print_json(&json!({
            "nccl": found.to_string(),
            "rank": place.rank,
            "world": place.world,
            "device": ordinal,
            "checks": checks,
        }))?;
    } else {
        println!(
            "{found}, rank {} of {} on CUDA device {ordinal}, {} f32 per rank:",
            place.rank, place.world, a.count
        );
        for c in &checks {
            println!(
                "  {:<20} {:>9.3} ms  max |NCCL - host| {:.3e} (allowed {:.1e})  {}",
                c.op,
                c.nccl_ms,
                c.max_abs_diff,
                c.tolerance,
                if c.passed { "ok" } else { "FAILED" }
            );
        }
    }
    if failed > 0 {
        bail!(
            "nccl-check: {failed} of {} collectives differ from the host collective",
            checks.len()
        );
    }
    Ok(())
}
