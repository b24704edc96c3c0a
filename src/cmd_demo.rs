//! `prior demo`: the whole study from nothing, on any machine (the
//! pipeline is `prior_eval::demo`): data, then the five-condition
//! experiment, then its results.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use prior_runtime::device::run_on;
use prior_runtime::DeviceKind;

use crate::cmd_eval::{print_results, ExperimentTask};
use crate::ui;

#[derive(Args)]
pub struct DemoArgs {
    /// A smaller corpus, model and run (about 1.5 minutes on 2 cores without a GPU).
    #[arg(long)]
    quick: bool,
    /// Where everything goes.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// auto (CUDA if present, else the native CPU backend), cuda, wgpu or cpu.
    #[arg(long, default_value = "auto")]
    device: DeviceKind,
    /// Train every condition once per seed (0..N): the report then gives
    /// the spread across seeds and claims only effects every seed agrees on.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    seeds: u64,
    /// Print results.json's content on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
}

fn say(json: bool, msg: String) {
    if json {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
}

pub fn run(a: DemoArgs) -> Result<()> {
    let t0 = Instant::now();
    let (_, cfg) = prior_eval::demo::prepare(&a.out, a.quick, a.seeds, &mut |m| say(a.json, m))?;
    let out = cfg.out().to_path_buf();
    let r = run_on(a.device, ExperimentTask { cfg, quiet: a.json })??;
    if a.json {
        return ui::print_json(&r);
    }
    print_results(&r, &out);
    println!("demo finished in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}
