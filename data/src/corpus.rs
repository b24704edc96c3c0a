//! The corpus: a directory of shards grouped into discourse categories,
//! described by one manifest.
//!
//! ```text
//! <corpus>/manifest.json        categories -> shards, counts, tokenizer, fingerprint
//! <corpus>/tokenizer.json       the Hugging Face tokenizer (absent for `byte`)
//! <corpus>/shards/<category>/<category>-000000.prs
//! <corpus>/shards/<category>/<category>-000000.labels   optional ground truth
//! ```
//!
//! The manifest is the single source of truth: a shard exists for readers
//! only once a manifest naming it has been renamed into place, so a crash
//! during ingest loses that ingest and nothing else. The *fingerprint*
//! hashes everything that decides token content (tokenizer, width, every
//! shard's index checksum), so the loader can key its sampling on it; the
//! *checksum* additionally covers the counts, so a bit flipped anywhere in
//! the manifest is caught.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::atomic::write_atomic;
use crate::error::{DataError, IoContext, Result};
use crate::shard::{
    ShardOptions, ShardReader, ShardSummary, ShardWriter, TokenWidth, DEFAULT_FRAME_TOKENS,
    DEFAULT_ZSTD_LEVEL,
};
use crate::tokenizer::{Tokenizer, TokenizerIdentity};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const MANIFEST_FORMAT: &str = "prior-corpus";
pub const MANIFEST_VERSION: u32 = 1;
/// Default bound on one shard's size: big enough that a corpus of
/// billions of tokens stays at thousands of files.
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 256 << 20;

