//! Any bytes as an evaluation suite (JSONL): loading is questions or an
//! error naming the file and line, never a panic.
//!
//! The suite parser depends on nothing but serde, so its module is compiled
//! here on its own: a fuzz build then need not build the GPU runtime that
//! the rest of prior-eval links.
#![no_main]

#[allow(dead_code)]
#[path = "../../eval/src/suite.rs"]
mod suite;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let dir = scratch_dir();
    let path = dir.join("suite.jsonl");
    std::fs::write(&path, bytes).expect("scratch file");
    for split in [None, Some("train"), Some("held_out")] {
        if let Ok(questions) = suite::load_suite(&path, split) {
            assert!(!questions.is_empty(), "an empty suite loads as an error");
        }
    }
});

fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch directory"))
        .path()
}
