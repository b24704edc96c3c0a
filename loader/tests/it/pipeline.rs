//! The pipeline's failure paths: dropping a loader never hangs, whatever
//! its workers are doing, and a worker that panics stops the run with an
//! error naming the step instead of leaving the consumer waiting. Races are
//! made reproducible with injected faults (a pause at the exact point a
//! lost wake-up needs, a panic at a chosen step).

use std::sync::Arc;
use std::time::{Duration, Instant};

use prior_loader::pipeline::FaultInjection;
use prior_loader::{Loader, LoaderError, LoaderOptions, Start};

use crate::contract::{fixture, mix_text, sampler, TWO_PHASES};

/// Runs `f` on its own thread and gives its result, or `None` if it has not
/// finished within `limit` (the thread is then left behind, hung).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// A hook that tells the test each time a worker is about to wait for the
/// consumer, then holds it there (with the cursor lock) for `pause`.
fn signalling_pause(pause: Duration) -> (FaultInjection, crossbeam_channel::Receiver<()>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let faults = FaultInjection {
        before_wait: Some(Arc::new(move || {
            let _ = tx.send(());
            std::thread::sleep(pause);
        })),
        ..Default::default()
    };
    (faults, rx)
}

#[test]
fn a_stop_raised_while_a_worker_is_about_to_wait_is_not_lost() {
    let f = fixture();
    let s = sampler(&f, &mix_text(4, TWO_PHASES));
    let (faults, about_to_wait) = signalling_pause(Duration::from_millis(200));
    let opts = LoaderOptions {
        threads: 1,
        prefetch: 1,
        end_step: Some(50),
        ..Default::default()
    };
    let loader = Loader::with_faults(s, Start::Step(0), &opts, faults).unwrap();
    // The worker has built step 0 and is between its check of the stop
    // flag and its wait: a stop raised now without the lock is missed.
    about_to_wait
        .recv_timeout(Duration::from_secs(10))
        .expect("the worker reaches its wait");
    let dropped = within(Duration::from_secs(5), move || drop(loader));
    assert!(
        dropped.is_some(),
        "dropping the loader hung: the worker missed the stop"
    );
}

#[test]
fn a_loader_dropped_mid_run_with_a_full_prefetch_queue_returns_within_a_second() {
    let f = fixture();
    let s = sampler(&f, &mix_text(4, TWO_PHASES));
    let done = within(Duration::from_secs(120), move || {
        let mut slowest = Duration::ZERO;
        for i in 0..1000u64 {
            let (faults, queue_full) = signalling_pause(Duration::ZERO);
            let opts = LoaderOptions {
                threads: 2,
                prefetch: 3,
                end_step: Some(1000),
                ..Default::default()
            };
            let mut l = Loader::with_faults(s.clone(), Start::Step(i % 40), &opts, faults).unwrap();
            if i % 2 == 0 {
                l.next_batch().unwrap().unwrap();
            }
            // A worker waits only once `prefetch` steps are built ahead.
            queue_full
                .recv_timeout(Duration::from_secs(10))
                .expect("the prefetch queue fills");
            let t0 = Instant::now();
            drop(l);
            slowest = slowest.max(t0.elapsed());
        }
        slowest
    });
    let slowest = done.expect("1,000 drops did not finish: one hung");
    assert!(slowest < Duration::from_secs(1), "a drop took {slowest:?}");
}

#[test]
fn a_worker_panic_reaches_the_consumer_as_an_error_naming_the_step() {
    let f = fixture();
    let s = sampler(&f, &mix_text(4, TWO_PHASES));
    for threads in [1usize, 3] {
        let s = s.clone();
        let result = within(Duration::from_secs(30), move || {
            let faults = FaultInjection {
                panic_at_step: Some(5),
                ..Default::default()
            };
            let opts = LoaderOptions {
                threads,
                prefetch: 4,
                end_step: Some(40),
                ..Default::default()
            };
            let mut l = Loader::with_faults(s, Start::Step(0), &opts, faults).unwrap();
            let mut served = Vec::new();
            let err = loop {
                match l.next_batch() {
                    Ok(Some(b)) => served.push(b.step),
                    Ok(None) => panic!("the loader ran to its end past a panicking worker"),
                    Err(e) => break e,
                }
            };
            let again = l.next_batch().err().map(|e| e.to_string());
            (served, err, again)
        });
        let (served, err, again) = result.expect("the consumer hung after a worker panic");
        assert_eq!(served, (0..5).collect::<Vec<u64>>(), "{threads} threads");
        assert!(
            matches!(err, LoaderError::WorkerPanic { step: Some(5), .. }),
            "{threads} threads: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("building step 5") && msg.contains("injected fault"),
            "{msg}"
        );
        assert!(again.is_some_and(|m| m.contains("already failed")));
    }
}
