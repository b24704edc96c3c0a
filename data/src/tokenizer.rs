//! Tokenizers: the one place that turns text into token ids and back.
//!
//! Everything downstream (ingest, shards, the loader, the model's embedding
//! size, evaluation prompts) only sees `u32` ids, an end-of-text id that
//! separates documents, and a vocabulary size. This module owns those three
//! facts and the identity that a corpus manifest records, so that two corpora
//! (or an ingest and a training run) can prove they speak the same
//! vocabulary before their tokens are mixed.
//!
//! Two kinds exist:
//! - [`ByteTokenizer`]: ids `0..=255` are the raw UTF-8 bytes, `256` is
//!   `<|endoftext|>` and `257` is `<|padding|>`. Needs no file, is lossless,
//!   and is what tests and tiny demos use.
//! - [`HfTokenizer`]: any Hugging Face `tokenizer.json` (GPT-NeoX/Pythia's
//!   byte-level BPE in particular), through the `tokenizers` crate. Its
//!   identity hash is the xxh3-64 of the exact file bytes, and those bytes
//!   are kept so they can be stored beside a corpus.
//!
//! [`train_bpe`] trains a GPT-NeoX-style byte-level BPE from the text field
//! of JSONL files and writes its `tokenizer.json` atomically.
//!
//! Encoding never adds special tokens, and a literal `<|endoftext|>` inside
//! a document is encoded as ordinary text (never as the EOT id): document
//! boundaries come only from the ingest, never from the content.
//!
//! Determinism of training: the `tokenizers` BPE trainer sums word and pair
//! counts (order-free), picks each merge by highest count with ties broken
//! by the pair's ids (which are deterministic: special tokens first, then
//! the 256 byte symbols in code-point order, then merges in the order they
//! are made), and serializes vocab and merges in id/rank order. The output
//! therefore does not depend on thread count or hash seeds; the tests check
//! that two trainings of the same input give byte-identical files.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerBuilder,
};

/// End-of-text token text, shared by the byte tokenizer and trained BPEs.
pub const EOT_TEXT: &str = "<|endoftext|>";
/// Padding token text, shared by the byte tokenizer and trained BPEs.
pub const PAD_TEXT: &str = "<|padding|>";
/// Names tried, in order, to find the end-of-text id of a `tokenizer.json`.
pub const EOT_CANDIDATES: [&str; 4] = ["<|endoftext|>", "</s>", "<eos>", "<|eos|>"];
/// Identity hash of the byte tokenizer (bump if its id layout ever changes).
pub const BYTE_HASH: &str = "byte-v1";

/// Batches with fewer texts than this are encoded on the calling thread.
const PAR_MIN_TEXTS: usize = 2;

/// What the manifest records about a tokenizer; two corpora/ingests are
/// compatible iff equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenizerIdentity {
    /// `"byte"` or `"hf"`.
    pub kind: String,
    /// `"byte"`, or the file stem of the `tokenizer.json`.
    pub name: String,
    /// Vocabulary size including special and added tokens.
    pub vocab_size: u32,
    /// Id separating documents.
    pub eot_id: u32,
    /// `"byte-v1"`, or 16 lowercase hex digits of xxh3-64 of the
    /// `tokenizer.json` bytes.
    pub hash: String,
}

/// Errors of this module. Each names the file involved (and the line for
/// JSONL input), or the tokenizer for encode/decode failures.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid tokenizer.json {origin}: {message}")]
    InvalidJson { origin: String, message: String },
    #[error("tokenizer {origin} has no end-of-text token (tried {tried})")]
    NoEot { origin: String, tried: String },
    #[error("{}: line {line}: {message}", path.display())]
    Jsonl {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("token id {id} is out of range for tokenizer {tokenizer} (vocab size {vocab_size})")]
    InvalidId {
        tokenizer: String,
        id: u32,
        vocab_size: u32,
    },
    #[error("tokenizer {tokenizer} failed to encode: {message}")]
    Encode { tokenizer: String, message: String },
    #[error("tokenizer {tokenizer} failed to decode: {message}")]
    Decode { tokenizer: String, message: String },
    #[error("invalid training config for {}: {message}", out.display())]
    InvalidConfig { out: PathBuf, message: String },
    #[error("no training text in {files}")]
    NoTrainingText { files: String },
    #[error("training BPE for {} failed: {message}", out.display())]
    Train { out: PathBuf, message: String },
}

