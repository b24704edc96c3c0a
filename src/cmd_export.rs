//! `prior export-hf`: a checkpoint as a Hugging Face GPTNeoX directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::ui;

#[derive(Args)]
pub struct ExportArgs {
    /// A checkpoint directory (`<run>/checkpoints/step-N`) or a run's
    /// checkpoint_dir (its newest checkpoint is exported).
    checkpoint: PathBuf,
    /// Output directory: config.json and model.safetensors are written
    /// there (created if needed); `GPTNeoXForCausalLM.from_pretrained(dir)`
    /// loads it, and `[model] init = "<dir>"` continues training from it.
    out: PathBuf,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let e = prior_model::hf::export(&a.checkpoint, &a.out)?;
    if a.json {
        return ui::print_json(&e);
    }
    println!(
        "exported step {} of {} ({} parameters) to {}: {}",
        e.step,
        e.checkpoint.display(),
        e.parameters,
        e.out.display(),
        e.files.join(", ")
    );
    Ok(())
}
