//! The token shard: one file of independent zstd frames plus an index.
//!
//! A shard is what every other part of prior reads tokens from, so its
//! layout is chosen for three things: random access (any frame decompresses
//! alone, found through the index without touching the rest of the file),
//! integrity (a 64-bit xxh3 checksum per frame, over header and over index,
//! so a flipped bit is an error that names the frame, never silent garbage),
//! and interoperability (header and index live in zstd *skippable frames*,
//! following the zstd seekable format's convention, so `zstd -d shard.prs`
//! yields exactly the raw little-endian token stream). The byte layout is
//! written down in `docs/format.md`.
//!
//! Documents are stored back to back, each followed by the tokenizer's
//! end-of-text id; a document may span frames but never shards.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::atomic::AtomicFile;
use crate::error::{DataError, IoContext, Result, ShardRegion};

/// zstd skippable frame magic holding the shard header.
pub const HEADER_FRAME_MAGIC: u32 = 0x184D_2A50;
/// zstd skippable frame magic holding the index (the seekable format's).
pub const INDEX_FRAME_MAGIC: u32 = 0x184D_2A5E;
pub const SHARD_MAGIC: &[u8; 8] = b"PRIORSHD";
pub const INDEX_MAGIC: &[u8; 8] = b"PRIORIDX";
pub const FORMAT_VERSION: u32 = 1;
/// Skippable frame header (8) + header payload (32).
pub const HEADER_LEN: usize = 40;
const HEADER_PAYLOAD_LEN: u32 = 32;
const FRAME_ENTRY_LEN: usize = 24;
const FOOTER_LEN: usize = 40;

/// Default tokens per zstd frame: large enough for a good ratio, small
/// enough that random access decompresses little that is not used.
pub const DEFAULT_FRAME_TOKENS: u32 = 64 * 1024;
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// How many bytes one token takes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenWidth {
    U16,
    U32,
}

impl TokenWidth {
    /// The narrowest width that holds every id of a vocabulary.
    pub fn for_vocab(vocab_size: u32) -> TokenWidth {
        if vocab_size <= 1 << 16 {
            TokenWidth::U16
        } else {
            TokenWidth::U32
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            TokenWidth::U16 => 2,
            TokenWidth::U32 => 4,
        }
    }

    fn from_bytes(b: u8) -> Option<TokenWidth> {
        match b {
            2 => Some(TokenWidth::U16),
            4 => Some(TokenWidth::U32),
            _ => None,
        }
    }

    fn max_id(self) -> u64 {
        match self {
            TokenWidth::U16 => u16::MAX as u64,
            TokenWidth::U32 => u32::MAX as u64,
        }
    }
}

/// One data frame as the index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEntry {
    /// Byte offset of the zstd frame in the shard file.
    pub offset: u64,
    pub compressed_size: u32,
    pub tokens: u32,
    /// xxh3-64 of the compressed frame bytes.
    pub checksum: u64,
}

/// Knobs of [`ShardWriter`].
#[derive(Debug, Clone, Copy)]
pub struct ShardOptions {
    pub width: TokenWidth,
    pub eot_id: u32,
    pub frame_tokens: u32,
    pub zstd_level: i32,
}

/// What a finished shard holds; recorded in the corpus manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSummary {
    pub documents: u64,
    pub tokens: u64,
    pub frames: u64,
    pub file_bytes: u64,
    pub index_checksum: u64,
}

/// Writes one shard atomically: nothing appears under the final name until
/// [`ShardWriter::finish`] has written and synced the index.
pub struct ShardWriter {
    file: AtomicFile,
    opts: ShardOptions,
    compressor: zstd::bulk::Compressor<'static>,
    pending: Vec<u32>,
    raw: Vec<u8>,
    frames: Vec<FrameEntry>,
    doc_starts: Vec<u64>,
    tokens: u64,
    offset: u64,
}

impl ShardWriter {
    pub fn create(path: &Path, opts: ShardOptions) -> Result<ShardWriter> {
        if opts.frame_tokens == 0 {
            return Err(DataError::Usage("frame_tokens must be at least 1".into()));
        }
        if opts.eot_id as u64 > opts.width.max_id() {
            return Err(DataError::Usage(format!(
                "end-of-text id {} does not fit {:?} tokens",
                opts.eot_id, opts.width
            )));
        }
        let mut file = AtomicFile::create(path)?;
        file.write_all(&encode_header(&opts))?;
        let compressor = zstd::bulk::Compressor::new(opts.zstd_level).at(path)?;
        Ok(ShardWriter {
            file,
            opts,
            compressor,
            pending: Vec::with_capacity(opts.frame_tokens as usize * 2),
            raw: Vec::new(),
            frames: Vec::new(),
            doc_starts: Vec::new(),
            tokens: 0,
            offset: HEADER_LEN as u64,
        })
    }