/// The byte-level tokenizer: ids 0..=255 are bytes, 256 is EOT, 257 padding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// End-of-text id.
    pub const EOT_ID: u32 = 256;
    /// Padding id.
    pub const PAD_ID: u32 = 257;
    /// Vocabulary size (256 bytes + 2 specials).
    pub const VOCAB_SIZE: u32 = 258;

    /// The bytes of `text`, one id each.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    /// Bytes back to text; EOT and padding decode to their token texts,
    /// invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let mut bytes = Vec::with_capacity(ids.len());
        for &id in ids {
            match id {
                0..=255 => bytes.push(id as u8),
                Self::EOT_ID => bytes.extend_from_slice(EOT_TEXT.as_bytes()),
                Self::PAD_ID => bytes.extend_from_slice(PAD_TEXT.as_bytes()),
                _ => {
                    return Err(TokenizerError::InvalidId {
                        tokenizer: "byte".into(),
                        id,
                        vocab_size: Self::VOCAB_SIZE,
                    })
                }
            }
        }
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// A Hugging Face `tokenizer.json` tokenizer, with the exact file bytes it
/// was loaded from.
pub struct HfTokenizer {
    // Boxed: the tokenizers object is large and `Tokenizer::Byte` is empty.
    inner: Box<tokenizers::Tokenizer>,
    json: Vec<u8>,
    name: String,
    hash: String,
    eot_id: u32,
    vocab_size: u32,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("eot_id", &self.eot_id)
            .field("vocab_size", &self.vocab_size)
            .finish_non_exhaustive()
    }
}

impl HfTokenizer {
    /// Parses `bytes`; `name` goes into the identity, `origin` (a path or
    /// the name) into error messages.
    fn parse(bytes: &[u8], name: &str, origin: &str) -> Result<HfTokenizer, TokenizerError> {
        let mut inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TokenizerError::InvalidJson {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        // Literal special-token text inside a document stays text.
        inner.set_encode_special_tokens(true);
        let eot_id = EOT_CANDIDATES
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .ok_or_else(|| TokenizerError::NoEot {
                origin: origin.to_string(),
                tried: EOT_CANDIDATES.join(", "),
            })?;
        // Equal to `get_vocab_size(true)` for any well-formed file; the max
        // id guards against a vocabulary with holes, so ids always fit.
        let vocab = inner.get_vocab(true);
        let max_id = vocab.values().copied().max().unwrap_or(0);
        let vocab_size = (vocab.len() as u64).max(u64::from(max_id) + 1);
        let vocab_size = u32::try_from(vocab_size).map_err(|_| TokenizerError::InvalidJson {
            origin: origin.to_string(),
            message: format!("vocabulary of {vocab_size} tokens does not fit u32 ids"),
        })?;
        Ok(HfTokenizer {
            inner: Box::new(inner),
            json: bytes.to_vec(),
            name: name.to_string(),
            hash: json_hash(bytes),
            eot_id,
            vocab_size,
        })
    }

    /// The underlying `tokenizers` object.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The exact `tokenizer.json` bytes this was loaded from.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode {
                tokenizer: self.name.clone(),
                message: e.to_string(),
            })
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        if let Some(&id) = ids.iter().find(|&&id| self.inner.id_to_token(id).is_none()) {
            return Err(TokenizerError::InvalidId {
                tokenizer: self.name.clone(),
                id,
                vocab_size: self.vocab_size,
            });
        }
        self.inner
            .decode(ids, false)
            .map_err(|e| TokenizerError::Decode {
                tokenizer: self.name.clone(),
                message: e.to_string(),
            })
    }
}

