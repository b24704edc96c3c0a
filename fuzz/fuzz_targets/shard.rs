//! Any bytes as a shard: opening, verifying and reading every frame (both
//! through the map and with pread) returns tokens or an error, never a
//! panic, a hang or an out-of-bounds read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prior_data::shard::{FrameDecoder, ShardReader};

fuzz_target!(|bytes: &[u8]| {
    let dir = scratch_dir();
    let path = dir.join("input.prs");
    std::fs::write(&path, bytes).expect("scratch file");
    let Ok(reader) = ShardReader::open(&path) else {
        return;
    };
    let _ = reader.verify();
    let mut dec = FrameDecoder::new();
    let (mut raw, mut scratch) = (Vec::new(), Vec::new());
    for i in 0..reader.num_frames() + 1 {
        let mapped = reader
            .read_frame_raw(i, &mut dec, &mut raw)
            .map(|_| raw.clone());
        let read = reader
            .read_frame_raw_unmapped(i, &mut dec, &mut scratch, &mut raw)
            .map(|_| raw.clone());
        // Both ways of reading a frame agree.
        assert_eq!(mapped.is_ok(), read.is_ok());
        if let (Ok(a), Ok(b)) = (mapped, read) {
            assert_eq!(a, b);
        }
    }
    for d in 0..reader.num_documents().min(64) {
        let _ = reader.read_document(d, &mut dec);
    }
});

fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch directory"))
        .path()
}
