//! Shared access to the corpus's shards: lazily opened readers and one
//! frame cache for all loader threads.
//!
//! Opening is lazy so that starting on a corpus of 10,000 shards costs the
//! manifest only. The cache is shared so that a frame is decompressed once
//! however many threads need it (a second thread asking for a frame being
//! decompressed waits for it instead of doing the work again), and bounded
//! in frames, which bounds the loader's memory whatever the corpus size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use prior_data::corpus::ShardEntry;
use prior_data::{Corpus, FrameDecoder, ShardReader};

use crate::error::Result;

/// The shards the mix reads, with lazily opened readers.
pub struct ShardSet {
    corpus: Corpus,
    entries: Vec<ShardEntry>,
    /// Documents of the same category in shards before each one.
    doc_offsets: Vec<u64>,
    readers: Vec<OnceLock<Arc<ShardReader>>>,
}

impl ShardSet {
    pub fn new(corpus: Corpus, entries: Vec<ShardEntry>, doc_offsets: Vec<u64>) -> ShardSet {
        let readers = (0..entries.len()).map(|_| OnceLock::new()).collect();
        ShardSet {
            corpus,
            entries,
            doc_offsets,
            readers,
        }
    }

    /// Category-level number of the first document of shard `shard`.
    pub fn doc_offset(&self, shard: u32) -> u64 {
        self.doc_offsets[shard as usize]
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entry(&self, shard: u32) -> &ShardEntry {
        &self.entries[shard as usize]
    }

    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// Opens (once) and returns shard `shard`, checked against the manifest.
    pub fn reader(&self, shard: u32) -> Result<Arc<ShardReader>> {
        let cell = &self.readers[shard as usize];
        if let Some(r) = cell.get() {
            return Ok(r.clone());
        }
        let r = Arc::new(
            self.corpus
                .open_shard_entry(&self.entries[shard as usize])?,
        );
        Ok(cell.get_or_init(|| r).clone())
    }
}

type FrameKey = (u32, u32);
/// A decoded frame: little-endian tokens as stored (2 or 4 bytes each),
/// widened only when copied into a batch.
pub struct FrameData {
    pub width: prior_data::TokenWidth,
    pub raw: Vec<u8>,
}

impl FrameData {
    /// Tokens in the frame.
    pub fn len(&self) -> usize {
        self.raw.len() / self.width.bytes()
    }

    /// Appends tokens `[start, start + len)` of the frame to `out`; `false`
    /// (and nothing appended) when the range runs past the frame's end.
    #[must_use]
    pub fn copy_tokens<T: crate::token::Token>(
        &self,
        start: usize,
        len: usize,
        out: &mut Vec<T>,
    ) -> bool {
        let w = self.width.bytes();
        match self.raw.get(start * w..(start + len) * w) {
            Some(bytes) => {
                crate::token::extend_le(self.width, bytes, out);
                true
            }
            None => false,
        }
    }
}

type Frame = Arc<FrameData>;

/// Where threads waiting for a frame being decoded get it (or hear that
/// decoding failed).
type LoadWait = Arc<(Mutex<Option<std::result::Result<Frame, String>>>, Condvar)>;

enum Slot {
    Ready { frame: Frame, last_used: u64 },
    Loading(LoadWait),
}

/// Decoded frames, shared by every loader thread, evicting the least
/// recently used beyond `capacity` frames.
pub struct FrameCache {
    shards: Arc<ShardSet>,
    capacity: usize,
    inner: Mutex<(HashMap<FrameKey, Slot>, u64)>,
    decompressed_bytes: AtomicU64,
    frames_decoded: AtomicU64,
}

thread_local! {
    static DECODER: std::cell::RefCell<(FrameDecoder, Vec<u8>)> =
        std::cell::RefCell::new((FrameDecoder::new(), Vec::new()));
    /// The (shard, frame) this thread is reading, for a panic report.
    static READING: std::cell::Cell<Option<FrameKey>> = const { std::cell::Cell::new(None) };
}

/// The (shard, frame) this thread was last reading, if it had not finished:
/// what a worker's panic report names.
pub fn reading_frame() -> Option<(u32, u32)> {
    READING.with(|r| r.get())
}

/// Marks (or clears) the frame this thread is reading.
pub fn set_reading_frame(key: Option<(u32, u32)>) {
    READING.with(|r| r.set(key));
}

/// Frames this thread registered as loading and has not yet published. If
/// the thread unwinds before publishing them, dropping this resolves each
/// one with an error and removes it, so threads waiting for them wake up
/// (and decode it themselves) instead of waiting for ever.
struct Claimed<'a> {
    cache: &'a FrameCache,
    keys: Vec<FrameKey>,
}

