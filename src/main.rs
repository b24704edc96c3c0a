//! The `prior` command line: parses arguments and calls the crates.
//!
//! Subcommands are grouped by the crate that does the work (`prior data
//! ...` for prior-data, and so on), so `prior <group> --help` lists what one
//! part of the system can do. Errors are printed as one readable chain and
//! exit with status 1; nothing here panics on bad input.

mod cmd_bench;
mod cmd_data;
mod cmd_demo;
mod cmd_eval;
mod cmd_export;
mod cmd_loader;
mod cmd_perf;
mod cmd_runtime;
mod cmd_train;
mod ui;

use clap::{Parser, Subcommand};

// The loader hands out and frees batch buffers of hundreds of KiB on
// different threads; glibc's malloc serves those with mmap/munmap, whose
// page faults and TLB shootdowns cost more than building the batch.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Alignment pretraining: build corpora of discourse categories, mix them
/// deterministically, train, and measure misalignment.
#[derive(Parser)]
#[command(name = "prior", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Corpora: synthesize, tokenize, ingest, filter, inspect and verify.
    #[command(subcommand)]
    Data(cmd_data::DataCommand),
    /// The mix loader: hash, replay, bench and stats of a mix spec.
    #[command(subcommand)]
    Loader(cmd_loader::LoaderCommand),
    /// The training runtime: devices and kernel checks.
    #[command(subcommand)]
    Runtime(cmd_runtime::RuntimeCommand),
    /// Train a GPT-NeoX model from a mix, with checkpoints and --resume.
    Train(cmd_train::TrainArgs),
    /// Write a checkpoint as a Hugging Face GPTNeoX directory (config.json + model.safetensors).
    #[command(name = "export-hf")]
    ExportHf(cmd_export::ExportArgs),
    /// Misalignment rate of a model on a binary-choice suite (log-probability scoring).
    Eval(cmd_eval::EvalArgs),
    /// Train and evaluate one model per mix condition; write report.md, results.json and plots.
    Experiment(cmd_eval::ExperimentArgs),
    /// The whole study from nothing: synthesize, tokenize, ingest, filter, run the experiment.
    Demo(cmd_demo::DemoArgs),
    /// Throughput reports of training runs.
    #[command(subcommand)]
    Perf(cmd_perf::PerfCommand),
    /// Benchmarks of the device side.
    #[command(subcommand)]
    Bench(cmd_bench::BenchCommand),
}

fn main() {
    // Piped into `head` and the like, exit quietly when the reader goes
    // away, as command-line tools do, instead of panicking on EPIPE.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal at startup,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(cmd) => cmd_data::run(cmd),
        Command::Loader(cmd) => cmd_loader::run(cmd),
        Command::Runtime(cmd) => cmd_runtime::run(cmd),
        Command::Bench(cmd) => cmd_bench::run(cmd),
        Command::Train(a) => cmd_train::run(a),
        Command::ExportHf(a) => cmd_export::run(a),
        Command::Eval(a) => cmd_eval::eval(a),
        Command::Experiment(a) => cmd_eval::experiment(a),
        Command::Demo(a) => cmd_demo::run(a),
        Command::Perf(cmd) => cmd_perf::run(cmd),
    };
    if let Err(e) = result {
        ui::print_error(&e);
        std::process::exit(1);
    }
}