/// 16 lowercase hex digits of xxh3-64 of a `tokenizer.json`'s bytes.
pub fn json_hash(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// A tokenizer of either kind.
#[derive(Debug)]
pub enum Tokenizer {
    Byte(ByteTokenizer),
    HuggingFace(HfTokenizer),
}

impl Tokenizer {
    /// `spec` is `"byte"` or a path to a `tokenizer.json`.
    pub fn from_spec(spec: &str) -> Result<Tokenizer, TokenizerError> {
        if spec == "byte" {
            return Ok(Tokenizer::byte());
        }
        Tokenizer::from_path(Path::new(spec))
    }

    /// Loads a `tokenizer.json`; its name is the file stem.
    pub fn from_path(path: &Path) -> Result<Tokenizer, TokenizerError> {
        let bytes = fs::read(path).map_err(|source| TokenizerError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let origin = path.display().to_string();
        Ok(Tokenizer::HuggingFace(HfTokenizer::parse(
            &bytes, &name, &origin,
        )?))
    }

    /// The byte tokenizer.
    pub fn byte() -> Tokenizer {
        Tokenizer::Byte(ByteTokenizer)
    }

    /// A tokenizer from `tokenizer.json` bytes (e.g. the copy stored beside
    /// a corpus); `name` is its identity name and appears in errors.
    pub fn from_json_bytes(bytes: &[u8], name: &str) -> Result<Tokenizer, TokenizerError> {
        Ok(Tokenizer::HuggingFace(HfTokenizer::parse(
            bytes, name, name,
        )?))
    }

    /// What a manifest records.
    pub fn identity(&self) -> TokenizerIdentity {
        match self {
            Tokenizer::Byte(_) => TokenizerIdentity {
                kind: "byte".into(),
                name: "byte".into(),
                vocab_size: ByteTokenizer::VOCAB_SIZE,
                eot_id: ByteTokenizer::EOT_ID,
                hash: BYTE_HASH.into(),
            },
            Tokenizer::HuggingFace(h) => TokenizerIdentity {
                kind: "hf".into(),
                name: h.name.clone(),
                vocab_size: h.vocab_size,
                eot_id: h.eot_id,
                hash: h.hash.clone(),
            },
        }
    }

    /// Id separating documents.
    pub fn eot_id(&self) -> u32 {
        match self {
            Tokenizer::Byte(_) => ByteTokenizer::EOT_ID,
            Tokenizer::HuggingFace(h) => h.eot_id,
        }
    }

    /// Vocabulary size, special and added tokens included.
    pub fn vocab_size(&self) -> u32 {
        match self {
            Tokenizer::Byte(_) => ByteTokenizer::VOCAB_SIZE,
            Tokenizer::HuggingFace(h) => h.vocab_size,
        }
    }

    /// Ids of `text`; no EOT appended, no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        match self {
            Tokenizer::Byte(b) => Ok(b.encode(text)),
            Tokenizer::HuggingFace(h) => h.encode(text),
        }
    }

    /// [`Tokenizer::encode`] of each text, in parallel on rayon's pool,
    /// results in input order.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        if texts.len() < PAR_MIN_TEXTS {
            return texts.iter().map(|t| self.encode(t)).collect();
        }
        texts.par_iter().map(|t| self.encode(t)).collect()
    }

    /// Text of `ids`: lossless for the byte tokenizer; invalid UTF-8 becomes
    /// U+FFFD; an id outside the vocabulary is an error naming it.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        match self {
            Tokenizer::Byte(b) => b.decode(ids),
            Tokenizer::HuggingFace(h) => h.decode(ids),
        }
    }

    /// The `tokenizer.json` to store beside a corpus (`None` for byte).
    pub fn json_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Tokenizer::Byte(_) => None,
            Tokenizer::HuggingFace(h) => Some(h.json.clone()),
        }
    }
}

/// Settings of [`train_bpe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Target vocabulary size, specials and the 256 byte symbols included
    /// (so at least 258). Smaller if the data has too few distinct pairs.
    pub vocab_size: u32,
    /// JSON field holding each document's text.
    pub text_field: String,
    /// A pair seen fewer times than this is never merged.
    pub min_frequency: u64,
}