/// Ground-truth label per document (for filter precision/recall): one byte
/// each, 0 = unknown, 1 = not AI discourse, 2 = AI discourse.
pub const LABEL_UNKNOWN: u8 = 0;
pub const LABEL_NO: u8 = 1;
pub const LABEL_YES: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub tokenizer: TokenizerIdentity,
    pub token_width: TokenWidth,
    pub categories: BTreeMap<String, CategoryEntry>,
    pub fingerprint: String,
    pub checksum: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryEntry {
    pub documents: u64,
    pub tokens: u64,
    pub compressed_bytes: u64,
    pub shards: Vec<ShardEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    /// Path relative to the corpus directory.
    pub file: String,
    pub documents: u64,
    pub tokens: u64,
    pub frames: u64,
    /// Tokens per frame the writer cut at (every frame but the last holds
    /// exactly this many): lets the loader plan blocks without opening shards.
    pub frame_tokens: u32,
    pub compressed_bytes: u64,
    /// xxh3-64 of the shard's index, 16 hex digits.
    pub index_checksum: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsEntry {
    pub file: String,
    pub checksum: String,
}

fn hex(x: u64) -> String {
    format!("{x:016x}")
}

impl Manifest {
    fn new(tokenizer: TokenizerIdentity) -> Manifest {
        let token_width = TokenWidth::for_vocab(tokenizer.vocab_size);
        let mut m = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            tokenizer,
            token_width,
            categories: BTreeMap::new(),
            fingerprint: String::new(),
            checksum: String::new(),
        };
        m.seal();
        m
    }

    /// Hash of everything that decides the token content of the corpus.
    pub fn compute_fingerprint(&self) -> String {
        let mut h = Xxh3::new();
        h.update(self.tokenizer.hash.as_bytes());
        h.update(&[self.token_width as u8]);
        for (name, cat) in &self.categories {
            h.update(name.as_bytes());
            h.update(&[0]);
            for s in &cat.shards {
                h.update(s.file.as_bytes());
                h.update(&[0]);
                h.update(s.index_checksum.as_bytes());
                h.update(&s.tokens.to_le_bytes());
            }
        }
        hex(h.digest())
    }

    fn compute_checksum(&self) -> String {
        let mut copy = self.clone();
        copy.checksum.clear();
        hex(xxh3_64(
            &serde_json::to_vec(&copy).expect("manifest serializes"),
        ))
    }

    fn seal(&mut self) {
        for cat in self.categories.values_mut() {
            cat.documents = cat.shards.iter().map(|s| s.documents).sum();
            cat.tokens = cat.shards.iter().map(|s| s.tokens).sum();
            cat.compressed_bytes = cat.shards.iter().map(|s| s.compressed_bytes).sum();
        }
        self.fingerprint = self.compute_fingerprint();
        self.checksum = self.compute_checksum();
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |d: String| DataError::manifest(path, d);
        if self.format != MANIFEST_FORMAT {
            return Err(bad(format!(
                "field `format` is {:?}, expected {MANIFEST_FORMAT:?}",
                self.format
            )));
        }
        if self.version != MANIFEST_VERSION {
            return Err(bad(format!(
                "field `version` is {}, this build reads {MANIFEST_VERSION}",
                self.version
            )));
        }
        let sum = self.compute_checksum();
        if sum != self.checksum && !cfg!(fuzzing) {
            return Err(bad(format!(
                "checksum mismatch (field `checksum` is {}, content hashes to {sum}): the manifest was edited or damaged",
                self.checksum
            )));
        }
        if self.compute_fingerprint() != self.fingerprint && !cfg!(fuzzing) {
            return Err(bad(
                "field `fingerprint` does not match the shards listed".into()
            ));
        }
        if TokenWidth::for_vocab(self.tokenizer.vocab_size) != self.token_width {
            return Err(bad(
                "field `token_width` does not fit the tokenizer's vocabulary".into(),
            ));
        }
        for (name, cat) in &self.categories {
            check_category_name(name).map_err(|e| bad(format!("category {name:?}: {e}")))?;
            let docs: u64 = cat.shards.iter().map(|s| s.documents).sum();
            let toks: u64 = cat.shards.iter().map(|s| s.tokens).sum();
            if docs != cat.documents || toks != cat.tokens {
                return Err(bad(format!(
                    "category {name:?}: totals disagree with its shards"
                )));
            }
            for s in &cat.shards {
                if s.file.contains("..") || Path::new(&s.file).is_absolute() {
                    return Err(bad(format!(
                        "shard path {:?} leaves the corpus directory",
                        s.file
                    )));
                }
                // The loader plans blocks from these three numbers without
                // opening the shard, so they must obey the frame rule: every
                // frame but the last holds exactly `frame_tokens` tokens.
                let fits = s.frame_tokens > 0
                    && s.frames > 0
                    && s.tokens > (s.frames - 1).saturating_mul(s.frame_tokens as u64)
                    && s.tokens <= s.frames.saturating_mul(s.frame_tokens as u64);
                let empty = s.tokens == 0 && s.frames == 0;
                if !fits && !empty {
                    return Err(bad(format!(
                        "shard {}: {} tokens cannot fill {} frames of {} tokens (every frame but the last holds exactly `frame_tokens`)",
                        s.file, s.tokens, s.frames, s.frame_tokens
                    )));
                }
            }
        }
        Ok(())
    }

    /// Total tokens over all categories.
    pub fn tokens(&self) -> u64 {
        self.categories.values().map(|c| c.tokens).sum()
    }
}

/// Category names become directory and file names, and appear in mix
/// specs as TOML keys, so they are kept to a plain alphabet.
pub fn check_category_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(
            "category names use letters, digits, '_', '-', '.' and start with a letter or digit"
                .into(),
        )
    }
}

/// An opened corpus: the checked manifest. Shards are opened on demand.
#[derive(Debug, Clone)]
pub struct Corpus {
    dir: PathBuf,
    manifest: Manifest,
}

