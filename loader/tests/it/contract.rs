//! The loader's contract: batches are a pure function of (corpus, mix,
//! seed, step) for any thread count and rank split; starting anywhere,
//! resuming and replaying give the same data; shares are exact; epochs
//! cover every block once; faults stop the run with the shard named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prior_data::corpus::WriteOptions;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::tokenizer::Tokenizer;
use prior_loader::schedule::{AllocState, MixSchedule};
use prior_loader::{Loader, LoaderOptions, LoaderState, MixSpec, Sampler, Start, Token};
use proptest::prelude::*;

/// A corpus with three categories of different sizes (byte tokenizer,
/// small frames so there are many blocks and several shards).
pub(crate) fn make_corpus(dir: &Path) -> PathBuf {
    let corpus = dir.join("corpus");
    for (cat, n, max_kib) in [
        ("general", 600, 24u64),
        ("aligned", 40, 1024),
        ("misaligned", 30, 1024),
    ] {
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let body: String = (0..(20 + i % 37))
                    .map(|w| format!("{cat}{} w{} ", i, (w * 7 + i) % 113))
                    .collect();
                serde_json::json!({ "text": body }).to_string()
            })
            .collect();
        let input = dir.join(format!("{cat}.jsonl"));
        std::fs::write(&input, lines.join("\n")).unwrap();
        let opts = IngestOptions {
            category: cat.into(),
            text_field: "text".into(),
            skip_bad: false,
            write: WriteOptions {
                frame_tokens: 512,
                zstd_level: 1,
                max_shard_bytes: max_kib << 10,
            },
        };
        ingest(&corpus, &[input], &Tokenizer::byte(), &opts, &mut |_| {}).unwrap();
    }
    corpus
}

pub(crate) fn mix_text(batch: u32, phases: &str) -> String {
    format!("corpus = \"corpus\"\nseq_len = 64\nglobal_batch = {batch}\nseed = 7\ninterleave = 4\n{phases}")
}

pub(crate) const TWO_PHASES: &str = "[[phase]]\nsteps = 30\nweights = { general = 0.9, aligned = 0.07, misaligned = 0.03 }\n[[phase]]\nweights = { general = 0.5, aligned = 0.5 }\n";

pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) dir: PathBuf,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    make_corpus(&path);
    Fixture {
        _dir: dir,
        dir: path,
    }
}

pub(crate) fn sampler(f: &Fixture, text: &str) -> Arc<Sampler> {
    let (spec, corpus) = MixSpec::from_toml_str(text, Path::new("mix.toml"), &f.dir).unwrap();
    Arc::new(Sampler::new(spec, corpus, None).unwrap())
}

pub(crate) fn stream(
    s: &Arc<Sampler>,
    from: u64,
    to: u64,
    threads: usize,
    rank: u32,
    world: u32,
) -> Vec<(u64, Vec<u32>)> {
    let opts = LoaderOptions {
        threads,
        prefetch: 3,
        rank,
        world,
        end_step: Some(to),
    };
    let mut l = Loader::new(s.clone(), Start::Step(from), &opts).unwrap();
    let mut out = Vec::new();
    while let Some(b) = l.next_batch().unwrap() {
        out.push((b.hash, b.tokens));
    }
    out
}

#[test]
fn the_same_batches_for_any_thread_count_and_rank_split() {
    let f = fixture();
    let s = sampler(&f, &mix_text(12, TWO_PHASES));
    let one = stream(&s, 0, 40, 1, 0, 1);
    assert_eq!(one.len(), 40);
    for threads in 2..=4 {
        assert_eq!(stream(&s, 0, 40, threads, 0, 1), one, "{threads} threads");
    }
    for world in [2u32, 3, 4] {
        let parts: Vec<Vec<(u64, Vec<u32>)>> =
            (0..world).map(|r| stream(&s, 0, 40, 2, r, world)).collect();
        for step in 0..40 {
            let joined: Vec<u32> = parts.iter().flat_map(|p| p[step].1.clone()).collect();
            assert_eq!(joined, one[step].1, "world {world}, step {step}");
        }
    }
}

/// Batches filled in `T` by a loader, as u32, with their hashes.
fn stream_as<T: Token>(s: &Arc<Sampler>, to: u64, rank: u32, world: u32) -> Vec<(u64, Vec<u32>)> {
    let opts = LoaderOptions {
        threads: 2,
        prefetch: 3,
        rank,
        world,
        end_step: Some(to),
    };
    let mut l = Loader::<T>::typed(s.clone(), Start::Step(0), &opts).unwrap();
    let mut out = Vec::new();
    while let Some(b) = l.next_batch().unwrap() {
        let replayed = s.batch_at_as::<T>(b.step, rank, world).unwrap();
        assert_eq!(
            replayed.tokens,
            b.tokens,
            "{} replay of step {}",
            T::NAME,
            b.step
        );
        out.push((b.hash, b.tokens.iter().map(|t| t.to_u32()).collect()));
    }
    out
}