    /// Appends one document (its tokens, then end-of-text). A document
    /// holding the end-of-text id or an id too wide for the shard is
    /// refused, since readers find document ends by that id.
    pub fn push_document(&mut self, tokens: &[u32]) -> Result<()> {
        let max = self.opts.width.max_id();
        if let Some(pos) = tokens
            .iter()
            .position(|&t| t == self.opts.eot_id || t as u64 > max)
        {
            let t = tokens[pos];
            let why = if t == self.opts.eot_id {
                "the end-of-text id".to_string()
            } else {
                format!("an id wider than {:?}", self.opts.width)
            };
            return Err(DataError::Usage(format!(
                "document token {pos} is {t}, {why}; it cannot be stored inside a document"
            )));
        }
        self.doc_starts.push(self.tokens);
        self.pending.extend_from_slice(tokens);
        self.pending.push(self.opts.eot_id);
        self.tokens += tokens.len() as u64 + 1;
        let ft = self.opts.frame_tokens as usize;
        if self.pending.len() >= ft {
            let mut start = 0;
            while self.pending.len() - start >= ft {
                let chunk: Vec<u32> = self.pending[start..start + ft].to_vec();
                self.write_frame(&chunk)?;
                start += ft;
            }
            self.pending.drain(..start);
        }
        Ok(())
    }

    /// Ends the current frame here, short, which breaks the frame rule
    /// (every frame but the last holds exactly `frame_tokens` tokens). It
    /// exists so that readers' checks can be tested against a shard such as
    /// another writer might make; prior never writes one.
    #[doc(hidden)]
    pub fn cut_frame_breaking_the_rule(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.write_frame(&chunk)?;
        }
        Ok(())
    }

    pub fn documents(&self) -> u64 {
        self.doc_starts.len() as u64
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Bytes the finished shard will take, about: frames written so far,
    /// the pending tokens at the running compression ratio, and the index.
    pub fn estimated_bytes(&self) -> u64 {
        let written_tokens: u64 = self.frames.iter().map(|f| f.tokens as u64).sum();
        let ratio = if written_tokens > 0 {
            (self.offset - HEADER_LEN as u64) as f64 / written_tokens as f64
        } else {
            self.opts.width.bytes() as f64
        };
        self.offset
            + (self.pending.len() as f64 * ratio) as u64
            + (self.frames.len() * FRAME_ENTRY_LEN + self.doc_starts.len() * 8 + FOOTER_LEN + 8)
                as u64
    }

    fn write_frame(&mut self, tokens: &[u32]) -> Result<()> {
        self.raw.clear();
        match self.opts.width {
            TokenWidth::U16 => {
                for &t in tokens {
                    self.raw.extend_from_slice(&(t as u16).to_le_bytes());
                }
            }
            TokenWidth::U32 => {
                for &t in tokens {
                    self.raw.extend_from_slice(&t.to_le_bytes());
                }
            }
        }
        let path = self.file.path().to_path_buf();
        let compressed = self.compressor.compress(&self.raw).at(&path)?;
        self.file.write_all(&compressed)?;
        self.frames.push(FrameEntry {
            offset: self.offset,
            compressed_size: compressed.len() as u32,
            tokens: tokens.len() as u32,
            checksum: xxh3_64(&compressed),
        });
        self.offset += compressed.len() as u64;
        Ok(())
    }

    /// Writes the last frame and the index, syncs and renames into place.
    pub fn finish(mut self) -> Result<ShardSummary> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.write_frame(&rest)?;
        }
        let index = encode_index(&self.frames, &self.doc_starts, self.tokens);
        let index_checksum = u64::from_le_bytes(
            index[index.len() - 16..index.len() - 8]
                .try_into()
                .expect("8 bytes"),
        );
        self.file.write_all(&index)?;
        let file_bytes = self.offset + index.len() as u64;
        let summary = ShardSummary {
            documents: self.doc_starts.len() as u64,
            tokens: self.tokens,
            frames: self.frames.len() as u64,
            file_bytes,
            index_checksum,
        };
        self.file.commit()?;
        Ok(summary)
    }
}