impl Claimed<'_> {
    fn published(&mut self, key: FrameKey) {
        self.keys.retain(|k| *k != key);
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let mut guard = self.cache.lock_map();
        for key in self.keys.drain(..) {
            if let Some(Slot::Loading(w)) = guard.0.remove(&key) {
                let (lock, cv) = &*w;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Err("the thread decoding it stopped".into()));
                cv.notify_all();
            }
        }
    }
}

impl FrameCache {
    pub fn new(shards: Arc<ShardSet>, capacity: usize) -> FrameCache {
        FrameCache {
            shards,
            capacity: capacity.max(2),
            inner: Mutex::new((HashMap::new(), 0)),
            decompressed_bytes: AtomicU64::new(0),
            frames_decoded: AtomicU64::new(0),
        }
    }

    pub fn shards(&self) -> &Arc<ShardSet> {
        &self.shards
    }

    /// The map of frames. A thread that panicked holding the lock left it
    /// consistent (every update is a single insert or remove), so a poisoned
    /// lock is used as it is.
    fn lock_map(&self) -> std::sync::MutexGuard<'_, (HashMap<FrameKey, Slot>, u64)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raw (decompressed) bytes produced so far, for amplification figures.
    pub fn decompressed_bytes(&self) -> u64 {
        self.decompressed_bytes.load(Ordering::Relaxed)
    }

    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded.load(Ordering::Relaxed)
    }

    /// Starts decoding, on this thread, those of `keys` that are neither
    /// cached nor being decoded, without waiting for any other. Errors are
    /// left for the step that needs the frame to report.
    pub fn warm(&self, keys: &[FrameKey]) {
        let mine: Vec<FrameKey> = {
            let mut guard = self.lock_map();
            let (map, _) = &mut *guard;
            keys.iter()
                .filter(|k| !map.contains_key(k))
                .copied()
                .collect::<Vec<_>>()
                .into_iter()
                .inspect(|k| {
                    map.insert(
                        *k,
                        Slot::Loading(Arc::new((Mutex::new(None), Condvar::new()))),
                    );
                })
                .collect()
        };
        let mut claimed = Claimed {
            cache: self,
            keys: mine.clone(),
        };
        for key in mine {
            let _ = self.finish_decode(key);
            claimed.published(key);
        }
    }

    /// Decodes a frame this thread registered as loading, publishes it and
    /// wakes its waiters.
    fn finish_decode(&self, key: FrameKey) -> Result<Frame> {
        let result = self.decode(key.0, key.1);
        let mut guard = self.lock_map();
        let (map, clock) = &mut *guard;
        let slot = map.remove(&key);
        if let Ok(f) = &result {
            map.insert(
                key,
                Slot::Ready {
                    frame: f.clone(),
                    last_used: *clock,
                },
            );
            self.evict(map);
        }
        drop(guard);
        if let Some(Slot::Loading(w)) = slot {
            let (lock, cv) = &*w;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(
                result
                    .as_ref()
                    .map(|f| f.clone())
                    .map_err(|e| e.to_string()),
            );
            cv.notify_all();
        }
        result
    }

    /// The frames `keys`, in order. Frames no thread is decoding are claimed
    /// and decoded here first; only then does this thread wait for frames
    /// other threads are decoding, so threads working on neighbouring steps
    /// decode different frames side by side instead of queueing on one.
    pub fn get_many(&self, keys: &[FrameKey]) -> Result<Vec<Frame>> {
        let mut out: Vec<Option<Frame>> = vec![None; keys.len()];
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        {
            let mut guard = self.lock_map();
            let (map, clock) = &mut *guard;
            for (i, key) in keys.iter().enumerate() {
                *clock += 1;
                let now = *clock;
                match map.get_mut(key) {
                    Some(Slot::Ready { frame, last_used }) => {
                        *last_used = now;
                        out[i] = Some(frame.clone());
                    }
                    Some(Slot::Loading(w)) => theirs.push((i, w.clone())),
                    None => {
                        map.insert(
                            *key,
                            Slot::Loading(Arc::new((Mutex::new(None), Condvar::new()))),
                        );
                        mine.push(i);
                    }
                }
            }
        }
        let mut first_err = None;
        let mut claimed = Claimed {
            cache: self,
            keys: mine.iter().map(|&i| keys[i]).collect(),
        };
        for i in mine {
            let (shard, frame) = keys[i];
            let result = self.decode(shard, frame);
            claimed.published(keys[i]);
            let mut guard = self.lock_map();
            let (map, clock) = &mut *guard;
            let slot = map.remove(&keys[i]);
            if let Ok(f) = &result {
                map.insert(
                    keys[i],
                    Slot::Ready {
                        frame: f.clone(),
                        last_used: *clock,
                    },
                );
                self.evict(map);
            }
            drop(guard);
            if let Some(Slot::Loading(w)) = slot {
                let (lock, cv) = &*w;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(
                    result
                        .as_ref()
                        .map(|f| f.clone())
                        .map_err(|e| e.to_string()),
                );
                cv.notify_all();
            }
            match result {
                Ok(f) => out[i] = Some(f),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        for (i, w) in theirs {
            let (lock, cv) = &*w;
            let mut done = lock.lock().unwrap_or_else(|p| p.into_inner());
            while done.is_none() {
                done = cv.wait(done).unwrap_or_else(|p| p.into_inner());
            }
            out[i] = Some(match done.as_ref().expect("set above") {
                Ok(f) => f.clone(),
                // The decoding thread met an error; decode again here so
                // this caller returns the typed error too.
                Err(_) => {
                    drop(done);
                    self.decode(keys[i].0, keys[i].1)?
                }
            });
        }
        Ok(out
            .into_iter()
            .map(|f| f.expect("every frame resolved"))
            .collect())
    }

    /// Decodes one frame; while it runs, the thread's panic report names it.
    fn decode(&self, shard: u32, frame: u32) -> Result<Frame> {
        set_reading_frame(Some((shard, frame)));
        let result = self.decode_unmarked(shard, frame);
        set_reading_frame(None);
        result
    }

    fn decode_unmarked(&self, shard: u32, frame: u32) -> Result<Frame> {
        let reader = self.shards.reader(shard)?;
        let mut raw = Vec::new();
        DECODER.with(|d| {
            let (dec, scratch) = &mut *d.borrow_mut();
            reader.read_frame_raw_unmapped(frame as usize, dec, scratch, &mut raw)
        })?;
        self.decompressed_bytes
            .fetch_add(raw.len() as u64, Ordering::Relaxed);
        self.frames_decoded.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(FrameData {
            width: reader.width(),
            raw,
        }))
    }

    fn evict(&self, map: &mut HashMap<FrameKey, Slot>) {
        while map.len() > self.capacity {
            let oldest = map
                .iter()
                .filter_map(|(k, s)| match s {
                    Slot::Ready { last_used, .. } => Some((*last_used, *k)),
                    Slot::Loading(_) => None,
                })
                .min();
            match oldest {
                Some((_, k)) => {
                    map.remove(&k);
                }
                None => break,
            }
        }
    }
}
