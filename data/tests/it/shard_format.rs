//! Shard round trips (property tests) and corruption: a flipped bit in any
//! region, truncation and wrong magic must be errors that name the file and
//! region, never wrong tokens or a panic.

use std::path::Path;

use prior_data::error::{DataError, ShardRegion};
use prior_data::shard::{
    FrameDecoder, ShardOptions, ShardReader, ShardWriter, TokenWidth, HEADER_LEN,
};
use proptest::prelude::*;

const EOT: u32 = 0;

fn opts(width: TokenWidth, frame_tokens: u32) -> ShardOptions {
    ShardOptions {
        width,
        eot_id: EOT,
        frame_tokens,
        zstd_level: 3,
    }
}

fn write(path: &Path, docs: &[Vec<u32>], o: ShardOptions) {
    let mut w = ShardWriter::create(path, o).unwrap();
    for d in docs {
        w.push_document(d).unwrap();
    }
    w.finish().unwrap();
}

fn docs_strategy(max_id: u32) -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(1..=max_id, 0..300), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_documents_round_trip_by_document_and_by_frame(
        docs in docs_strategy(60_000),
        frame_tokens in 1u32..500,
        wide in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.prs");
        let width = if wide { TokenWidth::U32 } else { TokenWidth::U16 };
        write(&p, &docs, opts(width, frame_tokens));
        let r = ShardReader::open(&p).unwrap();
        let mut dec = FrameDecoder::new();
        prop_assert_eq!(r.num_documents(), docs.len() as u64);
        let expect_stream: Vec<u32> = docs.iter().flat_map(|d| d.iter().copied().chain([EOT])).collect();
        prop_assert_eq!(r.num_tokens(), expect_stream.len() as u64);
        for (i, d) in docs.iter().enumerate() {
            prop_assert_eq!(&r.read_document(i as u64, &mut dec).unwrap(), d);
        }
        let mut by_frame = Vec::new();
        for f in 0..r.num_frames() {
            let before = by_frame.len();
            r.read_frame_into(f, &mut dec, &mut by_frame).unwrap();
            prop_assert_eq!((by_frame.len() - before) as u64, r.frame_token_range(f).end - r.frame_token_range(f).start);
            prop_assert!(by_frame.len() - before <= frame_tokens as usize);
        }
        prop_assert_eq!(&by_frame, &expect_stream);
        r.verify().unwrap();
    }

    #[test]
    fn any_token_range_reads_the_same_as_the_stream(
        docs in docs_strategy(1000).prop_filter("non-empty", |d| !d.is_empty()),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.prs");
        write(&p, &docs, opts(TokenWidth::U16, 37));
        let r = ShardReader::open(&p).unwrap();
        let stream: Vec<u32> = docs.iter().flat_map(|d| d.iter().copied().chain([EOT])).collect();
        let (x, y) = (a.index(stream.len() + 1), b.index(stream.len() + 1));
        let (lo, hi) = (x.min(y), x.max(y));
        let got = r.read_tokens(lo as u64..hi as u64, &mut FrameDecoder::new()).unwrap();
        prop_assert_eq!(&got[..], &stream[lo..hi]);
    }
}

/// The whole file through a stock zstd decoder yields the raw token stream:
/// header and index are skippable frames.
#[test]
fn whole_file_decompresses_to_the_raw_token_stream() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.prs");
    let docs: Vec<Vec<u32>> = (0..50).map(|i| (1..(i * 7 + 3)).collect()).collect();
    write(&p, &docs, opts(TokenWidth::U16, 64));
    let raw = zstd::stream::decode_all(std::fs::File::open(&p).unwrap()).unwrap();
    let expect: Vec<u8> = docs
        .iter()
        .flat_map(|d| d.iter().copied().chain([EOT]))
        .flat_map(|t| (t as u16).to_le_bytes())
        .collect();
    assert_eq!(raw, expect);
}

fn sample_shard(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let p = dir.join("s.prs");
    let docs: Vec<Vec<u32>> = (0..12u32)
        .map(|i| (0..(20 + i * 9)).map(|k| 1 + (k * 31 + i) % 5000).collect())
        .collect();
    write(&p, &docs, opts(TokenWidth::U16, 64));
    let bytes = std::fs::read(&p).unwrap();
    (p, bytes)
}

/// Opens and fully verifies; any error is fine, a panic or success is not.
fn check_detected(p: &Path) -> DataError {
    match ShardReader::open(p) {
        Err(e) => e,
        Ok(r) => r.verify().expect_err("corruption went unnoticed"),
    }
}

