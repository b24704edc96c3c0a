//! Experiments: configs are checked naming the key, each condition's mix
//! is a valid spec with the same step count whose names survive any
//! quoting, and a small experiment runs end to end on wgpu, writes its
//! report and plots, resumes without retraining or re-evaluating, and
//! refuses damaged files naming them.

use std::collections::BTreeMap;
use std::path::Path;

use prior_eval::experiment::{
    run_experiment, ConditionMix, ConditionResult, Event, ExperimentConfig, ExperimentResults,
    SeedResult, SignAgreement,
};
use prior_eval::score::{Rate, SplitRate};
use prior_loader::MixSpec;
use prior_runtime::device::{run_on, DeviceKind, OnDevice};

use crate::common::{corpus, suite, svg_curves, svg_texts, CONFIG};

#[test]
fn configs_are_checked_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("exp.toml");
    for (edit, want) in [
        (CONFIG.replace("seed = 3", "seed = 3\nbogus = 1"), "bogus"),
        (CONFIG.replace("late_fraction = 0.5\n", ""), "late_fraction"),
        (
            CONFIG.replace("late_fraction = 0.5", "late_fraction = 1.5"),
            "late_fraction",
        ),
        (
            CONFIG.replace("\"late_aligned\"", "\"unfiltered\""),
            "twice",
        ),
        (
            CONFIG.replace("templates = 2", "templates = 9"),
            "eval.templates must be 1 to 4 (got 9)",
        ),
        (
            CONFIG.replace("templates = 2", "templates = 2\nmodes = [\"logit\"]"),
            "eval.modes",
        ),
        (
            CONFIG.replace("templates = 2", "templates = 2\nmodes = []"),
            "eval.modes needs at least one mode",
        ),
        (
            CONFIG.replace("seed = 3", "seed = 3\nbaseline = \"nope\""),
            "baseline",
        ),
        (
            CONFIG.replace(
                "templates = 2",
                "templates = 2\nmodes = [\"text\", \"text\"]",
            ),
            "eval.modes lists text twice",
        ),
        (
            CONFIG.replace("templates = 2", "templates = 2\nbatch = 0"),
            "eval.batch must be at least 1",
        ),
        (CONFIG.replace("steps = 4", "steps = 1"), "at least 2"),
    ] {
        std::fs::write(&p, edit).unwrap();
        let err = ExperimentConfig::load(&p).unwrap_err().to_string();
        assert!(
            err.contains("exp.toml") && err.contains(want),
            "{want}: {err}"
        );
    }
}

#[test]
fn condition_mixes_are_valid_specs_of_the_same_length() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), "corpus");
    let p = dir.path().join("exp.toml");
    std::fs::write(&p, CONFIG.replace("steps = 4", "steps = 10")).unwrap();
    let cfg = ExperimentConfig::load(&p).unwrap();
    for c in &cfg.conditions {
        let text = cfg.mix_toml(c, 0).unwrap();
        let (spec, _) =
            MixSpec::from_toml_str(&text, &dir.path().join("mix.toml"), dir.path()).unwrap();
        let bounded: u64 = spec.phases.iter().filter_map(|ph| ph.steps).sum();
        if c.late_fraction.is_some() {
            assert_eq!(spec.phases.len(), 2, "{text}");
            assert_eq!(bounded, 10, "{text}");
            assert_eq!(spec.phases[1].steps, Some(5));
        } else {
            assert_eq!(spec.phases.len(), 1);
        }
    }
}