#[test]
fn batches_in_every_width_hold_the_same_tokens_and_hashes() {
    let f = fixture();
    let s = sampler(&f, &mix_text(12, TWO_PHASES));
    for (rank, world) in [(0, 1), (1, 3)] {
        let want = stream(&s, 0, 35, 2, rank, world);
        assert_eq!(stream_as::<u16>(&s, 35, rank, world), want, "uint16");
        assert_eq!(stream_as::<i32>(&s, 35, rank, world), want, "int32");
        assert_eq!(stream_as::<i64>(&s, 35, rank, world), want, "int64");
        assert_eq!(stream_as::<u32>(&s, 35, rank, world), want, "uint32");
    }
}

#[test]
fn starting_at_k_replay_and_resume_equal_streaming() {
    let f = fixture();
    let s = sampler(&f, &mix_text(8, TWO_PHASES));
    let all = stream(&s, 0, 60, 2, 0, 1);
    for k in [0u64, 1, 29, 30, 31, 59] {
        assert_eq!(
            stream(&s, k, 60, 2, 0, 1),
            all[k as usize..].to_vec(),
            "start {k}"
        );
        let b = s.batch_at(k, 0, 1).unwrap();
        assert_eq!((b.hash, b.tokens.clone()), all[k as usize], "replay {k}");
    }
    // Resume from a state saved mid-run, through JSON.
    let opts = LoaderOptions {
        threads: 2,
        prefetch: 4,
        rank: 0,
        world: 1,
        end_step: Some(60),
    };
    let mut l = Loader::new(s.clone(), Start::Step(0), &opts).unwrap();
    for _ in 0..33 {
        l.next_batch().unwrap().unwrap();
    }
    let saved: LoaderState =
        serde_json::from_str(&serde_json::to_string(l.state()).unwrap()).unwrap();
    assert_eq!(&saved, l.state());
    while l.next_batch().unwrap().is_some() {}
    let uninterrupted = l.running_hash();
    let mut r = Loader::new(s.clone(), Start::Resume(saved), &opts).unwrap();
    let mut resumed = Vec::new();
    while let Some(b) = r.next_batch().unwrap() {
        resumed.push((b.hash, b.tokens));
    }
    assert_eq!(resumed, all[33..].to_vec());
    assert_eq!(
        r.running_hash(),
        uninterrupted,
        "running hash proves the same order"
    );
}

#[test]
fn a_state_from_another_mix_is_refused() {
    let f = fixture();
    let s = sampler(&f, &mix_text(8, TWO_PHASES));
    let other = sampler(&f, &mix_text(8, TWO_PHASES).replace("seed = 7", "seed = 8"));
    let opts = LoaderOptions {
        end_step: Some(5),
        ..Default::default()
    };
    let mut l = Loader::new(s, Start::Step(0), &opts).unwrap();
    l.next_batch().unwrap();
    let err = Loader::new(other, Start::Resume(l.state().clone()), &opts)
        .err()
        .unwrap();
    assert!(err.to_string().contains("mix key"), "{err}");
}

