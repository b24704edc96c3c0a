//! The threaded prefetch pipeline and the resumable loader state.
//!
//! Worker threads claim steps in order from a shared cursor (the schedule
//! recurrence advances under one short lock), build each batch with the
//! stateless [`Sampler`], and send it on a bounded channel; the consumer
//! puts batches back in step order. Workers never run more than `prefetch`
//! steps ahead of the consumer, which bounds memory; the consumer waits
//! only when the workers fall behind. A data fault in any worker stops the
//! loader with that error (naming shard and frame) at the consumer's next
//! call, never a hang.
//!
//! Every wait has a way out. Workers wait on the cursor's condvar only
//! under the cursor lock, and the stop flag is raised under that same lock
//! before the notify, so no worker can check the flag, miss the notify and
//! sleep for ever. Workers blocked sending to a full channel are freed by
//! closing it (the consumer drops its receiver). A worker that panics
//! catches the panic and sends it to the consumer as an error naming the
//! step, and the shard and frame it was reading when known; the senders of
//! exited workers close the channel, so the consumer never waits on a
//! channel nobody can fill.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{LoaderError, Result};
use crate::sampler::{Batch, Sampler};
use crate::schedule::AllocState;
use crate::token::Token;

pub const STATE_VERSION: u32 = 1;

/// Everything a resumed run needs: O(categories) in size, whatever the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderState {
    pub version: u32,
    /// The mix key (corpus fingerprint + mix + seed) this state belongs to.
    pub mix_key: String,
    pub rank: u32,
    pub world: u32,
    /// Schedule state at the next step to serve.
    pub alloc: AllocState,
    /// Running hash over every batch served, in order.
    pub running_hash: String,
    pub batches_served: u64,
}

impl LoaderState {
    /// This state for rank `rank` of `world`: where a run saved at one world
    /// size resumes at another. The schedule state is the global batch's,
    /// the same for every rank and world, so the data order goes on
    /// unchanged; the running hash goes on from the saved rank's chain
    /// (each rank's chain covers the slices it was served).
    pub fn resharded(mut self, rank: u32, world: u32) -> Self {
        self.rank = rank;
        self.world = world;
        self
    }
}

/// Folds one batch hash into a running hash.
pub fn chain_hash(running: u64, batch_hash: u64) -> u64 {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&running.to_le_bytes());
    b[8..].copy_from_slice(&batch_hash.to_le_bytes());
    xxh3_64(&b)
}

#[derive(Debug, Clone)]
pub struct LoaderOptions {
    pub threads: usize,
    /// Batches built ahead of the consumer.
    pub prefetch: usize,
    pub rank: u32,
    pub world: u32,
    /// Stop after this step (exclusive); `None` runs to the mix's end.
    pub end_step: Option<u64>,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            threads: 2,
            prefetch: 8,
            rank: 0,
            world: 1,
            end_step: None,
        }
    }
}

/// Where a loader starts.
pub enum Start {
    Step(u64),
    Resume(LoaderState),
}