impl TrainConfig {
    /// `vocab_size` with text field `"text"` and minimum pair frequency 2.
    pub fn new(vocab_size: u32) -> TrainConfig {
        TrainConfig {
            vocab_size,
            text_field: "text".into(),
            min_frequency: 2,
        }
    }
}

/// What [`train_bpe`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Vocabulary size of the written tokenizer (specials included).
    pub vocab_size: u32,
    /// Documents (non-blank JSONL lines) read.
    pub documents: u64,
    /// UTF-8 bytes of document text read.
    pub bytes: u64,
    /// Wall time of reading, training and writing.
    pub seconds: f64,
}

/// Smallest vocabulary a trained byte-level BPE can have.
pub const MIN_BPE_VOCAB: u32 = 258;

/// Streams the text field of each JSONL line; the first error stops the
/// stream and is kept in `state` for the caller.
struct JsonlTexts<'a> {
    files: std::slice::Iter<'a, PathBuf>,
    current: Option<(&'a Path, BufReader<File>, u64)>,
    field: &'a str,
    state: &'a Mutex<FeedState>,
    line: String,
    done: bool,
}

#[derive(Default)]
struct FeedState {
    documents: u64,
    bytes: u64,
    error: Option<TokenizerError>,
}

impl JsonlTexts<'_> {
    fn fail(&mut self, error: TokenizerError) -> Option<String> {
        self.done = true;
        if let Ok(mut st) = self.state.lock() {
            st.error.get_or_insert(error);
        }
        None
    }
}