/// Category names and a corpus path with a quote, a backslash, non-ASCII
/// letters (precomposed and combining), a tab and a control character come
/// back from the written mix exactly; an experiment name with a line break
/// stays inside the heading comment.
#[test]
fn mix_names_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("exp.toml");
    std::fs::write(&p, CONFIG).unwrap();
    let mut cfg = ExperimentConfig::load(&p).unwrap();
    let names = [
        "quo\"te",
        "back\\slash",
        "caf\u{e9}",
        "cafe\u{301}",
        "tab\there",
        "del\u{7f}",
    ];
    let weights: BTreeMap<String, f64> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), 0.1 * (i + 1) as f64))
        .collect();
    cfg.name = "ex\"p\\\u{e9}\nseed = 9".into();
    cfg.corpus = dir.path().join("co\"r\\pus \u{e9}e\u{301}");
    cfg.conditions[1].weights = weights.clone();
    let late: BTreeMap<String, f64> = [(names[2].to_string(), 1.0)].into();
    cfg.conditions[1].late_weights = Some(late.clone());
    let c = &cfg.conditions[1];
    let text = cfg.mix_toml(c, 0).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let keys: Vec<&str> = doc.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        ["corpus", "global_batch", "phase", "seed", "seq_len"],
        "{text}"
    );
    assert_eq!(doc["seed"].as_integer(), Some(3), "{text}");
    assert_eq!(
        doc["corpus"].as_str(),
        Some(cfg.corpus.to_str().unwrap()),
        "{text}"
    );
    let phases = doc["phase"].as_array().unwrap();
    for (ph, want) in phases.iter().zip([&weights, &late]) {
        let got: BTreeMap<String, f64> = ph["weights"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_float().unwrap()))
            .collect();
        assert_eq!(&got, want, "{text}");
    }
    // And as the typed mix the experiment compares on a rerun.
    let back: ConditionMix = toml::from_str(&text).unwrap();
    assert_eq!(back, cfg.mix(c, 0).unwrap());
}

/// Runs an experiment; its outcome (the error as text) and what it said it
/// was doing per condition.
struct Attempt(ExperimentConfig);

impl OnDevice for Attempt {
    type Output = (Result<ExperimentResults, String>, Vec<String>);
    fn run<R: prior_runtime::cubecl::Runtime>(
        self,
        client: prior_runtime::cubecl::prelude::ComputeClient<R>,
        d: &prior_runtime::DeviceInfo,
    ) -> Self::Output {
        let mut said = Vec::new();
        let r = run_experiment(client, &d.name, &self.0, &mut |e| {
            if let Event::Condition { name, what, .. } = e {
                said.push(format!("{name}: {what}"));
            }
        })
        .map_err(|e| e.to_string());
        (r, said)
    }
}

fn attempt(cfg: &ExperimentConfig) -> (Result<ExperimentResults, String>, Vec<String>) {
    run_on(DeviceKind::Wgpu, Attempt(cfg.clone())).unwrap()
}