#[test]
fn a_flipped_bit_in_every_region_is_detected_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let (p, good) = sample_shard(dir.path());
    let r = ShardReader::open(&p).unwrap();
    let index_start = {
        let last = r.frame(r.num_frames() - 1);
        (last.offset + last.compressed_size as u64) as usize
    };
    let footer_start = good.len() - 40;
    // Every byte of the file, one bit each (varying bit position).
    for pos in 0..good.len() {
        let mut bad = good.clone();
        bad[pos] ^= 1 << (pos % 8);
        std::fs::write(&p, &bad).unwrap();
        let err = check_detected(&p);
        let msg = err.to_string();
        assert!(msg.contains("s.prs"), "error does not name the file: {msg}");
        if let DataError::CorruptShard { region, .. } = &err {
            let expected_ok = if pos < HEADER_LEN {
                *region == ShardRegion::Header
            } else if pos < index_start {
                let f = (0..r.num_frames()).find(|&i| {
                    let e = r.frame(i);
                    (e.offset as usize..(e.offset + e.compressed_size as u64) as usize)
                        .contains(&pos)
                });
                *region == ShardRegion::Frame(f.unwrap())
            } else {
                matches!(region, ShardRegion::Index | ShardRegion::Footer) || pos >= footer_start
            };
            assert!(expected_ok, "byte {pos}: blamed {region}");
        } else {
            panic!("byte {pos}: not a corruption error: {msg}");
        }
    }
}

#[test]
fn truncation_at_any_length_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (p, good) = sample_shard(dir.path());
    for len in (0..good.len()).step_by(7) {
        std::fs::write(&p, &good[..len]).unwrap();
        let msg = check_detected(&p).to_string();
        assert!(msg.contains("s.prs"), "{msg}");
    }
}

#[test]
fn wrong_magic_says_not_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut bytes) = sample_shard(dir.path());
    bytes[8..16].copy_from_slice(b"NOTASHRD");
    std::fs::write(&p, &bytes).unwrap();
    let msg = ShardReader::open(&p).err().unwrap().to_string();
    assert!(
        msg.contains("not a prior shard") && msg.contains("header"),
        "{msg}"
    );
}

#[test]
fn a_document_holding_end_of_text_or_a_too_wide_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ShardWriter::create(&dir.path().join("s.prs"), opts(TokenWidth::U16, 16)).unwrap();
    assert!(w.push_document(&[5, EOT, 6]).is_err());
    assert!(w.push_document(&[70_000]).is_err());
    w.push_document(&[5, 6]).unwrap();
    assert_eq!(w.finish().unwrap().documents, 1);
}

#[test]
fn an_unfinished_writer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.prs");
    {
        let mut w = ShardWriter::create(&p, opts(TokenWidth::U16, 16)).unwrap();
        w.push_document(&(1..100).collect::<Vec<_>>()).unwrap();
    }
    assert!(!p.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A shard whose middle frame is short (as another writer or a later
/// format could make), every checksum valid.
fn shard_with_a_short_middle_frame(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("short-middle.prs");
    let mut w = ShardWriter::create(&p, opts(TokenWidth::U16, 16)).unwrap();
    w.push_document(&(1..=20).collect::<Vec<u32>>()).unwrap(); // frame 0 full, 5 pending
    w.cut_frame_breaking_the_rule().unwrap(); // frame 1: 5 tokens
    w.push_document(&(1..=40).collect::<Vec<u32>>()).unwrap();
    w.finish().unwrap();
    p
}

#[test]
fn a_short_frame_before_the_last_breaks_the_frame_rule_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = shard_with_a_short_middle_frame(dir.path());
    let err = match ShardReader::open(&p) {
        Err(e) => e,
        Ok(r) => panic!(
            "a shard with a {}-token frame 1 of {} opened",
            r.frame(1).tokens,
            r.frame_tokens()
        ),
    };
    match &err {
        DataError::CorruptShard { path, region, .. } => {
            assert_eq!(path, &p);
            assert_eq!(*region, ShardRegion::Frame(1), "{err}");
        }
        other => panic!("expected a corrupt-shard error, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("short-middle.prs") && msg.contains("frame 1") && msg.contains("16"),
        "{msg}"
    );
}

#[test]
fn a_short_last_frame_keeps_the_frame_rule() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ok.prs");
    write(&p, &[(1..=20).collect()], opts(TokenWidth::U16, 16));
    let r = ShardReader::open(&p).unwrap();
    assert_eq!(r.num_frames(), 2);
    assert_eq!(r.frame(1).tokens, 5);
    r.verify().unwrap();
}