impl<'a> Iterator for JsonlTexts<'a> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        while !self.done {
            let Some((path, reader, line_no)) = self.current.as_mut() else {
                let Some(path) = self.files.next() else {
                    self.done = true;
                    return None;
                };
                match File::open(path) {
                    Ok(f) => {
                        self.current = Some((path.as_path(), BufReader::new(f), 0));
                        continue;
                    }
                    Err(source) => {
                        return self.fail(TokenizerError::Read {
                            path: path.clone(),
                            source,
                        })
                    }
                }
            };
            let path: &'a Path = path;
            self.line.clear();
            *line_no += 1;
            let n = *line_no;
            match reader.read_line(&mut self.line) {
                Ok(0) => {
                    self.current = None;
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    return self.fail(TokenizerError::Jsonl {
                        path: path.to_path_buf(),
                        line: n,
                        message: format!("cannot read line: {e}"),
                    })
                }
            }
            // A UTF-8 byte-order mark may open a file.
            let trimmed = self.line.trim().trim_start_matches('\u{feff}');
            if trimmed.is_empty() {
                continue;
            }
            let value: serde_json::Value = match serde_json::from_str(trimmed) {
                Ok(v) => v,
                Err(e) => {
                    let path = path.to_path_buf();
                    return self.fail(TokenizerError::Jsonl {
                        path,
                        line: n,
                        message: format!("not valid JSON: {e}"),
                    });
                }
            };
            let text = match value {
                serde_json::Value::Object(mut map) => match map.remove(self.field) {
                    Some(serde_json::Value::String(s)) => Ok(s),
                    Some(other) => Err(format!(
                        "field \"{}\" is not a string (found {})",
                        self.field,
                        json_kind(&other)
                    )),
                    None => Err(format!("no field \"{}\"", self.field)),
                },
                other => Err(format!(
                    "expected a JSON object, found {}",
                    json_kind(&other)
                )),
            };
            match text {
                Ok(s) => {
                    if let Ok(mut st) = self.state.lock() {
                        st.documents += 1;
                        st.bytes += s.len() as u64;
                    }
                    return Some(s);
                }
                Err(message) => {
                    let path = path.to_path_buf();
                    return self.fail(TokenizerError::Jsonl {
                        path,
                        line: n,
                        message,
                    });
                }
            }
        }
        None
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn list_files(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// fsynced, then renamed over `path` (and the directory fsynced).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TokenizerError> {
    let werr = |source| TokenizerError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(werr)?;
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tokenizer.json".into());
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename durable; not every platform can open a directory.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

/// Trains a byte-level BPE, GPT-NeoX style: ByteLevel pre-tokenizer (GPT-2
/// split regex, `add_prefix_space = false`), ByteLevel post-processor and
/// decoder, no normalizer (so any text round-trips exactly),
/// `<|endoftext|>` = id 0 and `<|padding|>` = id 1 as special tokens, then
/// the 256 byte symbols, then merges. Reads the `text_field` of every line
/// of the JSONL `inputs` (blank lines skipped) and writes `out` atomically.
pub fn train_bpe(
    inputs: &[PathBuf],
    cfg: &TrainConfig,
    out: &Path,
) -> Result<TrainSummary, TokenizerError> {
    let start = Instant::now();
    if cfg.vocab_size < MIN_BPE_VOCAB {
        return Err(TokenizerError::InvalidConfig {
            out: out.to_path_buf(),
            message: format!(
                "vocab_size {} is below {MIN_BPE_VOCAB} (2 special tokens + 256 byte symbols)",
                cfg.vocab_size
            ),
        });
    }
    if inputs.is_empty() {
        return Err(TokenizerError::InvalidConfig {
            out: out.to_path_buf(),
            message: "no input files".into(),
        });
    }
    let train_err = |e: tokenizers::Error| TokenizerError::Train {
        out: out.to_path_buf(),
        message: e.to_string(),
    };

    let byte_level = ByteLevel::new(false, true, true);
    let mut tokenizer = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default())
    .with_normalizer(None)
    .with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(byte_level)))
    .with_post_processor(Some(PostProcessorWrapper::ByteLevel(byte_level)))
    .with_decoder(Some(DecoderWrapper::ByteLevel(byte_level)))
    .build()
    .map_err(train_err)?;

    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(cfg.vocab_size as usize)
        .min_frequency(cfg.min_frequency)
        .special_tokens(vec![
            AddedToken::from(EOT_TEXT, true),
            AddedToken::from(PAD_TEXT, true),
        ])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();

    let state = Mutex::new(FeedState::default());
    let texts = JsonlTexts {
        files: inputs.iter(),
        current: None,
        field: &cfg.text_field,
        state: &state,
        line: String::new(),
        done: false,
    };
    let trained = tokenizer.train(&mut trainer, texts).map(|_| ());
    let state = state.into_inner().unwrap_or_else(|p| p.into_inner());
    // A read error stops the stream early: report it, not what training
    // made of the truncated input.
    if let Some(e) = state.error {
        return Err(e);
    }
    trained.map_err(train_err)?;
    if state.documents == 0 {
        return Err(TokenizerError::NoTrainingText {
            files: list_files(inputs),
        });
    }

    let json = tokenizer.to_string(true).map_err(train_err)?;
    let vocab_size = tokenizer.get_vocab_size(true) as u32;
    write_atomic(out, json.as_bytes())?;
    Ok(TrainSummary {
        vocab_size,
        documents: state.documents,
        bytes: state.bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_specials_decode_to_their_text() {
        let t = Tokenizer::byte();
        let mut ids = t.encode("a").unwrap();
        ids.push(ByteTokenizer::EOT_ID);
        ids.push(ByteTokenizer::PAD_ID);
        assert_eq!(t.decode(&ids).unwrap(), "a<|endoftext|><|padding|>");
    }

    #[test]
    fn byte_decode_rejects_out_of_range_id() {
        let err = Tokenizer::byte().decode(&[65, 258]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("258"), "{msg}");
    }

    #[test]
    fn byte_decode_replaces_invalid_utf8() {
        let s = Tokenizer::byte().decode(&[0x61, 0xff, 0x62]).unwrap();
        assert_eq!(s, "a\u{FFFD}b");
    }

    #[test]
    fn json_hash_is_16_hex() {
        let h = json_hash(b"{}");
        assert_eq!(h.len(), 16);
        assert!(h
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
