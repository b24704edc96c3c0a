//! Reader (and a small writer, for tests and interop) of Megatron /
//! GPT-NeoX indexed datasets: the uncompressed `.bin` + `.idx` pair the
//! paper's stack trained from.
//!
//! `.idx` layout (all little-endian): magic `MMIDIDX\0\0` (9 bytes),
//! version u64 (= 1), dtype code u8, sequence count u64, document count
//! u64, then `sizes: i32[sequences]`, `pointers: i64[sequences]` (byte
//! offsets into `.bin`), `doc_idx: i64[documents]` (first sequence of each
//! document, with the sequence count appended as the last entry). dtype
//! codes: 1 u8, 2 i8, 3 i16, 4 i32, 5 i64, 8 u16 (6 and 7 are floats and
//! are refused).
//!
//! The `.bin` is read with `pread`, not mapped: it is the user's file, and a
//! mapped file truncated or rewritten by another process kills the reader
//! with SIGBUS, where a read returns an error that names it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{DataError, IoContext, Result};

const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

pub struct MegatronDataset {
    bin_path: PathBuf,
    bin: File,
    /// Scratch for one sequence's bytes, reused across documents.
    scratch: std::cell::RefCell<Vec<u8>>,
    dtype_bytes: usize,
    dtype: u8,
    sizes: Vec<u32>,
    pointers: Vec<u64>,
    doc_idx: Vec<u64>,
}

fn dtype_bytes(code: u8) -> Option<usize> {
    match code {
        1 | 2 => Some(1),
        3 | 8 => Some(2),
        4 => Some(4),
        5 => Some(8),
        _ => None,
    }
}

impl MegatronDataset {
    /// Checks that both files of the pair exist.
    pub fn check_pair(prefix: &Path) -> Result<()> {
        for ext in ["bin", "idx"] {
            let p = prefix.with_extension(ext);
            if !p.is_file() {
                return Err(DataError::input(
                    &p,
                    None,
                    "Megatron dataset file missing (both .bin and .idx are needed)",
                ));
            }
        }
        Ok(())
    }