fn encode_header(opts: &ShardOptions) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(&HEADER_FRAME_MAGIC.to_le_bytes());
    h.extend_from_slice(&HEADER_PAYLOAD_LEN.to_le_bytes());
    h.extend_from_slice(SHARD_MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.push(opts.width.bytes() as u8);
    h.extend_from_slice(&[0, 0, 0]);
    h.extend_from_slice(&opts.frame_tokens.to_le_bytes());
    h.extend_from_slice(&opts.eot_id.to_le_bytes());
    let sum = xxh3_64(&h[8..32]);
    h.extend_from_slice(&sum.to_le_bytes());
    debug_assert_eq!(h.len(), HEADER_LEN);
    h
}

fn encode_index(frames: &[FrameEntry], doc_starts: &[u64], tokens: u64) -> Vec<u8> {
    let payload_len = frames.len() * FRAME_ENTRY_LEN + doc_starts.len() * 8 + FOOTER_LEN;
    let mut out = Vec::with_capacity(8 + payload_len);
    out.extend_from_slice(&INDEX_FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    for f in frames {
        out.extend_from_slice(&f.offset.to_le_bytes());
        out.extend_from_slice(&f.compressed_size.to_le_bytes());
        out.extend_from_slice(&f.tokens.to_le_bytes());
        out.extend_from_slice(&f.checksum.to_le_bytes());
    }
    for d in doc_starts {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(doc_starts.len() as u64).to_le_bytes());
    out.extend_from_slice(&tokens.to_le_bytes());
    let sum = xxh3_64(&out[8..]);
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(INDEX_MAGIC);
    out
}

/// Appends little-endian tokens of `width` bytes from `raw` to `out`.
pub fn widen_into(width: TokenWidth, raw: &[u8], out: &mut Vec<u32>) {
    let w = width.bytes();
    let n = raw.len() / w;
    out.reserve(n);
    let old = out.len();
    // Writing into spare capacity through a zip lets the compiler vectorize
    // the loop (an `extend` over a mapped iterator does not).
    let dst = &mut out.spare_capacity_mut()[..n];
    match width {
        TokenWidth::U16 => {
            for (d, c) in dst.iter_mut().zip(raw.chunks_exact(2)) {
                d.write(u16::from_le_bytes([c[0], c[1]]) as u32);
            }
        }
        TokenWidth::U32 => {
            for (d, c) in dst.iter_mut().zip(raw.chunks_exact(4)) {
                d.write(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
    }
    // SAFETY: the loop above initialised exactly `n` elements past `old`.
    unsafe { out.set_len(old + n) };
}

/// Whether a stored checksum matches the bytes' hash. Fuzz builds accept
/// any checksum, so that the fuzzer reaches the checks behind them (a random
/// input otherwise never gets past the header's).
fn checksum_matches(stored: u64, computed: u64) -> bool {
    cfg!(fuzzing) || stored == computed
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reusable decompression state, one per reading thread.
pub struct FrameDecoder {
    inner: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            inner: zstd::bulk::Decompressor::new().expect("zstd decompression context"),
            raw: Vec::new(),
        }
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

/// Read-only, memory-mapped view of one shard. Opening reads and checks
/// header and index only; frames are checked as they are read.
pub struct ShardReader {
    path: PathBuf,
    file: File,
    map: Mmap,
    width: TokenWidth,
    eot_id: u32,
    frame_tokens: u32,
    frames: Vec<FrameEntry>,
    /// Token offset of each frame's first token, plus the total at the end.
    frame_starts: Vec<u64>,
    doc_starts: Vec<u64>,
    tokens: u64,
    index_checksum: u64,
}

impl ShardReader {
    pub fn open(path: &Path) -> Result<ShardReader> {
        let file = File::open(path).at(path)?;
        // SAFETY: the map is read-only; shards are immutable once renamed
        // into place (writers only ever create new files).
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        Self::from_map(path, file, map)
    }

    fn from_map(path: &Path, file: File, map: Mmap) -> Result<ShardReader> {
        let b: &[u8] = &map;
        let bad = |region, detail: String| DataError::corrupt(path, region, detail);
        if b.len() < HEADER_LEN + 8 + FOOTER_LEN {
            return Err(bad(
                ShardRegion::Header,
                format!(
                    "file is {} bytes, shorter than an empty shard (truncated?)",
                    b.len()
                ),
            ));
        }
        // Header.
        if le_u32(b, 0) != HEADER_FRAME_MAGIC || &b[8..16] != SHARD_MAGIC {
            return Err(bad(
                ShardRegion::Header,
                "wrong magic: not a prior shard".into(),
            ));
        }
        if le_u32(b, 4) != HEADER_PAYLOAD_LEN
            || !checksum_matches(le_u64(b, 32), xxh3_64(&b[8..32]))
        {
            return Err(bad(ShardRegion::Header, "header checksum mismatch".into()));
        }
        let version = le_u32(b, 16);
        if version != FORMAT_VERSION {
            return Err(bad(
                ShardRegion::Header,
                format!("format version {version}, this build reads {FORMAT_VERSION}"),
            ));
        }
        let width = TokenWidth::from_bytes(b[20])
            .ok_or_else(|| bad(ShardRegion::Header, format!("token width {}", b[20])))?;
        let frame_tokens = le_u32(b, 24);
        let eot_id = le_u32(b, 28);
        if frame_tokens == 0 {
            return Err(bad(ShardRegion::Header, "frame size of 0 tokens".into()));
        }

        // Footer, at the very end.
        let f = b.len() - FOOTER_LEN;
        if &b[f + 32..f + 40] != INDEX_MAGIC {
            return Err(bad(
                ShardRegion::Footer,
                "index magic missing at end of file (truncated or not finished?)".into(),
            ));
        }
        let n_frames = le_u32(b, f) as usize;
        let n_docs = le_u64(b, f + 8);
        let tokens = le_u64(b, f + 16);
        let stored_sum = le_u64(b, f + 24);
        let payload_len = (n_frames as u64)
            .checked_mul(FRAME_ENTRY_LEN as u64)
            .and_then(|x| x.checked_add(n_docs.checked_mul(8)?))
            .and_then(|x| x.checked_add(FOOTER_LEN as u64))
            .filter(|&x| x + 8 + HEADER_LEN as u64 <= b.len() as u64)
            .ok_or_else(|| {
                bad(
                    ShardRegion::Footer,
                    format!("footer claims {n_frames} frames and {n_docs} documents, more than the file holds"),
                )
            })? as usize;
        let index_start = b.len() - payload_len - 8;
        if le_u32(b, index_start) != INDEX_FRAME_MAGIC
            || le_u32(b, index_start + 4) as usize != payload_len
        {
            return Err(bad(
                ShardRegion::Index,
                "index frame header does not match the footer".into(),
            ));
        }
        let index_checksum = xxh3_64(&b[index_start + 8..b.len() - 16]);
        if !checksum_matches(stored_sum, index_checksum) {
            return Err(bad(ShardRegion::Index, "index checksum mismatch".into()));
        }

        // Index entries; everything is cross-checked so a reader never
        // indexes outside the map.
        let mut frames = Vec::with_capacity(n_frames);
        let mut frame_starts = Vec::with_capacity(n_frames + 1);
        let mut expect_offset = HEADER_LEN as u64;
        let mut sum_tokens = 0u64;
        for i in 0..n_frames {
            let e = index_start + 8 + i * FRAME_ENTRY_LEN;
            let entry = FrameEntry {
                offset: le_u64(b, e),
                compressed_size: le_u32(b, e + 8),
                tokens: le_u32(b, e + 12),
                checksum: le_u64(b, e + 16),
            };
            if entry.offset != expect_offset || entry.tokens == 0 {
                return Err(bad(
                    ShardRegion::Index,
                    format!(
                        "entry of frame {i} is inconsistent (offset {}, expected {expect_offset})",
                        entry.offset
                    ),
                ));
            }
            // The frame rule: the loader addresses a token by `pos /
            // frame_tokens`, so every frame but the last must be full and
            // none may be longer.
            let last = i + 1 == n_frames;
            if entry.tokens > frame_tokens || (!last && entry.tokens != frame_tokens) {
                return Err(bad(
                    ShardRegion::Frame(i),
                    format!(
                        "holds {} tokens; the header's frame size is {frame_tokens}, and every frame but the last must hold exactly that (written by another tool or format version?)",
                        entry.tokens
                    ),
                ));
            }
            frame_starts.push(sum_tokens);
            sum_tokens += entry.tokens as u64;
            expect_offset += entry.compressed_size as u64;
            frames.push(entry);
        }
        frame_starts.push(sum_tokens);
        if expect_offset != index_start as u64 || sum_tokens != tokens {
            return Err(bad(
                ShardRegion::Index,
                "frames do not tile the file between header and index".into(),
            ));
        }
        let d0 = index_start + 8 + n_frames * FRAME_ENTRY_LEN;
        let mut doc_starts = Vec::with_capacity(n_docs as usize);
        for i in 0..n_docs as usize {
            let s = le_u64(b, d0 + i * 8);
            let ok = if i == 0 {
                s == 0
            } else {
                s > doc_starts[i - 1] && s < tokens
            };
            if !ok {
                return Err(bad(
                    ShardRegion::Index,
                    format!("start of document {i} is out of order"),
                ));
            }
            doc_starts.push(s);
        }
        if (n_docs == 0) != (tokens == 0) {
            return Err(bad(ShardRegion::Index, "tokens without documents".into()));
        }
        Ok(ShardReader {
            path: path.to_path_buf(),
            file,
            map,
            width,
            eot_id,
            frame_tokens,
            frames,
            frame_starts,
            doc_starts,
            tokens,
            index_checksum,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn width(&self) -> TokenWidth {
        self.width
    }
    pub fn eot_id(&self) -> u32 {
        self.eot_id
    }
    /// The frame size the writer aimed for (the last frame may be shorter).
    pub fn frame_tokens(&self) -> u32 {
        self.frame_tokens
    }
    pub fn num_frames(&self) -> usize {
        self.frames.len()
    }
    pub fn num_documents(&self) -> u64 {
        self.doc_starts.len() as u64
    }
    pub fn num_tokens(&self) -> u64 {
        self.tokens
    }
    pub fn file_bytes(&self) -> u64 {
        self.map.len() as u64
    }
    pub fn index_checksum(&self) -> u64 {
        self.index_checksum
    }
    pub fn frame(&self, i: usize) -> FrameEntry {
        self.frames[i]
    }
    /// Token range `[start, end)` of frame `i` within the shard.
    pub fn frame_token_range(&self, i: usize) -> Range<u64> {
        self.frame_starts[i]..self.frame_starts[i + 1]
    }
    /// Token range of document `i`, its end-of-text included.
    pub fn document_token_range(&self, i: u64) -> Range<u64> {
        let i = i as usize;
        let end = self.doc_starts.get(i + 1).copied().unwrap_or(self.tokens);
        self.doc_starts[i]..end
    }
    /// Token offsets where documents start, in order.
    pub fn document_starts(&self) -> &[u64] {
        &self.doc_starts
    }
    /// The frame holding token `pos`.
    pub fn frame_of_token(&self, pos: u64) -> usize {
        self.frame_starts.partition_point(|&s| s <= pos) - 1
    }
    /// The compressed bytes of frame `i`, unchecked (for raw-speed benches).
    pub fn compressed_frame(&self, i: usize) -> &[u8] {
        let f = self.frames[i];
        &self.map[f.offset as usize..f.offset as usize + f.compressed_size as usize]
    }

    /// Checks and decompresses frame `i` into `raw` (replacing its
    /// contents) as little-endian tokens of [`ShardReader::width`] bytes.
    pub fn read_frame_raw(
        &self,
        i: usize,
        dec: &mut FrameDecoder,
        raw: &mut Vec<u8>,
    ) -> Result<()> {
        self.check_frame_index(i)?;
        self.decode_frame(i, self.compressed_frame(i), dec, raw)
    }

    /// As [`ShardReader::read_frame_raw`], but reads the compressed bytes
    /// with `pread` into `scratch` instead of through the memory map. A
    /// streaming reader uses this so its resident memory follows what it
    /// holds, not how much of the corpus it has touched (mapped pages stay
    /// resident, and the kernel maps neighbouring pages on each fault).
    pub fn read_frame_raw_unmapped(
        &self,
        i: usize,
        dec: &mut FrameDecoder,
        scratch: &mut Vec<u8>,
        raw: &mut Vec<u8>,
    ) -> Result<()> {
        use std::os::unix::fs::FileExt;
        self.check_frame_index(i)?;
        let f = self.frames[i];
        scratch.resize(f.compressed_size as usize, 0);
        self.file.read_exact_at(scratch, f.offset).map_err(|e| {
            DataError::corrupt(
                &self.path,
                ShardRegion::Frame(i),
                format!("read failed: {e}"),
            )
        })?;
        self.decode_frame(i, scratch, dec, raw)
    }

    fn check_frame_index(&self, i: usize) -> Result<()> {
        if i >= self.frames.len() {
            return Err(DataError::Usage(format!(
                "{}: frame {i} requested, shard has {}",
                self.path.display(),
                self.frames.len()
            )));
        }
        Ok(())
    }

    fn decode_frame(
        &self,
        i: usize,
        bytes: &[u8],
        dec: &mut FrameDecoder,
        raw: &mut Vec<u8>,
    ) -> Result<()> {
        let f = self.frames[i];
        let sum = xxh3_64(bytes);
        if !checksum_matches(f.checksum, sum) {
            return Err(DataError::corrupt(
                &self.path,
                ShardRegion::Frame(i),
                format!(
                    "checksum mismatch (index says {:016x}, bytes hash to {sum:016x})",
                    f.checksum
                ),
            ));
        }
        let want = f.tokens as usize * self.width.bytes();
        raw.clear();
        raw.reserve(want);
        let n = dec.inner.decompress_to_buffer(bytes, raw).map_err(|e| {
            DataError::corrupt(&self.path, ShardRegion::Frame(i), format!("zstd: {e}"))
        })?;
        if n != want {
            return Err(DataError::corrupt(
                &self.path,
                ShardRegion::Frame(i),
                format!("decompressed to {n} bytes, index says {want}"),
            ));
        }
        Ok(())
    }

    /// Checks and decompresses frame `i`, appending its tokens to `out`.
    pub fn read_frame_into(
        &self,
        i: usize,
        dec: &mut FrameDecoder,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let mut raw = std::mem::take(&mut dec.raw);
        let r = self.read_frame_raw(i, dec, &mut raw);
        if r.is_ok() {
            widen_into(self.width, &raw, out);
        }
        dec.raw = raw;
        r
    }

    /// Tokens `[range.start, range.end)` of the shard, decompressing only
    /// the frames that cover them.
    pub fn read_tokens(&self, range: Range<u64>, dec: &mut FrameDecoder) -> Result<Vec<u32>> {
        if range.end > self.tokens || range.start > range.end {
            return Err(DataError::Usage(format!(
                "{}: token range {range:?} outside 0..{}",
                self.path.display(),
                self.tokens
            )));
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        if range.is_empty() {
            return Ok(out);
        }
        let first = self.frame_of_token(range.start);
        let last = self.frame_of_token(range.end - 1);
        let mut buf = Vec::new();
        for i in first..=last {
            buf.clear();
            self.read_frame_into(i, dec, &mut buf)?;
            let fr = self.frame_token_range(i);
            let lo = range.start.max(fr.start) - fr.start;
            let hi = range.end.min(fr.end) - fr.start;
            out.extend_from_slice(&buf[lo as usize..hi as usize]);
        }
        Ok(out)
    }

    /// Document `i`'s tokens, without its end-of-text.
    pub fn read_document(&self, i: u64, dec: &mut FrameDecoder) -> Result<Vec<u32>> {
        if i >= self.num_documents() {
            return Err(DataError::Usage(format!(
                "{}: document {i} requested, shard has {}",
                self.path.display(),
                self.num_documents()
            )));
        }
        let mut r = self.document_token_range(i);
        r.end -= 1;
        self.read_tokens(r, dec)
    }

    /// Full pass: every frame's checksum and size, and that end-of-text ids
    /// sit exactly at the document ends the index records.
    pub fn verify(&self) -> Result<()> {
        let mut dec = FrameDecoder::new();
        let mut buf = Vec::new();
        let mut next_doc = 1usize; // index into doc_starts of the next boundary
        for i in 0..self.frames.len() {
            buf.clear();
            self.read_frame_into(i, &mut dec, &mut buf)?;
            let base = self.frame_starts[i];
            for (k, &t) in buf.iter().enumerate() {
                let pos = base + k as u64;
                let doc_end = self
                    .doc_starts
                    .get(next_doc)
                    .copied()
                    .unwrap_or(self.tokens)
                    - 1;
                let is_end = pos == doc_end;
                if (t == self.eot_id) != is_end {
                    return Err(DataError::corrupt(
                        &self.path,
                        ShardRegion::Frame(i),
                        format!(
                            "token {pos} is {t}; the index puts a document end {}",
                            if is_end { "here" } else { "elsewhere" }
                        ),
                    ));
                }
                if is_end {
                    next_doc += 1;
                }
            }
        }
        Ok(())
    }
}