impl Corpus {
    /// Reads and checks the manifest (checksum, fingerprint, totals). Does
    /// not touch the shards, so opening costs the same for any corpus size.
    pub fn open(dir: &Path) -> Result<Corpus> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DataError::manifest(&path, "not found: is this a prior corpus directory? (create one with `prior data ingest`)")
            } else {
                DataError::io(&path, e)
            }
        })?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            DataError::manifest(
                &path,
                format!("line {}, column {}: {e}", e.line(), e.column()),
            )
        })?;
        manifest.check(&path)?;
        Ok(Corpus {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn fingerprint(&self) -> &str {
        &self.manifest.fingerprint
    }

    pub fn category(&self, name: &str) -> Result<&CategoryEntry> {
        self.manifest.categories.get(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .manifest
                .categories
                .keys()
                .map(|s| s.as_str())
                .collect();
            DataError::Usage(format!(
                "unknown category {name:?} in corpus {} (it has: {})",
                self.dir.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// Loads the corpus's tokenizer and checks it is the one the manifest names.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let id = &self.manifest.tokenizer;
        let tok = if id.kind == "byte" {
            Tokenizer::byte()
        } else {
            let path = self.dir.join(TOKENIZER_FILE);
            let bytes = fs::read(&path).at(&path)?;
            Tokenizer::from_json_bytes(&bytes, &id.name)?
        };
        if &tok.identity() != id {
            return Err(DataError::manifest(
                &self.dir.join(MANIFEST_FILE),
                "the corpus's tokenizer.json is not the tokenizer the manifest records",
            ));
        }
        Ok(tok)
    }

    /// Opens shard `index` of `category` and checks it against the manifest.
    pub fn open_shard(&self, category: &str, index: usize) -> Result<ShardReader> {
        let cat = self.category(category)?;
        let entry = cat.shards.get(index).ok_or_else(|| {
            DataError::Usage(format!(
                "category {category:?} has {} shards, shard {index} requested",
                cat.shards.len()
            ))
        })?;
        self.open_shard_entry(entry)
    }

    pub fn open_shard_entry(&self, entry: &ShardEntry) -> Result<ShardReader> {
        let path = self.dir.join(&entry.file);
        let r = ShardReader::open(&path)?;
        let found = ShardSummary {
            documents: r.num_documents(),
            tokens: r.num_tokens(),
            frames: r.num_frames() as u64,
            file_bytes: r.file_bytes(),
            index_checksum: r.index_checksum(),
        };
        let disagree = if hex(found.index_checksum) != entry.index_checksum {
            Some("index checksum")
        } else if found.tokens != entry.tokens {
            Some("token count")
        } else if found.documents != entry.documents {
            Some("document count")
        } else if found.frames != entry.frames || r.frame_tokens() != entry.frame_tokens {
            Some("frame count or frame size")
        } else if found.file_bytes != entry.compressed_bytes {
            Some("file size")
        } else if r.width() != self.manifest.token_width
            || r.eot_id() != self.manifest.tokenizer.eot_id
        {
            Some("token width or end-of-text id")
        } else {
            None
        };
        if let Some(what) = disagree {
            return Err(DataError::manifest(
                &self.dir.join(MANIFEST_FILE),
                format!(
                    "shard {} disagrees with the manifest: {what} differs",
                    path.display()
                ),
            ));
        }
        Ok(r)
    }

    /// Ground-truth labels of a shard's documents, if it has them.
    pub fn shard_labels(&self, entry: &ShardEntry) -> Result<Option<Vec<u8>>> {
        let Some(l) = &entry.labels else {
            return Ok(None);
        };
        let path = self.dir.join(&l.file);
        let bytes = fs::read(&path).at(&path)?;
        if hex(xxh3_64(&bytes)) != l.checksum || bytes.len() as u64 != entry.documents {
            return Err(DataError::manifest(
                &self.dir.join(MANIFEST_FILE),
                format!("labels file {} disagrees with the manifest", path.display()),
            ));
        }
        Ok(Some(bytes))
    }

    /// Full check of everything: every shard against the manifest, every
    /// frame's checksum, document boundaries, labels, tokenizer. Calls
    /// `progress` with each shard's size once it is checked. Returns
    /// warnings (leftover temporary files, shards no manifest lists).
    pub fn verify(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport> {
        self.tokenizer()?;
        let mut report = VerifyReport::default();
        let mut listed = std::collections::HashSet::new();
        for cat in self.manifest.categories.values() {
            for entry in &cat.shards {
                let r = self.open_shard_entry(entry)?;
                r.verify()?;
                self.shard_labels(entry)?;
                listed.insert(self.dir.join(&entry.file));
                if let Some(l) = &entry.labels {
                    listed.insert(self.dir.join(&l.file));
                }
                report.shards += 1;
                report.frames += r.num_frames() as u64;
                report.documents += r.num_documents();
                report.tokens += r.num_tokens();
                report.bytes += r.file_bytes();
                progress(r.file_bytes());
            }
        }
        let shards_dir = self.dir.join("shards");
        if shards_dir.is_dir() {
            for cat_dir in fs::read_dir(&shards_dir).at(&shards_dir)? {
                let cat_dir = cat_dir.at(&shards_dir)?.path();
                if !cat_dir.is_dir() {
                    continue;
                }
                for f in fs::read_dir(&cat_dir).at(&cat_dir)? {
                    let p = f.at(&cat_dir)?.path();
                    if !listed.contains(&p) {
                        report.warnings.push(format!(
                            "{} is not listed in the manifest (left by an interrupted ingest?); it is ignored",
                            p.display()
                        ));
                    }
                }
            }
        }
        report.warnings.sort();
        Ok(report)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub shards: u64,
    pub frames: u64,
    pub documents: u64,
    pub tokens: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
}

/// How new shards are cut.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub frame_tokens: u32,
    pub zstd_level: i32,
    pub max_shard_bytes: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            frame_tokens: DEFAULT_FRAME_TOKENS,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            max_shard_bytes: DEFAULT_MAX_SHARD_BYTES,
        }
    }
}

/// Adds shards to a corpus (creating it if needed) under an exclusive
/// lock; the new shards become visible at [`CorpusWriter::commit`].
pub struct CorpusWriter {
    dir: PathBuf,
    manifest: Manifest,
    opts: WriteOptions,
    _lock: File,
}

impl CorpusWriter {
    pub fn open_or_create(
        dir: &Path,
        tokenizer: &Tokenizer,
        opts: WriteOptions,
    ) -> Result<CorpusWriter> {
        fs::create_dir_all(dir).at(dir)?;
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path).at(&lock_path)?;
        lock.try_lock().map_err(|_| {
            DataError::Usage(format!(
                "corpus {} is being written by another process; wait for it to finish",
                dir.display()
            ))
        })?;
        let manifest = if dir.join(MANIFEST_FILE).exists() {
            let existing = Corpus::open(dir)?;
            let have = &existing.manifest.tokenizer;
            let want = tokenizer.identity();
            if have != &want {
                return Err(DataError::Usage(format!(
                    "corpus {} was tokenized with {} ({}, vocab {}), not {} ({}, vocab {}); ingest with the same tokenizer or into a new corpus",
                    dir.display(), have.name, have.hash, have.vocab_size, want.name, want.hash, want.vocab_size
                )));
            }
            existing.manifest
        } else {
            if let Some(json) = tokenizer.json_bytes() {
                write_atomic(&dir.join(TOKENIZER_FILE), &json)?;
            }
            Manifest::new(tokenizer.identity())
        };
        Ok(CorpusWriter {
            dir: dir.to_path_buf(),
            manifest,
            opts,
            _lock: lock,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// A writer of new shards for `category` (new or existing).
    pub fn category(&self, category: &str) -> Result<CategoryWriter> {
        check_category_name(category)
            .map_err(|e| DataError::Usage(format!("category {category:?}: {e}")))?;
        let rel_dir = format!("shards/{category}");
        let abs_dir = self.dir.join(&rel_dir);
        fs::create_dir_all(&abs_dir).at(&abs_dir)?;
        // Next free number: past every listed shard and every file on disk,
        // so an interrupted ingest's leftovers are never overwritten.
        let mut next = 0u32;
        let prefix = format!("{category}-");
        let mut consider = |name: &str| {
            if let Some(rest) = name.strip_prefix(&prefix) {
                if let Some(num) = rest.get(..6).and_then(|n| n.parse::<u32>().ok()) {
                    next = next.max(num + 1);
                }
            }
        };
        if let Some(cat) = self.manifest.categories.get(category) {
            for s in &cat.shards {
                consider(
                    Path::new(&s.file)
                        .file_name()
                        .and_then(|f| f.to_str())
                        .unwrap_or(""),
                );
            }
        }
        for f in fs::read_dir(&abs_dir).at(&abs_dir)? {
            let f = f.at(&abs_dir)?;
            consider(f.file_name().to_str().unwrap_or(""));
        }
        Ok(CategoryWriter {
            corpus_dir: self.dir.clone(),
            rel_dir,
            category: category.to_string(),
            shard_opts: ShardOptions {
                width: self.manifest.token_width,
                eot_id: self.manifest.tokenizer.eot_id,
                frame_tokens: self.opts.frame_tokens,
                zstd_level: self.opts.zstd_level,
            },
            max_shard_bytes: self.opts.max_shard_bytes,
            next_index: next,
            current: None,
            done: Vec::new(),
        })
    }

    /// Records finished shards of a category (in the in-memory manifest).
    pub fn add_shards(&mut self, category: &str, shards: Vec<ShardEntry>) {
        self.manifest
            .categories
            .entry(category.to_string())
            .or_default()
            .shards
            .extend(shards);
    }

    /// Writes the manifest atomically; only now do the new shards exist.
    pub fn commit(mut self) -> Result<Manifest> {
        self.manifest.seal();
        let mut bytes = serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes");
        bytes.push(b'\n');
        write_atomic(&self.dir.join(MANIFEST_FILE), &bytes)?;
        Ok(self.manifest)
    }
}

struct OpenShard {
    writer: ShardWriter,
    rel_file: String,
    labels: Vec<u8>,
}

/// Writes a category's documents into as many shards as the size bound
/// needs.
pub struct CategoryWriter {
    corpus_dir: PathBuf,
    rel_dir: String,
    category: String,
    shard_opts: ShardOptions,
    max_shard_bytes: u64,
    next_index: u32,
    current: Option<OpenShard>,
    done: Vec<ShardEntry>,
}

impl CategoryWriter {
    pub fn category(&self) -> &str {
        &self.category
    }

    /// Appends a document, with its ground-truth AI-discourse label if known.
    pub fn push_document(&mut self, tokens: &[u32], ai_discourse: Option<bool>) -> Result<()> {
        if self.current.as_ref().is_some_and(|c| {
            c.writer.documents() > 0 && c.writer.estimated_bytes() >= self.max_shard_bytes
        }) {
            self.finish_current()?;
        }
        if self.current.is_none() {
            let rel_file = format!(
                "{}/{}-{:06}.prs",
                self.rel_dir, self.category, self.next_index
            );
            self.next_index += 1;
            let writer = ShardWriter::create(&self.corpus_dir.join(&rel_file), self.shard_opts)?;
            self.current = Some(OpenShard {
                writer,
                rel_file,
                labels: Vec::new(),
            });
        }
        let cur = self.current.as_mut().expect("opened above");
        cur.writer.push_document(tokens)?;
        cur.labels.push(match ai_discourse {
            None => LABEL_UNKNOWN,
            Some(false) => LABEL_NO,
            Some(true) => LABEL_YES,
        });
        Ok(())
    }

    fn finish_current(&mut self) -> Result<()> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let summary = cur.writer.finish()?;
        let labels = if cur.labels.iter().any(|&l| l != LABEL_UNKNOWN) {
            let file = cur.rel_file.replace(".prs", ".labels");
            write_atomic(&self.corpus_dir.join(&file), &cur.labels)?;
            Some(LabelsEntry {
                file,
                checksum: hex(xxh3_64(&cur.labels)),
            })
        } else {
            None
        };
        self.done.push(ShardEntry {
            file: cur.rel_file,
            documents: summary.documents,
            tokens: summary.tokens,
            frames: summary.frames,
            frame_tokens: self.shard_opts.frame_tokens,
            compressed_bytes: summary.file_bytes,
            index_checksum: hex(summary.index_checksum),
            labels,
        });
        Ok(())
    }

    /// Finishes the open shard; returns every shard written.
    pub fn finish(mut self) -> Result<Vec<ShardEntry>> {
        self.finish_current()?;
        Ok(std::mem::take(&mut self.done))
    }
}