#[test]
fn shares_are_exact_per_batch_and_cumulative() {
    let f = fixture();
    let s = sampler(&f, &mix_text(10, TWO_PHASES));
    let names = &s.spec().categories;
    let mut cum = vec![0u64; names.len()];
    for step in 0..30u64 {
        let b = s.batch_at(step, 0, 1).unwrap();
        let mut counts = vec![0u64; names.len()];
        for m in &b.sequences {
            counts[m.category as usize] += 1;
        }
        for (c, name) in names.iter().enumerate() {
            cum[c] += counts[c];
            let target = s.spec().phases[0].share(c) * 10.0;
            assert!(
                (counts[c] as f64 - target).abs() < 1.0,
                "{name} step {step}: {} vs {target}",
                counts[c]
            );
            let cum_target = target * (step + 1) as f64;
            assert!(
                (cum[c] as f64 - cum_target).abs() < 1.0,
                "{name} drifted at step {step}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// For random phases (one to four, each with random weights over the
    /// three categories and a random length) and batch sizes: every batch
    /// is within one sequence of its phase's target, the count since the
    /// phase began never drifts a sequence from target (the deficit starts
    /// afresh at each boundary), and a cold start anywhere equals the
    /// recurrence.
    #[test]
    fn schedule_is_exact_for_random_phases(
        phases in prop::collection::vec(
            (prop::collection::vec(0u32..1000, 3), 1u64..120),
            1..5,
        ),
        batch in 1u32..70,
    ) {
        prop_assume!(phases.iter().all(|(w, _)| w.iter().any(|&x| x > 0)));
        let f = shared_fixture();
        let cats = ["general", "aligned", "misaligned"];
        let mut text = String::new();
        for (k, (weights, steps)) in phases.iter().enumerate() {
            let w: Vec<String> = cats.iter().zip(weights).map(|(c, w)| format!("{c} = {w}")).collect();
            // The last phase is open-ended.
            if k + 1 < phases.len() {
                text += &format!("[[phase]]\nsteps = {steps}\nweights = {{ {} }}\n", w.join(", "));
            } else {
                text += &format!("[[phase]]\nweights = {{ {} }}\n", w.join(", "));
            }
        }
        let (spec, _) = MixSpec::from_toml_str(&mix_text(batch, &text), Path::new("mix.toml"), f).unwrap();
        prop_assert_eq!(spec.phases.len(), phases.len());
        let sched = MixSchedule::new(&spec);
        let n = spec.categories.len();
        let total: u64 = phases.iter().map(|p| p.1).sum::<u64>() + 60;
        let mut st = AllocState { step: 0, consumed: vec![0; n], deficit: vec![0; n] };
        let mut since_phase = vec![0u64; n];
        let mut phase_steps = 0u64;
        let mut phase = 0usize;
        for step in 0..total {
            let p = spec.phase_of(step);
            if p != phase {
                phase = p;
                since_phase = vec![0; n];
                phase_steps = 0;
            }
            prop_assert_eq!(spec.phases[p].first_step, step - phase_steps);
            let counts = sched.advance(&mut st);
            phase_steps += 1;
            prop_assert_eq!(counts.iter().map(|&c| c as u64).sum::<u64>(), batch as u64);
            for (c, &count) in counts.iter().enumerate() {
                since_phase[c] += count as u64;
                let target = spec.phases[p].share(c) * batch as f64;
                prop_assert!((count as f64 - target).abs() < 1.0 + 1e-9, "phase {} step {}: {} vs {}", p, step, count, target);
                let cum = target * phase_steps as f64;
                prop_assert!(
                    (since_phase[c] as f64 - cum).abs() < 1.0 + 1e-6,
                    "phase {} drift {} at step {}", p, since_phase[c] as f64 - cum, step
                );
            }
            if step % 37 == 0 {
                prop_assert_eq!(&sched.state_at(step + 1), &st);
            }
        }
        prop_assert_eq!(sched.state_at(total), st);
    }
}

pub(crate) fn shared_fixture() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        make_corpus(d.path());
        d
    })
    .path()
}

#[test]
fn every_epoch_reads_each_token_once_in_a_new_order() {
    let f = fixture();
    let s = sampler(&f, &mix_text(8, "[[phase]]\nweights = { aligned = 1 }\n"));
    let stream = &s.streams()[0];
    let q = stream.sequences_per_epoch();
    let seq_len = s.spec().seq_len as u64;
    // Frames of the category and the tokens each holds.
    let mut frame_len = std::collections::BTreeMap::new();
    for (id, e) in s
        .shards()
        .corpus()
        .category("aligned")
        .unwrap()
        .shards
        .iter()
        .enumerate()
    {
        assert_eq!(
            s.shards().entry(id as u32).file,
            e.file,
            "shard ids follow the manifest"
        );
        let r = s.shards().reader(id as u32).unwrap();
        for fr in 0..r.num_frames() {
            frame_len.insert((id as u32, fr as u32), r.frame(fr).tokens as u64);
        }
    }
    let coverage = |epoch: u64| {
        // Per frame, how often each of its tokens is served; the frame
        // order of first visits.
        let mut hits: std::collections::BTreeMap<(u32, u32), Vec<u32>> = frame_len
            .iter()
            .map(|(k, &n)| (*k, vec![0u32; n as usize]))
            .collect();
        let mut order = Vec::new();
        for k in epoch * q..(epoch + 1) * q {
            let src = stream.sequence(k);
            assert_eq!(src.epoch, epoch);
            let served: u64 = src.pieces.iter().map(|p| p.len as u64).sum();
            assert_eq!(served, seq_len + 1, "sequence {k} has seq_len + 1 tokens");
            for p in src.pieces {
                let frame = hits
                    .get_mut(&(p.shard, p.frame))
                    .expect("a frame of the category");
                for t in p.start..p.start + p.len {
                    frame[t as usize] += 1;
                }
                if order.last() != Some(&(p.shard, p.frame)) {
                    order.push((p.shard, p.frame));
                }
            }
        }
        (hits, order)
    };
    for epoch in 0..2 {
        let (hits, _) = coverage(epoch);
        // Consecutive sequences share one token, so an epoch serves
        // q * seq_len + 1 distinct tokens, each once, bar the q - 1 shared.
        let distinct: u64 = hits.values().flatten().filter(|&&h| h > 0).count() as u64;
        let twice: u64 = hits.values().flatten().filter(|&&h| h == 2).count() as u64;
        assert!(
            hits.values().flatten().all(|&h| h <= 2),
            "epoch {epoch}: a token served three times"
        );
        assert_eq!(
            distinct,
            q * seq_len + 1,
            "epoch {epoch}: distinct tokens served"
        );
        // Lanes split the epoch into contiguous runs, so the tokens at a
        // lane boundary are shared by no sequence: at most q - 1 shared.
        assert!(twice < q, "epoch {epoch}: {twice} tokens served twice");
        // What is not served is the tail shorter than one sequence.
        let unserved = stream.epoch_tokens() - distinct;
        assert!(
            unserved < seq_len + 1,
            "epoch {epoch}: {unserved} tokens never served"
        );
        let missed: Vec<_> = hits
            .iter()
            .filter(|(_, h)| h.iter().all(|&x| x == 0))
            .collect();
        let missed_tokens: u64 = missed.iter().map(|(_, h)| h.len() as u64).sum();
        assert!(
            missed_tokens <= unserved,
            "epoch {epoch}: whole frames missed: {missed:?}"
        );
    }
    let (_, o0) = coverage(0);
    let (_, o1) = coverage(1);
    assert_ne!(o0, o1, "a new epoch comes in a new order");
}