    pub fn open(prefix: &Path) -> Result<MegatronDataset> {
        Self::check_pair(prefix)?;
        let idx_path = prefix.with_extension("idx");
        let bin_path = prefix.with_extension("bin");
        let idx = std::fs::read(&idx_path).at(&idx_path)?;
        let bad = |d: &str| DataError::input(&idx_path, None, d.to_string());
        if idx.len() < 34 || &idx[..9] != MAGIC {
            return Err(bad("not a Megatron index (magic MMIDIDX missing)"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(idx[at..at + 8].try_into().expect("8 bytes"));
        if u64_at(9) != 1 {
            return Err(bad("unsupported Megatron index version (expected 1)"));
        }
        let dtype = idx[17];
        let width = dtype_bytes(dtype).ok_or_else(|| bad("token dtype is not an integer type"))?;
        let n_seq = u64_at(18) as usize;
        let n_doc = u64_at(26) as usize;
        let need = 34usize
            .checked_add(
                n_seq
                    .checked_mul(12)
                    .ok_or_else(|| bad("sequence count overflows"))?,
            )
            .and_then(|x| x.checked_add(n_doc.checked_mul(8)?))
            .ok_or_else(|| bad("document count overflows"))?;
        if idx.len() < need {
            return Err(bad("index is truncated"));
        }
        let mut at = 34;
        let mut sizes = Vec::with_capacity(n_seq);
        for i in 0..n_seq {
            let size = i32::from_le_bytes(idx[at + 4 * i..at + 4 * i + 4].try_into().expect("4"));
            let size = u32::try_from(size)
                .map_err(|_| bad(&format!("sequence {i} has negative size {size}")))?;
            sizes.push(size);
        }
        at += 4 * n_seq;
        let pointers: Vec<u64> = (0..n_seq).map(|i| u64_at(at + 8 * i)).collect();
        at += 8 * n_seq;
        let doc_idx: Vec<u64> = (0..n_doc).map(|i| u64_at(at + 8 * i)).collect();
        let bin = File::open(&bin_path).at(&bin_path)?;
        let bin_len = bin.metadata().at(&bin_path)?.len();
        for i in 0..n_seq {
            let end = pointers[i].checked_add(sizes[i] as u64 * width as u64);
            if end.is_none_or(|e| e > bin_len) {
                return Err(DataError::input(
                    &bin_path,
                    None,
                    format!("sequence {i} lies beyond the end of the file (truncated?)"),
                ));
            }
        }
        if doc_idx.windows(2).any(|w| w[0] > w[1])
            || doc_idx.last().is_some_and(|&l| l as usize > n_seq)
        {
            return Err(bad("document index is out of order"));
        }
        Ok(MegatronDataset {
            bin_path,
            bin,
            scratch: std::cell::RefCell::new(Vec::new()),
            dtype_bytes: width,
            dtype,
            sizes,
            pointers,
            doc_idx,
        })
    }

    pub fn bin_path(&self) -> &Path {
        &self.bin_path
    }

    /// Documents per `doc_idx` (its last entry closes the last document).
    pub fn num_documents(&self) -> usize {
        self.doc_idx.len().saturating_sub(1)
    }

    /// The tokens of document `d` and the `.bin` bytes they took.
    pub fn document(&self, d: usize) -> Result<(Vec<u32>, u64)> {
        let (s0, s1) = (self.doc_idx[d] as usize, self.doc_idx[d + 1] as usize);
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for s in s0..s1 {
            let start = self.pointers[s];
            let len = self.sizes[s] as usize * self.dtype_bytes;
            let mut scratch = self.scratch.borrow_mut();
            scratch.resize(len, 0);
            self.bin.read_exact_at(&mut scratch, start).map_err(|e| {
                DataError::input(
                    &self.bin_path,
                    None,
                    format!(
                        "reading sequence {s} ({len} bytes at offset {start}): {e} (was the file truncated or changed during the import?)"
                    ),
                )
            })?;
            let raw = &scratch[..];
            bytes += len as u64;
            for c in raw.chunks_exact(self.dtype_bytes) {
                let v: i64 = match self.dtype {
                    1 => c[0] as i64,
                    2 => c[0] as i8 as i64,
                    3 => i16::from_le_bytes([c[0], c[1]]) as i64,
                    8 => u16::from_le_bytes([c[0], c[1]]) as i64,
                    4 => i32::from_le_bytes(c.try_into().expect("4")) as i64,
                    _ => i64::from_le_bytes(c.try_into().expect("8")),
                };
                if !(0..=u32::MAX as i64).contains(&v) {
                    return Err(DataError::input(
                        &self.bin_path,
                        None,
                        format!("document {d} holds token id {v}"),
                    ));
                }
                out.push(v as u32);
            }
        }
        Ok((out, bytes))
    }
}

/// Writes documents as a Megatron dataset (one sequence per document,
/// u16 tokens when they fit, else i32).
pub fn write_megatron(prefix: &Path, docs: &[Vec<u32>]) -> Result<()> {
    let wide = docs.iter().flatten().any(|&t| t > u16::MAX as u32);
    let (dtype, width) = if wide { (4u8, 4usize) } else { (8u8, 2usize) };
    let mut bin = Vec::new();
    let mut idx = Vec::new();
    idx.extend_from_slice(MAGIC);
    idx.extend_from_slice(&1u64.to_le_bytes());
    idx.push(dtype);
    idx.extend_from_slice(&(docs.len() as u64).to_le_bytes());
    idx.extend_from_slice(&(docs.len() as u64 + 1).to_le_bytes());
    let mut pointers = Vec::new();
    for d in docs {
        idx.extend_from_slice(&(d.len() as i32).to_le_bytes());
        pointers.push(bin.len() as u64);
        for &t in d {
            if width == 2 {
                bin.extend_from_slice(&(t as u16).to_le_bytes());
            } else {
                bin.extend_from_slice(&(t as i32).to_le_bytes());
            }
        }
    }
    for p in pointers {
        idx.extend_from_slice(&p.to_le_bytes());
    }
    for i in 0..=docs.len() as u64 {
        idx.extend_from_slice(&i.to_le_bytes());
    }
    write_atomic(&prefix.with_extension("bin"), &bin)?;
    write_atomic(&prefix.with_extension("idx"), &idx)
}