/// Mean and standard error of `b - a` of the heldout `text` scores in two
/// eval.json files, pairing questions by id.
fn paired_by_hand(a: &Path, b: &Path) -> (f64, f64) {
    let scores = |p: &Path| -> BTreeMap<String, f64> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["report"]["questions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["split"] == "heldout")
            .map(|q| {
                (
                    q["id"].as_str().unwrap().to_string(),
                    q["scores"]["text"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (sa, sb) = (scores(a), scores(b));
    assert_eq!(sa.len(), 3);
    let d: Vec<f64> = sa.iter().map(|(id, x)| sb[id] - x).collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Replaces a file's content for one attempt, then puts it back.
fn damaged(path: &Path, content: Option<&[u8]>, cfg: &ExperimentConfig) -> (String, Vec<String>) {
    let saved = std::fs::read(path).unwrap();
    match content {
        Some(c) => std::fs::write(path, c).unwrap(),
        None => std::fs::remove_file(path).unwrap(),
    }
    let (r, said) = attempt(cfg);
    std::fs::write(path, saved).unwrap();
    match r {
        Ok(_) => ("no error".into(), said),
        Err(e) => (e, said),
    }
}

/// The corpora and suite the test config names, and the config (`text`)
/// loaded from `dir/exp.toml`.
fn small_experiment(dir: &Path, text: &str) -> ExperimentConfig {
    corpus(dir, "corpus");
    corpus(dir, "heldout");
    suite(dir);
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    ExperimentConfig::load(&p).unwrap()
}

#[test]
fn a_small_experiment_runs_reports_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_experiment(dir.path(), CONFIG);
    let (r, said) = attempt(&cfg);
    let r = r.unwrap();
    assert_eq!(
        said,
        [
            "unfiltered: training",
            "unfiltered: evaluating",
            "late_aligned: training",
            "late_aligned: evaluating",
            "untrained model: evaluating"
        ]
    );
    assert_eq!(r.conditions.len(), 2);
    // The untrained model: every split, every mode, the same questions.
    assert_eq!(r.untrained["heldout"].questions, 3);
    assert_eq!(r.untrained["train_like"].questions, 3);
    assert_eq!(
        r.untrained["heldout"].by_mode.keys().collect::<Vec<_>>(),
        r.conditions[0].splits["heldout"]
            .by_mode
            .keys()
            .collect::<Vec<_>>()
    );
    for c in &r.conditions {
        assert_eq!(c.splits["heldout"].questions, 3);
        assert_eq!(c.splits["train_like"].questions, 3);
        assert!(c.final_loss.is_finite());
        assert_eq!(c.heldout_loss.len(), 3, "{:?}", c.heldout_loss);
        assert!(c.train_seconds > 0.0);
    }
    let out = dir.path().join("small");
    // The condition's difference from the baseline is the paired one, over
    // the per-question scores each stored.
    let (mean, se) = paired_by_hand(
        &out.join("unfiltered/eval.json"),
        &out.join("late_aligned/eval.json"),
    );
    let d = r.conditions[1].vs_baseline["heldout"];
    assert_eq!(d.questions, 3);
    assert!(
        (d.misalignment_rate - mean).abs() < 1e-12,
        "{d:?} vs {mean}"
    );
    assert!((d.stderr - se).abs() < 1e-12, "{d:?} vs {se}");
    for f in [
        "results.json",
        "report.md",
        "misalignment.svg",
        "loss.svg",
        "heldout_loss.svg",
    ] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(!text.is_empty(), "{f}");
    }
    // Each chart names what it shows: conditions and splits in the rate
    // chart, one loss curve per condition (a point per step), the
    // held-out categories.
    let svg = std::fs::read_to_string(out.join("misalignment.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    let t = svg_texts(&svg);
    for want in ["unfiltered", "late_aligned", "heldout", "train_like"] {
        assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
    }
    let loss = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    let t = svg_texts(&loss);
    assert!(t.iter().any(|x| x == "unfiltered") && t.iter().any(|x| x == "late_aligned"));
    assert_eq!(svg_curves(&loss), [4, 4], "{loss}");
    let t = svg_texts(&std::fs::read_to_string(out.join("heldout_loss.svg")).unwrap());
    for want in ["general", "aligned", "misaligned"] {
        assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| `late_aligned` |"), "{md}");
    assert!(md.contains("## Untrained model"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert!(json["conditions"][1]["heldout"]["misalignment_rate"].is_number());
    assert!(json["conditions"][1]["heldout"]["stderr"].is_number());
    // The late condition's mix switched at step 2.
    let mix: ConditionMix =
        toml::from_str(&std::fs::read_to_string(out.join("late_aligned/mix.toml")).unwrap())
            .unwrap();
    let steps: Vec<Option<u64>> = mix.phases.iter().map(|p| p.steps).collect();
    assert_eq!(steps, [Some(2), Some(2)]);

    // Running again trains and evaluates nothing, and reports the same.
    let (again, said) = attempt(&cfg);
    let again = again.unwrap();
    let reused = [
        "unfiltered: already trained",
        "unfiltered: already evaluated",
        "late_aligned: already trained",
        "late_aligned: already evaluated",
        "untrained model: already evaluated",
    ];
    assert_eq!(said, reused);
    assert_eq!(
        serde_json::to_value(&again.conditions[1].splits).unwrap(),
        serde_json::to_value(&r.conditions[1].splits).unwrap()
    );

    // A mix.toml in another formatting (integer weights, inline tables, no
    // heading) with the same content is the same mix.
    let late_mix = out.join("late_aligned/mix.toml");
    let corpus_dir = std::path::absolute(dir.path().join("corpus")).unwrap();
    let same = format!(
        "corpus = {:?}\nseq_len = 32\nglobal_batch = 4\nseed = 3\n[[phase]]\nname = \"main\"\nsteps = 2\nweights = {{ general = 1 }}\n[[phase]]\nname = \"late\"\nsteps = 2\nweights = {{ general = 0.5, aligned = 0.5 }}\n",
        corpus_dir.to_str().unwrap()
    );
    let (err, said) = damaged(&late_mix, Some(same.as_bytes()), &cfg);
    assert_eq!(err, "no error");
    assert_eq!(said, reused);

    // Damaged files are errors naming them, not quietly redone or skipped.
    let name = |p: &Path| p.display().to_string();
    let late_eval = out.join("late_aligned/eval.json");
    let (err, _) = damaged(&late_eval, Some(b"{not json"), &cfg);
    assert!(
        err.contains(&name(&late_eval)) && err.contains("remove it"),
        "{err}"
    );

    let (err, _) = damaged(&late_mix, Some(b"seed = \xff\n"), &cfg);
    assert!(
        err.contains(&name(&late_mix)) && err.contains("retrain"),
        "{err}"
    );

    let metrics = out.join("unfiltered/train/metrics.jsonl");
    let mut bad = std::fs::read(&metrics).unwrap();
    let lines = bad.iter().filter(|&&b| b == b'\n').count();
    bad.extend_from_slice(b"not json\n");
    let (err, _) = damaged(&metrics, Some(&bad), &cfg);
    let at = format!("{}:{}:", name(&metrics), lines + 1);
    assert!(err.contains(&at), "{at}: {err}");
    let (err, _) = damaged(&metrics, None, &cfg);
    assert!(err.contains(&name(&metrics)), "{err}");

    // A checkpoint whose state cannot be read stops the run before its
    // condition is evaluated again.
    let state = Path::new(&r.conditions[1].checkpoint).join("state.json");
    let (err, said) = damaged(&state, Some(b"{}"), &cfg);
    assert!(err.contains(&name(&state)), "{err}");
    assert!(!said.iter().any(|s| s.ends_with("evaluating")), "{said:?}");

    // Everything put back: nothing is redone.
    let (_, said) = attempt(&cfg);
    assert_eq!(said, reused);

    // A changed mix for a trained condition is refused, not reused.
    let p = dir.path().join("exp.toml");
    std::fs::write(
        &p,
        CONFIG.replace(
            "general = 0.5, aligned = 0.5",
            "general = 0.6, aligned = 0.4",
        ),
    )
    .unwrap();
    let changed = ExperimentConfig::load(&p).unwrap();
    let (err, _) = attempt(&changed);
    let err = err.unwrap_err();
    assert!(
        err.contains("late_aligned") && err.contains("mix changed"),
        "{err}"
    );
}

#[test]
fn seeds_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("exp.toml");
    for (seeds, want) in [
        ("[]", "seeds is empty"),
        ("[0, 2, 0]", "seeds lists 0 twice"),
    ] {
        std::fs::write(
            &p,
            CONFIG.replace("seed = 3\n", &format!("seed = 3\nseeds = {seeds}\n")),
        )
        .unwrap();
        let err = ExperimentConfig::load(&p).unwrap_err().to_string();
        assert!(
            err.contains(&p.display().to_string()) && err.contains(want),
            "{err}"
        );
    }
}

/// Two seeds: every condition runs twice, each seed moving the mix's seed
/// and the initialisation; each run is paired with the baseline's run of
/// the same seed, and the condition's numbers are the mean and standard
/// error over its seeds, with the sign agreement counted.
#[test]
fn two_seeds_train_every_condition_twice_and_report_the_spread_across_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_experiment(
        dir.path(),
        &CONFIG.replace("seed = 3\n", "seed = 3\nseeds = [0, 5]\n"),
    );
    let (r, said) = attempt(&cfg);
    let r = r.unwrap();
    assert_eq!(said[0], "unfiltered seed 0: training", "{said:?}");
    assert_eq!(said.len(), 9, "{said:?}");
    assert_eq!(r.seeds, [0, 5]);
    let out = dir.path().join("small");
    for c in ["unfiltered", "late_aligned"] {
        for (seed, mix_seed, init_seed) in [(0u64, 3u64, 0u64), (5, 8, 5)] {
            // The first seed's run where a one-seed experiment keeps it.
            let run = cfg.run_dir(c, seed);
            assert_eq!(run == out.join(c), seed == 0);
            let mix: ConditionMix =
                toml::from_str(&std::fs::read_to_string(run.join("mix.toml")).unwrap()).unwrap();
            assert_eq!(mix.seed, mix_seed, "{c} seed {seed}");
            let train: toml::Value =
                toml::from_str(&std::fs::read_to_string(run.join("train.toml")).unwrap()).unwrap();
            assert_eq!(train["train"]["seed"].as_integer(), Some(init_seed as i64));
            assert!(run.join("eval.json").is_file());
        }
    }
    let late = &r.conditions[1];
    assert_eq!(late.seeds.len(), 2);
    assert!(out.join("unfiltered/seed-5/train").is_dir());
    // Another seed is another model: the runs' losses differ.
    assert_ne!(late.seeds[0].final_loss, late.seeds[1].final_loss);
    for sp in ["heldout", "train_like"] {
        let rates: Vec<f64> = late
            .seeds
            .iter()
            .map(|s| s.splits[sp].misalignment_rate)
            .collect();
        let mean = (rates[0] + rates[1]) / 2.0;
        // Sample sd of two values over sqrt(2): |a - b| / 2.
        let se = (rates[0] - rates[1]).abs() / 2.0;
        assert!(
            (late.splits[sp].misalignment_rate - mean).abs() < 1e-12,
            "{sp}"
        );
        assert!((late.splits[sp].stderr - se).abs() < 1e-12, "{sp}");
        // Each seed's difference is paired with the baseline's run of the
        // same seed.
        for (k, seed) in [0u64, 5].into_iter().enumerate() {
            let (m, _) = paired_by_hand(
                &cfg.run_dir("unfiltered", seed).join("eval.json"),
                &cfg.run_dir("late_aligned", seed).join("eval.json"),
            );
            if sp == "heldout" {
                assert!((late.seeds[k].vs_baseline[sp].misalignment_rate - m).abs() < 1e-12);
            }
        }
        let ds: Vec<f64> = late
            .seeds
            .iter()
            .map(|s| s.vs_baseline[sp].misalignment_rate)
            .collect();
        let d = late.vs_baseline[sp].misalignment_rate;
        assert!((d - (ds[0] + ds[1]) / 2.0).abs() < 1e-12);
        let agree = ds
            .iter()
            .filter(|&&x| x != 0.0 && x.signum() == d.signum())
            .count();
        assert_eq!(late.agreement[sp].agree, agree, "{sp}: {ds:?}");
        assert_eq!(late.agreement[sp].seeds, 2);
        // Every scored mode has its own paired difference; the headline's
        // is the one above.
        for seed in &late.seeds {
            let by_mode = &seed.vs_baseline_by_mode[sp];
            assert_eq!(by_mode.len(), late.splits[sp].by_mode.len(), "{sp}");
            assert_eq!(by_mode[&r.headline_mode], seed.vs_baseline[sp]);
        }
        assert_eq!(
            late.vs_baseline_by_mode[sp][&r.headline_mode].misalignment_rate,
            d
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Replication across seeds"), "{md}");
    for mode in late.splits["heldout"].by_mode.keys() {
        assert!(
            md.contains(&format!("| `late_aligned` | heldout | {mode} | ")),
            "{mode}: {md}"
        );
    }
    assert!(md.contains("trained with 2 seeds"), "{md}");
}

fn split(rate: f64, se: f64, text: f64) -> SplitRate {
    let r = |x: f64| Rate {
        misalignment_rate: x,
        stderr: se,
        questions: 7,
    };
    SplitRate {
        misalignment_rate: rate,
        stderr: se,
        questions: 7,
        by_mode: [
            ("text".to_string(), r(text)),
            ("letter".to_string(), r(0.5)),
        ]
        .into(),
    }
}

fn seed_run(seed: u64, heldout: f64, d_heldout: f64, d_train: f64, loss: f32) -> SeedResult {
    let d = |x: f64| Rate {
        misalignment_rate: x,
        stderr: 0.01,
        questions: 7,
    };
    SeedResult {
        seed,
        splits: [
            ("heldout".to_string(), split(heldout, 0.05, heldout)),
            ("train_like".to_string(), split(0.5, 0.05, 0.5)),
        ]
        .into(),
        vs_baseline: [
            ("heldout".to_string(), d(d_heldout)),
            ("train_like".to_string(), d(d_train)),
        ]
        .into(),
        // The calibrated mode moves the other way, by half as much.
        vs_baseline_by_mode: [
            (
                "heldout".to_string(),
                [
                    ("text".to_string(), d(d_heldout)),
                    ("text_calibrated".to_string(), d(-0.5 * d_heldout)),
                ]
                .into(),
            ),
            (
                "train_like".to_string(),
                [
                    ("text".to_string(), d(d_train)),
                    ("text_calibrated".to_string(), d(-0.5 * d_train)),
                ]
                .into(),
            ),
        ]
        .into(),
        final_loss: loss,
        heldout_loss: [("general".to_string(), loss as f64)].into(),
        train_seconds: 2.0,
        eval_seconds: 1.0,
        checkpoint: format!("ck{seed}"),
    }
}

/// Over seeds: means, standard errors across seeds (not over questions),
/// and sign agreement, where a zero difference agrees with nothing; one
/// seed keeps its own numbers (its standard errors over questions).
#[test]
fn a_condition_over_seeds_is_the_mean_and_spread_across_them() {
    let runs = vec![
        seed_run(0, 0.30, -0.10, 0.02, 4.0),
        seed_run(1, 0.40, -0.20, -0.04, 5.0),
        seed_run(2, 0.50, -0.30, 0.0, 6.0),
    ];
    let c = ConditionResult::from_seeds("x".into(), runs.clone());
    let h = &c.splits["heldout"];
    assert!((h.misalignment_rate - 0.40).abs() < 1e-12);
    // sd of (0.3, 0.4, 0.5) is 0.1; over sqrt(3).
    assert!((h.stderr - 0.1 / 3f64.sqrt()).abs() < 1e-12, "{h:?}");
    assert!((h.by_mode["text"].misalignment_rate - 0.40).abs() < 1e-12);
    assert_eq!(h.by_mode["letter"].stderr, 0.0);
    assert_eq!(h.questions, 7);
    let d = c.vs_baseline["heldout"];
    assert!((d.misalignment_rate + 0.20).abs() < 1e-12);
    assert!((d.stderr - 0.1 / 3f64.sqrt()).abs() < 1e-12);
    assert_eq!(c.agreement["heldout"], SignAgreement { agree: 3, seeds: 3 });
    assert!(c.agreement["heldout"].unanimous());
    // Mean of (0.02, -0.04, 0) is negative: one seed agrees, one is zero.
    assert_eq!(
        c.agreement["train_like"],
        SignAgreement { agree: 1, seeds: 3 }
    );
    assert!(!c.agreement["train_like"].unanimous());
    // Every mode's difference goes across seeds the same way: the
    // calibrated one is -0.5 x the headline's in each seed.
    let cal = c.vs_baseline_by_mode["heldout"]["text_calibrated"];
    assert!((cal.misalignment_rate - 0.10).abs() < 1e-12, "{cal:?}");
    assert!((cal.stderr - 0.05 / 3f64.sqrt()).abs() < 1e-12, "{cal:?}");
    assert_eq!(
        c.vs_baseline_by_mode["heldout"]["text"].misalignment_rate,
        d.misalignment_rate
    );
    assert_eq!(
        c.agreement_by_mode["heldout"]["text_calibrated"],
        SignAgreement { agree: 3, seeds: 3 }
    );
    assert_eq!(
        c.agreement_by_mode["train_like"]["text_calibrated"],
        SignAgreement { agree: 1, seeds: 3 }
    );
    // A zero mean agrees with no seed, whatever their signs.
    let flat = vec![
        seed_run(0, 0.3, 0.1, 0.0, 4.0),
        seed_run(1, 0.3, -0.1, 0.0, 4.0),
    ];
    let z = ConditionResult::from_seeds("z".into(), flat);
    assert_eq!(z.agreement["heldout"], SignAgreement { agree: 0, seeds: 2 });
    assert_eq!(
        z.agreement["train_like"],
        SignAgreement { agree: 0, seeds: 2 }
    );
    assert!((c.final_loss - 5.0).abs() < 1e-6);
    assert!((c.heldout_loss["general"] - 5.0).abs() < 1e-9);
    assert_eq!(c.train_seconds, 6.0);
    assert_eq!(c.seeds.len(), 3);

    let one = ConditionResult::from_seeds("x".into(), runs[..1].to_vec());
    assert_eq!(
        one.splits["heldout"].stderr, 0.05,
        "one seed: the spread over questions"
    );
    assert_eq!(one.vs_baseline["heldout"].stderr, 0.01);
    assert_eq!(
        one.agreement["heldout"],
        SignAgreement { agree: 1, seeds: 1 }
    );
}