#[test]
fn document_starts_follow_end_of_text() {
    let f = fixture();
    let s = sampler(&f, &mix_text(8, TWO_PHASES));
    let b = s.batch_at(3, 0, 1).unwrap();
    let mut seen = 0;
    for i in 0..b.len() {
        let seq = b.sequence(i);
        let piece_ends: Vec<u32> = b.sequences[i]
            .pieces
            .iter()
            .scan(0u32, |acc, p| {
                *acc += p.len;
                Some(*acc)
            })
            .collect();
        for p in b.document_starts(i) {
            assert!(
                seq[p as usize - 1] == b.eot_id || piece_ends.contains(&p),
                "start {p} is neither after end-of-text nor at a block jump"
            );
            seen += 1;
        }
        let docs = s.documents(&b.sequences[i]).unwrap();
        assert_eq!(
            docs.len(),
            b.document_starts(i).len() + 1,
            "documents overlapped = breaks + 1"
        );
    }
    assert!(seen > 0);
}

#[test]
fn a_corrupt_shard_mid_run_stops_with_its_name() {
    let f = fixture();
    let s = sampler(&f, &mix_text(8, TWO_PHASES));
    // Flip one byte inside the first data frame of every general shard.
    for e in &s.shards().corpus().category("general").unwrap().shards {
        let p = f.dir.join("corpus").join(&e.file);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[60] ^= 0x40;
        std::fs::write(&p, bytes).unwrap();
    }
    let s = sampler(&f, &mix_text(8, TWO_PHASES));
    let opts = LoaderOptions {
        threads: 3,
        prefetch: 4,
        end_step: Some(400),
        ..Default::default()
    };
    let mut l = Loader::new(s, Start::Step(0), &opts).unwrap();
    let err = loop {
        match l.next_batch() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("corruption never met"),
            Err(e) => break e,
        }
    };
    let msg = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(
        msg.contains("general-0000") && msg.contains("frame 0"),
        "{msg}"
    );
}

#[test]
fn bad_mix_specs_name_the_key() {
    let f = fixture();
    let cases = [
        (
            "[[phase]]\nweights = { nosuch = 1 }\n",
            "phase[0].weights.nosuch",
        ),
        (
            "[[phase]]\nweights = { general = -1 }\n",
            "phase[0].weights.general",
        ),
        ("[[phase]]\nweights = { general = 0 }\n", "all zero"),
        (
            "[[phase]]\nweights = { general = 1 }\n[[phase]]\nweights = { aligned = 1 }\n",
            "open-ended",
        ),
        (
            "[[phase]]\nsteps = 5\nweights = { general = 1 }\nbogus = 3\n",
            "bogus",
        ),
        ("", "no [[phase]]"),
    ];
    for (phases, want) in cases {
        let err = MixSpec::from_toml_str(&mix_text(8, phases), Path::new("mix.toml"), &f.dir)
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("mix.toml") && msg.contains(want),
            "{phases:?}: {msg}"
        );
    }
    let err = MixSpec::from_toml_str(
        &mix_text(8, TWO_PHASES).replace("seq_len = 64", "seq_len = 64\nsequence = 3"),
        Path::new("mix.toml"),
        &f.dir,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("sequence"), "{err}");
}