/// Faults injected into the workers, for tests of the pipeline's failure
/// paths (races need a pause at an exact point to be reproducible).
/// Not part of the stable API.
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct FaultInjection {
    /// A worker panics instead of building this step.
    pub panic_at_step: Option<u64>,
    /// Called by a worker, holding the cursor lock, right before it waits
    /// for the consumer: the window a stop raised without the lock is lost in.
    pub before_wait: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// Steps ahead of the one being built whose new frames a worker decodes
/// first, so that threads decode side by side instead of waiting on the
/// frame the next step needs.
const DECODE_AHEAD: u64 = 4;

struct Cursor {
    alloc: AllocState,
    /// Schedule state `DECODE_AHEAD` steps past `alloc` (or at the end).
    ahead: AllocState,
    /// The consumer has taken every step below this.
    consumed: u64,
}

struct Shared {
    sampler: Arc<Sampler>,
    cursor: Mutex<Cursor>,
    wake: Condvar,
    stop: AtomicBool,
    prefetch: u64,
    end: u64,
    slice: (usize, usize),
    produce_us: Mutex<Histogram<u64>>,
    faults: FaultInjection,
}

impl Shared {
    /// The cursor, even if a panicking worker poisoned its lock: its fields
    /// are plain numbers that a panic cannot leave half-updated in a way the
    /// stop path cares about.
    fn cursor(&self) -> MutexGuard<'_, Cursor> {
        self.cursor.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A batch, or the error that stops the loader (it names its step).
type Msg<T> = std::result::Result<Batch<T>, LoaderError>;

/// Batches in step order from worker threads, with tokens in `T` (see
/// [`Token`]; u32 unless asked).
pub struct Loader<T: Token = u32> {
    shared: Arc<Shared>,
    rx: Receiver<Msg<T>>,
    workers: Vec<JoinHandle<()>>,
    pending: BTreeMap<u64, Batch<T>>,
    next: u64,
    state: LoaderState,
    running: u64,
    wait_us: Histogram<u64>,
    delivered_tokens: u64,
    /// The earliest failure a worker reported, held until the consumer
    /// reaches its step.
    fault: Option<LoaderError>,
    failed: bool,
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is valid")
}

impl Loader {
    pub fn new(sampler: Arc<Sampler>, start: Start, opts: &LoaderOptions) -> Result<Loader> {
        Self::with_faults(sampler, start, opts, FaultInjection::default())
    }

    /// [`Loader::new`] with faults injected into its workers (tests only).
    #[doc(hidden)]
    pub fn with_faults(
        sampler: Arc<Sampler>,
        start: Start,
        opts: &LoaderOptions,
        faults: FaultInjection,
    ) -> Result<Loader> {
        Self::spawn(sampler, start, opts, faults)
    }
}

impl<T: Token> Loader<T> {
    /// [`Loader::new`] with the tokens in `T`, filled in that width (an
    /// error if the vocabulary does not fit).
    pub fn typed(sampler: Arc<Sampler>, start: Start, opts: &LoaderOptions) -> Result<Loader<T>> {
        Self::spawn(sampler, start, opts, FaultInjection::default())
    }

    fn spawn(
        sampler: Arc<Sampler>,
        start: Start,
        opts: &LoaderOptions,
        faults: FaultInjection,
    ) -> Result<Loader<T>> {
        sampler.check_width::<T>()?;
        let slice = sampler.rank_slice(opts.rank, opts.world)?;
        let mix_key = format!("{:016x}", sampler.spec().key);
        let (alloc, running, served) = match start {
            Start::Step(s) => (sampler.schedule().state_at(s), 0u64, 0u64),
            Start::Resume(st) => {
                if st.version != STATE_VERSION {
                    return Err(LoaderError::State(format!(
                        "version {} (this build reads {STATE_VERSION})",
                        st.version
                    )));
                }
                if st.mix_key != mix_key {
                    return Err(LoaderError::State(format!(
                        "saved for mix key {}, but this mix/corpus/seed has key {mix_key}: the data would differ",
                        st.mix_key
                    )));
                }
                if (st.rank, st.world) != (opts.rank, opts.world) {
                    return Err(LoaderError::State(format!(
                        "saved for rank {} of {}, resumed as rank {} of {}",
                        st.rank, st.world, opts.rank, opts.world
                    )));
                }
                if st.alloc.consumed.len() != sampler.spec().categories.len() {
                    return Err(LoaderError::State(
                        "category count differs from the mix".into(),
                    ));
                }
                let running = u64::from_str_radix(&st.running_hash, 16).map_err(|_| {
                    LoaderError::State(format!("running_hash {:?} is not hex", st.running_hash))
                })?;
                (st.alloc, running, st.batches_served)
            }
        };
        let next = alloc.step;
        let end = opts
            .end_step
            .or(sampler.spec().total_steps())
            .unwrap_or(u64::MAX);
        let state = LoaderState {
            version: STATE_VERSION,
            mix_key,
            rank: opts.rank,
            world: opts.world,
            alloc: alloc.clone(),
            running_hash: format!("{running:016x}"),
            batches_served: served,
        };
        let prefetch = opts.prefetch.max(1) as u64;
        let mut ahead = alloc.clone();
        while ahead.step < end && ahead.step < next + DECODE_AHEAD {
            sampler.schedule().advance(&mut ahead);
        }
        let shared = Arc::new(Shared {
            sampler,
            cursor: Mutex::new(Cursor {
                alloc,
                ahead,
                consumed: next,
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            prefetch,
            end,
            slice,
            produce_us: Mutex::new(histogram()),
            faults,
        });
        let (tx, rx) = bounded::<Msg<T>>(prefetch as usize + opts.threads.max(1));
        let mut workers = Vec::with_capacity(opts.threads.max(1));
        for i in 0..opts.threads.max(1) {
            let (for_worker, tx_for_worker) = (shared.clone(), tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("prior-loader-{i}"))
                .spawn(move || worker(for_worker, tx_for_worker));
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    drop(tx);
                    stop_workers(&shared, rx, &mut workers);
                    return Err(LoaderError::Usage(format!(
                        "cannot start loader thread {i}: {e}"
                    )));
                }
            }
        }
        drop(tx);
        Ok(Loader {
            shared,
            rx,
            workers,
            pending: BTreeMap::new(),
            next,
            state,
            running,
            wait_us: histogram(),
            delivered_tokens: 0,
            fault: None,
            failed: false,
        })
    }

    /// The next batch in step order; `None` after the last step.
    pub fn next_batch(&mut self) -> Result<Option<Batch<T>>> {
        if self.failed {
            return Err(LoaderError::Usage("the loader already failed".into()));
        }
        if self.next >= self.shared.end {
            return Ok(None);
        }
        let t0 = Instant::now();
        let batch = loop {
            if let Some(b) = self.pending.remove(&self.next) {
                break b;
            }
            // A failure is reported at its own step: the steps before it
            // were claimed earlier, by workers that still deliver them.
            if let Some(e) = self
                .fault
                .take_if(|e| e.failed_step().is_none_or(|s| s <= self.next))
            {
                return Err(self.fail(e));
            }
            // Every worker holds a sender and exits on stop, error or end,
            // so this wait ends with a batch, an error or a closed channel.
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.pending.insert(b.step, b);
                }
                Ok(Err(e)) => {
                    let earlier = match (&self.fault, e.failed_step()) {
                        (None, _) => true,
                        (Some(f), Some(s)) => f.failed_step().is_some_and(|fs| s < fs),
                        (Some(_), None) => false,
                    };
                    if earlier {
                        self.fault = Some(e);
                    }
                }
                Err(_) => {
                    let e = self.fault.take().unwrap_or_else(|| {
                        LoaderError::Usage(format!(
                            "loader threads exited before step {}",
                            self.next
                        ))
                    });
                    return Err(self.fail(e));
                }
            }
        };
        let _ = self.wait_us.record(t0.elapsed().as_micros() as u64);
        self.next += 1;
        {
            let mut c = self.shared.cursor();
            c.consumed = self.next;
            self.shared.wake.notify_all();
        }
        self.running = chain_hash(self.running, batch.hash);
        self.state.alloc = batch.state_after.clone();
        self.state.running_hash = format!("{:016x}", self.running);
        self.state.batches_served += 1;
        self.delivered_tokens += batch.tokens.len() as u64;
        Ok(Some(batch))
    }

    /// State to resume from after the last batch returned.
    pub fn state(&self) -> &LoaderState {
        &self.state
    }

    pub fn running_hash(&self) -> u64 {
        self.running
    }

    pub fn sampler(&self) -> &Arc<Sampler> {
        &self.shared.sampler
    }

    /// Consumer wait per batch, in microseconds.
    pub fn wait_histogram(&self) -> &Histogram<u64> {
        &self.wait_us
    }

    /// Worker time to build one batch, in microseconds.
    pub fn produce_histogram(&self) -> Histogram<u64> {
        self.shared
            .produce_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn delivered_tokens(&self) -> u64 {
        self.delivered_tokens
    }

    fn fail(&mut self, e: LoaderError) -> LoaderError {
        self.failed = true;
        self.shutdown();
        e
    }

    fn shutdown(&mut self) {
        let rx = std::mem::replace(&mut self.rx, crossbeam_channel::never());
        stop_workers(&self.shared, rx, &mut self.workers);
    }
}

impl<T: Token> Drop for Loader<T> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Stops the workers and joins them. The flag is raised and the condvar
/// notified under the cursor lock, which a worker holds from its check of
/// the flag until it sleeps, so the notify cannot fall between the two.
/// Dropping the receiver fails any send a worker is blocked in.
fn stop_workers<T>(shared: &Shared, rx: Receiver<Msg<T>>, workers: &mut Vec<JoinHandle<()>>) {
    {
        let _cursor = shared.cursor();
        shared.stop.store(true, Ordering::SeqCst);
        shared.wake.notify_all();
    }
    drop(rx);
    for w in workers.drain(..) {
        // A worker catches its own panics (see `worker`), so join only
        // fails if reporting one panicked too; nothing is left to tell.
        let _ = w.join();
    }
}

thread_local! {
    /// The step this worker thread is building, for its panic report.
    static BUILDING: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// A worker thread: runs [`work`], and turns a panic in it into an error
/// the consumer receives, so that a bug in one batch stops the run with a
/// message instead of leaving the consumer waiting for that step.
fn worker<T: Token>(shared: Arc<Shared>, tx: Sender<Msg<T>>) {
    let result = catch_unwind(AssertUnwindSafe(|| work(&shared, &tx)));
    if let Err(payload) = result {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let reading = crate::cache::reading_frame().map(|(shard, frame)| {
            let file = &shared.sampler.shards().entry(shard).file;
            format!(
                "shard {} frame {frame}",
                shared.sampler.shards().corpus().dir().join(file).display()
            )
        });
        let err = LoaderError::WorkerPanic {
            thread: std::thread::current()
                .name()
                .unwrap_or("prior-loader")
                .to_string(),
            step: BUILDING.with(|b| b.get()),
            reading,
            message,
        };
        // If the consumer has gone, nobody is left to tell.
        let _ = tx.send(Err(err));
    }
}

fn work<T: Token>(shared: &Shared, tx: &Sender<Msg<T>>) {
    loop {
        let (plan, after, ahead) = {
            let mut c = shared.cursor();
            loop {
                if shared.stop.load(Ordering::SeqCst) || c.alloc.step >= shared.end {
                    return;
                }
                if c.alloc.step < c.consumed + shared.prefetch {
                    break;
                }
                if let Some(hook) = &shared.faults.before_wait {
                    hook();
                }
                c = shared.wake.wait(c).unwrap_or_else(|p| p.into_inner());
            }
            let plan = shared.sampler.schedule().plan(&mut c.alloc);
            let ahead =
                (c.ahead.step < shared.end).then(|| shared.sampler.schedule().plan(&mut c.ahead));
            (plan, c.alloc.clone(), ahead)
        };
        let step = plan.step;
        BUILDING.with(|b| b.set(Some(step)));
        if let Some(ahead) = &ahead {
            shared.sampler.warm(ahead, shared.slice);
        }
        if shared.faults.panic_at_step == Some(step) {
            panic!("injected fault at step {step}");
        }
        let t0 = Instant::now();
        let msg = shared
            .sampler
            .build_as::<T>(&plan, shared.slice, after)
            .map_err(|e| LoaderError::Stopped {
                step,
                source: Box::new(e),
            });
        if msg.is_ok() {
            let _ = shared
                .produce_us
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(t0.elapsed().as_micros() as u64);
        }
        BUILDING.with(|b| b.set(None));
        let failed = msg.is_err();
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}
