//! The trainer end to end on wgpu: the loss falls on a real mix, a resumed
//! run reproduces the uninterrupted one bit for bit, bad configs name the
//! key and the file, and a diverging run stops naming the step. Then the
//! pieces of a step on their own: micro-batch accumulation, the optimizer's
//! parameter groups, the learning-rate schedule.

use std::path::Path;

use cubecl::prelude::*;
use prior_data::corpus::WriteOptions;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::tokenizer::Tokenizer;
use prior_model::device::DeviceModel;
use prior_model::train::{
    accumulate_gradients, learning_rate, train, LossScale, Optimizer, StepMetrics, TrainConfig,
    TrainError, TrainSection,
};
use prior_model::{ModelConfig, ParamLayout};
use prior_runtime::buffer::Buf;
use prior_runtime::check::rel_err;
use prior_runtime::device::{run_on, OnDevice};
use prior_runtime::kernels::AdamW;
use prior_runtime::reference;
use prior_runtime::{DeviceInfo, DeviceKind};
use rand::{Rng, SeedableRng};

use super::model::{batch, params};

pub(crate) fn setup(dir: &Path, steps: u64, extra: &str) -> std::path::PathBuf {
    let corpus = dir.join("corpus");
    for (cat, word) in [
        ("general", "the river"),
        ("aligned", "the honest assistant"),
    ] {
        let lines: Vec<String> = (0..200)
            .map(|i| serde_json::json!({ "text": format!("{word} {} said {} and {}.", i % 7, i % 5, i % 3) }).to_string())
            .collect();
        let input = dir.join(format!("{cat}.jsonl"));
        std::fs::write(&input, lines.join("\n")).unwrap();
        let opts = IngestOptions {
            category: cat.into(),
            text_field: "text".into(),
            skip_bad: false,
            write: WriteOptions {
                frame_tokens: 1024,
                ..Default::default()
            },
        };
        ingest(&corpus, &[input], &Tokenizer::byte(), &opts, &mut |_| {}).unwrap();
    }
    std::fs::write(
        dir.join("mix.toml"),
        "corpus = \"corpus\"\nseq_len = 32\nglobal_batch = 8\nseed = 5\n[[phase]]\nweights = { general = 0.75, aligned = 0.25 }\n",
    )
    .unwrap();
    let cfg = dir.join("train.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\npreset = \"micro\"\n[data]\nmix = \"mix.toml\"\n[train]\nsteps = {steps}\nmicro_batch = 4\nlr = 1e-2\nmin_lr = 1e-3\nwarmup_steps = 2\ncheckpoint_dir = \"run\"\ncheckpoint_every = 4\nkeep_checkpoints = 5\ndevice = \"wgpu\"\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

struct Run {
    cfg: TrainConfig,
    text: String,
    resume: bool,
}

impl OnDevice for Run {
    type Output = (
        Result<prior_model::train::TrainSummary, TrainError>,
        Vec<StepMetrics>,
    );
    fn run<R: prior_runtime::cubecl::Runtime>(
        self,
        client: prior_runtime::cubecl::prelude::ComputeClient<R>,
        d: &DeviceInfo,
    ) -> Self::Output {
        let mut seen = Vec::new();
        let r = train(
            client,
            &d.name,
            &self.cfg,
            &self.text,
            self.resume,
            &mut |m| seen.push(m.clone()),
        );
        (r, seen)
    }
}

pub(crate) fn run(
    cfg_path: &Path,
    resume: bool,
) -> (
    Result<prior_model::train::TrainSummary, TrainError>,
    Vec<StepMetrics>,
) {
    let (cfg, text) = TrainConfig::load(cfg_path).unwrap();
    run_on(DeviceKind::Wgpu, Run { cfg, text, resume }).unwrap()
}

fn metrics(dir: &Path) -> Vec<StepMetrics> {
    prior_model::metrics::read(&dir.join("run/metrics.jsonl"))
        .unwrap()
        .steps
}

/// The deterministic part of each step's metrics (timings vary by run).
fn trajectory(m: &[StepMetrics]) -> Vec<(u64, u32, u32, u32)> {
    m.iter()
        .map(|m| {
            (
                m.step,
                m.loss.to_bits(),
                m.lr.to_bits(),
                m.grad_norm.to_bits(),
            )
        })
        .collect()
}

#[test]
fn loss_falls_and_a_resumed_run_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 16, "");
    let (r, seen) = run(&cfg, false);
    let summary = r.unwrap();
    assert_eq!(summary.steps, 16);
    let full = metrics(dir.path());
    assert_eq!(
        trajectory(&full),
        trajectory(&seen),
        "metrics.jsonl holds every step once"
    );
    let first: f32 = full[..3].iter().map(|m| m.loss).sum::<f32>() / 3.0;
    let last: f32 = full[13..].iter().map(|m| m.loss).sum::<f32>() / 3.0;
    assert!(last < first - 0.5, "loss did not fall: {first} -> {last}");
    // Lose everything after step 8, as a crash would, and resume.
    for step in [12, 16] {
        std::fs::remove_dir_all(dir.path().join(format!("run/checkpoints/step-{step:08}")))
            .unwrap();
    }
    let (r, _) = run(&cfg, true);
    assert_eq!(r.unwrap().resumed_from, Some(8));
    assert_eq!(
        trajectory(&metrics(dir.path())),
        trajectory(&full),
        "the resumed run differs from the uninterrupted one"
    );
}

#[test]
fn bad_configs_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, want) in [
        ("bogus = 1\n", "bogus"),
        ("micro_batches = 2\n", "micro_batches"),
    ] {
        let cfg = setup(dir.path(), 4, extra);
        let err = TrainConfig::load(&cfg).unwrap_err().to_string();
        assert!(err.contains("train.toml") && err.contains(want), "{err}");
    }
    let cfg = setup(dir.path(), 4, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("lr = 1e-2", "lr = -1.0");
    std::fs::write(&cfg, text).unwrap();
    let err = TrainConfig::load(&cfg).unwrap_err().to_string();
    assert!(err.contains("train.lr"), "{err}");
    let cfg = setup(dir.path(), 4, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"micro\"", "\"huge\"");
    std::fs::write(&cfg, text).unwrap();
    let err = TrainConfig::load(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("model.preset") && err.contains("pythia-160m"),
        "{err}"
    );
}

#[test]
fn a_diverging_run_stops_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 8, "grad_clip = 1e30\n");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("lr = 1e-2", "lr = 1e30")
        .replace("min_lr = 1e-3", "min_lr = 1e29");
    std::fs::write(&cfg, text).unwrap();
    let (r, _) = run(&cfg, false);
    let err = r.unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("step ") && msg.contains("loss is"), "{msg}");
    // The losses are read at log points, but always before a checkpoint:
    // the step-4 checkpoint after the divergence was never written.
    let TrainError::NonFinite { step, .. } = err else {
        unreachable!()
    };
    assert!(step < 4, "diverged at step {step}");
    let kept = prior_model::checkpoint::list(&dir.path().join("run")).unwrap();
    assert!(
        kept.is_empty(),
        "a diverged state was checkpointed: {kept:?}"
    );
}

/// Losses and norms left on the device between log points are the same
/// bits as when every step is read back, and every step is still logged.
#[test]
fn the_log_interval_changes_no_step() {
    let every_step = tempfile::tempdir().unwrap();
    let (r, seen) = run(
        &setup(
            every_step.path(),
            9,
            "log_every = 1
",
        ),
        false,
    );
    r.unwrap();
    let interval = tempfile::tempdir().unwrap();
    let (r, seen_interval) = run(
        &setup(
            interval.path(),
            9,
            "log_every = 4
",
        ),
        false,
    );
    r.unwrap();
    assert_eq!(seen.len(), 9);
    assert_eq!(trajectory(&seen), trajectory(&seen_interval));
    assert_eq!(
        trajectory(&metrics(interval.path())),
        trajectory(&seen_interval)
    );
}

/// A checkpoint exported with `hf::export` loads back to the same weights,
/// and a run started from it (`[model] init`) logs held-out loss per
/// category; its first loss is that of the exported weights, not a fresh init.
#[test]
fn export_hf_then_init_continues_from_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 6, "");
    let (r, _) = run(&cfg, false);
    r.unwrap();
    let out = dir.path().join("hf");
    let e = prior_model::hf::export(&dir.path().join("run"), &out).unwrap();
    assert_eq!(e.step, 6);
    let (mcfg, params) = prior_model::hf::load_dir(&out).unwrap();
    let layout = prior_model::ParamLayout::new(&mcfg);
    let saved = prior_model::checkpoint::load_model_safetensors(
        &dir.path()
            .join("run/checkpoints/step-00000006/model.safetensors"),
        &layout,
    )
    .unwrap();
    assert_eq!(params, saved);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "gpt_neox");
    assert_eq!(config["hidden_size"], mcfg.d_model);

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = setup(fresh_dir.path(), 2, "");
    let (r, fresh_seen) = run(&fresh, false);
    r.unwrap();

    let cont_dir = tempfile::tempdir().unwrap();
    let cont = setup(
        cont_dir.path(),
        2,
        "eval_every = 1\neval_corpus = \"corpus\"\neval_tokens = 256\n",
    );
    let text = std::fs::read_to_string(&cont).unwrap().replace(
        "preset = \"micro\"",
        &format!("init = {:?}", out.display().to_string()),
    );
    std::fs::write(&cont, text).unwrap();
    let (r, cont_seen) = run(&cont, false);
    r.unwrap();
    assert!(
        cont_seen[0].loss < fresh_seen[0].loss - 0.3,
        "started from trained weights: {} vs fresh {}",
        cont_seen[0].loss,
        fresh_seen[0].loss
    );
    let evals = prior_model::metrics::read(&cont_dir.path().join("run/metrics.jsonl"))
        .unwrap()
        .evals;
    assert_eq!(evals.len(), 2);
    let cats: Vec<&str> = evals[0]
        .heldout
        .iter()
        .map(|c| c.category.as_str())
        .collect();
    assert_eq!(cats, ["aligned", "general"]);
    assert!(evals[0]
        .heldout
        .iter()
        .all(|c| c.loss.is_finite() && c.loss > 0.0 && c.tokens >= 32));

    let bad = setup(cont_dir.path(), 2, "eval_every = 1\n");
    let err = TrainConfig::load(&bad).unwrap_err().to_string();
    assert!(err.contains("eval_corpus"), "{err}");
}

/// A `[model]` section that only fails once the run reads other files
/// (here: an `init` directory that does not exist) names the config file it
/// was written in; `init` beside dimension keys fails already at load.
#[test]
fn model_section_errors_name_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 2, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("preset = \"micro\"", "init = \"no-such-hf-dir\"");
    std::fs::write(&cfg, text).unwrap();
    let (r, seen) = run(&cfg, false);
    assert!(seen.is_empty(), "no step ran");
    let err = r.unwrap_err();
    let msg = err.to_string();
    match &err {
        TrainError::Config { path, .. } => assert_eq!(path, &cfg, "{msg}"),
        other => panic!("expected a config error naming {}: {other}", cfg.display()),
    }
    assert!(
        msg.contains(&cfg.display().to_string())
            && msg.contains("model.init")
            && msg.contains("no-such-hf-dir"),
        "{msg}"
    );

    let both = setup(dir.path(), 2, "");
    let text = std::fs::read_to_string(&both).unwrap().replace(
        "preset = \"micro\"",
        "preset = \"micro\"\ninit = \"no-such-hf-dir\"",
    );
    std::fs::write(&both, text).unwrap();
    let err = TrainConfig::load(&both).unwrap_err().to_string();
    assert!(
        err.contains(&both.display().to_string()) && err.contains("model.init"),
        "{err}"
    );
}

/// The schedule at its edges against the closed form: warm-up starts at
/// lr / warmup and reaches lr at its last step, the cosine starts at lr,
/// is halfway at the middle of the decay, and reaches min_lr at `steps`
/// and stays there.
#[test]
fn learning_rate_warmup_and_cosine_edges() {
    let t = TrainSection {
        steps: 110,
        warmup_steps: 10,
        lr: 3e-4,
        min_lr: 3e-5,
        ..TrainSection::default()
    };
    let (lr, min) = (t.lr as f64, t.min_lr as f64);
    let cosine = |step: u64| {
        let progress = (step as f64 - 10.0) / 100.0;
        min + (lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    };
    for (step, want) in [
        (0, lr / 10.0),
        (4, lr * 5.0 / 10.0),
        (9, lr),
        (10, lr),
        (60, (lr + min) / 2.0),
        (109, cosine(109)),
        (110, min),
        (1000, min),
    ] {
        let got = learning_rate(&t, step) as f64;
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "step {step}: lr {got}, closed form {want}"
        );
    }
    // The last update is past the middle and above the floor.
    assert!(cosine(109) > min && cosine(109) < (lr + min) / 2.0);
    // No warm-up: step 0 is the full rate; warm-up longer than the run:
    // the rate only climbs.
    let flat = TrainSection {
        warmup_steps: 0,
        ..t.clone()
    };
    assert_eq!(learning_rate(&flat, 0), t.lr);
    let long = TrainSection {
        steps: 5,
        warmup_steps: 10,
        ..t.clone()
    };
    let rates: Vec<f32> = (0..5).map(|s| learning_rate(&long, s)).collect();
    assert!(rates.windows(2).all(|w| w[1] > w[0]), "{rates:?}");
    assert!((rates[4] as f64 - lr / 2.0).abs() <= 1e-6 * lr);
}

struct MicroBatches;

impl OnDevice for MicroBatches {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &DeviceInfo) {
        let cfg = ModelConfig::preset("tiny", 200).unwrap();
        let layout = ParamLayout::new(&cfg);
        let p = params(&layout, &cfg, 21);
        // Four sequences of seq + 1 tokens, as the loader delivers them.
        let (n, seq) = (4, 8);
        let (tokens, _) = batch(200, n * (seq + 1), 22);
        let grads = |micro: usize, tokens: &[u32]| {
            let mut m = DeviceModel::new(client.clone(), cfg, &p, micro, seq).unwrap();
            let loss = accumulate_gradients(&mut m, tokens, seq + 1, None).unwrap();
            (loss, m.download_grads().unwrap())
        };
        let (loss, whole) = grads(n, &tokens);
        assert!(
            whole.iter().any(|g| g.abs() > 1e-3),
            "gradients carry signal"
        );
        for k in [2, 4] {
            let (l, g) = grads(n / k, &tokens);
            assert!(
                (l - loss).abs() <= 1e-6 * loss.abs(),
                "{k} micro-batches: loss {l}, one batch {loss}"
            );
            for spec in &layout.tensors {
                let r = spec.offset..spec.offset + spec.len();
                let e = rel_err(&g[r.clone()], &whole[r]);
                assert!(
                    e <= 1e-6,
                    "{k} micro-batches, {}: max_rel_err {e} against one batch",
                    spec.name
                );
            }
        }
        // Each step's sum starts from nothing: after a step on other
        // tokens, the same model's gradients of this batch are a fresh
        // model's, bit for bit (the first micro-batch overwrites what the
        // last step left, the embedding's untouched rows included).
        let (other, _) = batch(200, n * (seq + 1), 23);
        let mut m = DeviceModel::new(client.clone(), cfg, &p, n / 2, seq).unwrap();
        accumulate_gradients(&mut m, &other, seq + 1, None).unwrap();
        let first = m.download_grads().unwrap();
        accumulate_gradients(&mut m, &tokens, seq + 1, None).unwrap();
        let again = m.download_grads().unwrap();
        let (_, fresh) = grads(n / 2, &tokens);
        assert!(rel_err(&first, &fresh) > 1e-2, "the two batches differ");
        for spec in &layout.tensors {
            let r = spec.offset..spec.offset + spec.len();
            assert!(
                again[r.clone()] == fresh[r],
                "{}: the second step's gradient keeps some of the first's",
                spec.name
            );
        }
        // The first half alone has another gradient: the comparison above
        // sees every micro-batch.
        let (_, half) = grads(n / 2, &tokens[..(n / 2) * (seq + 1)]);
        assert!(rel_err(&half, &whole) > 1e-2);
        // A batch the model's shape does not divide is an error, not a panic.
        let mut m = DeviceModel::new(client.clone(), cfg, &p, 3, seq).unwrap();
        let err = accumulate_gradients(&mut m, &tokens, seq + 1, None).unwrap_err();
        assert!(matches!(err, TrainError::Shape { .. }), "{err}");
    }
}

/// k micro-batches give the gradient (and loss) of one batch of the same
/// sequences, through the trainer's own accumulation.
#[test]
fn micro_batches_give_the_gradient_of_one_batch() {
    run_on(DeviceKind::Wgpu, MicroBatches).unwrap();
}

struct OptimizerGroups;

impl OnDevice for OptimizerGroups {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &DeviceInfo) {
        let cfg = ModelConfig::preset("micro", 40).unwrap();
        let layout = ParamLayout::new(&cfg);
        let t = TrainSection {
            steps: 10,
            warmup_steps: 2,
            lr: 1e-2,
            weight_decay: 0.5,
            grad_clip: 1.0,
            ..TrainSection::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
        let mut p: Vec<f32> = (0..layout.total)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        // One matrix and one bias get no gradient: what happens to them is
        // weight decay alone.
        let still = [
            layout.get("embed_out.weight"),
            layout.get("gpt_neox.final_layer_norm.bias"),
        ];
        let (matrix, bias) = (still[0].clone(), still[1].clone());
        assert!(matrix.decay && !bias.decay);
        let p0 = p.clone();
        let (mut m, mut v) = (vec![0f32; layout.total], vec![0f32; layout.total]);
        let opt = Optimizer::zeros(&client, &layout);
        let params_b = Buf::<R, f32>::upload(&client, &p);
        for step in 0..2u64 {
            let mut g: Vec<f32> = (0..layout.total)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect();
            for s in &still {
                g[s.offset..s.offset + s.len()].fill(0.0);
            }
            let grads_b = Buf::<R, f32>::upload(&client, &g);
            let up = opt.step(&params_b, &grads_b, &t, step).unwrap();
            let grad_norm = up.grad_norm.expect("step reads the norm back");
            // The reference: global norm, clip, AdamW per group.
            let norm = g.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
            assert!(norm > t.grad_clip as f64, "the clip is exercised");
            assert!(
                (grad_norm as f64 - norm).abs() < 1e-5 * norm,
                "grad_norm {grad_norm} vs {norm}"
            );
            assert_eq!(up.lr, learning_rate(&t, step));
            let scale = (t.grad_clip as f64 / (norm + 1e-6)) as f32;
            g.iter_mut().for_each(|x| *x *= scale);
            let h = AdamW {
                lr: up.lr,
                beta1: t.beta1,
                beta2: t.beta2,
                eps: t.eps,
                weight_decay: t.weight_decay,
                step: step as u32 + 1,
            };
            let d = layout.decay_end;
            reference::adamw(&mut p[..d], &g[..d], &mut m[..d], &mut v[..d], h);
            let h0 = AdamW {
                weight_decay: 0.0,
                ..h
            };
            reference::adamw(&mut p[d..], &g[d..], &mut m[d..], &mut v[d..], h0);
        }
        let got = params_b.download(&client).unwrap();
        let e = rel_err(&got, &p);
        assert!(
            e < 1e-5,
            "parameters: max_rel_err {e} against the reference"
        );
        let (gm, gv) = opt.download().unwrap();
        assert!(rel_err(&gm, &m) < 1e-5 && rel_err(&gv, &v) < 1e-5);
        // Without a gradient the matrix shrank by (1 - lr wd) per step and
        // the bias did not move.
        let shrink: f64 = (0..2)
            .map(|s| 1.0 - learning_rate(&t, s) as f64 * t.weight_decay as f64)
            .product();
        for i in matrix.offset..matrix.offset + matrix.len() {
            let want = p0[i] as f64 * shrink;
            assert!((got[i] as f64 - want).abs() < 1e-6, "{}", matrix.name);
        }
        let r = bias.offset..bias.offset + bias.len();
        assert_eq!(&got[r.clone()], &p0[r], "{} took weight decay", bias.name);
    }
}

/// The optimizer step the trainer and `prior bench step` share: clipping
/// to the global norm, the schedule's rate, and AdamW with weight decay on
/// the matrices only, against the CPU reference over two steps.
#[test]
fn optimizer_step_decays_matrices_only() {
    run_on(DeviceKind::Wgpu, OptimizerGroups).unwrap();
}

/// A checkpoint whose optimizer moments are stored as another dtype of the
/// same byte length is refused naming the file and the tensor, rather than
/// read back as f32 bits.
#[test]
fn optimizer_moments_of_another_dtype_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), 1, "");
    run(&cfg, false).0.unwrap();
    let ck = dir.path().join("run/checkpoints/step-00000001");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ck.join("state.json")).unwrap()).unwrap();
    let mcfg: ModelConfig = serde_json::from_value(state["model"].clone()).unwrap();
    let layout = ParamLayout::new(&mcfg);
    prior_model::checkpoint::load(&ck, &layout).unwrap();
    let path = ck.join("optimizer.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (avg, avg_sq) = (
        st.tensor("exp_avg").unwrap(),
        st.tensor("exp_avg_sq").unwrap(),
    );
    let views = [
        (
            "exp_avg",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::I32,
                avg.shape().to_vec(),
                avg.data(),
            )
            .unwrap(),
        ),
        (
            "exp_avg_sq",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                avg_sq.shape().to_vec(),
                avg_sq.data(),
            )
            .unwrap(),
        ),
    ];
    let rewritten = safetensors::serialize(views, None).unwrap();
    std::fs::write(&path, rewritten).unwrap();
    let err = prior_model::checkpoint::load(&ck, &layout)
        .err()
        .expect("an I32 exp_avg is refused")
        .to_string();
    assert!(
        err.contains("optimizer.safetensors") && err.contains("exp_avg") && err.contains("I32"),
        "{err}"
    );
}

/// The mixed-precision path on the CPU stand-in: f16 activations and matmul
/// operands, f32 master weights, dynamic loss scaling. 100 steps end
/// within 2% of the f32 run's loss on the same seed and data, and the two
/// runs did differ (the f16 one really ran in f16).
#[test]
fn f16_mixed_precision_trains_within_two_percent_of_f32() {
    let mut tails = Vec::new();
    let mut runs = Vec::new();
    for precision in ["f32", "f16"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = setup(dir.path(), 100, &format!("precision = \"{precision}\"\n"));
        let (r, _) = run(&cfg, false);
        assert_eq!(r.unwrap().steps, 100);
        let m = metrics(dir.path());
        assert_eq!(m.len(), 100);
        let tail = m[90..].iter().map(|m| m.loss as f64).sum::<f64>() / 10.0;
        println!(
            "{precision}: loss {:.4} -> {tail:.4} (mean of the last 10 steps); loss scale {:?}, {} skipped",
            m[0].loss,
            m[99].loss_scale,
            m.iter().filter(|m| m.skipped).count()
        );
        tails.push(tail);
        runs.push(m);
    }
    let (f32_run, f16_run) = (&runs[0], &runs[1]);
    assert!(f32_run.iter().all(|m| m.loss_scale.is_none() && !m.skipped));
    assert!(
        f16_run.iter().all(|m| m.loss_scale.is_some()),
        "f16 steps carry their loss scale"
    );
    assert!(tails[0] < f32_run[0].loss as f64 - 0.5, "f32 learned");
    let rel = (tails[1] - tails[0]).abs() / tails[0];
    assert!(
        rel <= 0.02,
        "f16 ends at {:.4}, f32 at {:.4}: {:.2}% apart",
        tails[1],
        tails[0],
        rel * 100.0
    );
    assert_ne!(
        trajectory(f32_run),
        trajectory(f16_run),
        "the f16 run computed exactly what the f32 one did"
    );
}

struct Overflow;

impl OnDevice for Overflow {
    type Output = ();
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &DeviceInfo) {
        let cfg = ModelConfig::preset("micro", 40).unwrap();
        let layout = ParamLayout::new(&cfg);
        let p = params(&layout, &cfg, 41);
        let seq = 8;
        let (tokens, _) = batch(40, 2 * (seq + 1), 42);
        let mut m = DeviceModel::<R, half::f16>::with_compute_type(client.clone(), cfg, &p, 2, seq)
            .unwrap();
        assert_eq!(
            m.loss_scale,
            Some(LossScale::default()),
            "f16 scales its loss"
        );
        let opt = Optimizer::zeros(&client, &layout);
        let t = TrainSection::default();
        // A scale no f16 gradient survives: the step is skipped, the master
        // weights are untouched and the scale halves.
        let huge = 1e30f32;
        m.loss_scale = Some(LossScale {
            scale: huge,
            good_steps: 7,
        });
        accumulate_gradients(&mut m, &tokens, seq + 1, None).unwrap();
        let up = opt.apply(&mut m, &t, 0).unwrap();
        assert!(up.skipped, "{up:?}");
        assert_eq!(up.loss_scale, Some(huge));
        assert_eq!(
            m.loss_scale,
            Some(LossScale {
                scale: huge / 2.0,
                good_steps: 0
            })
        );
        assert_eq!(
            m.download_params().unwrap(),
            p,
            "a skipped step changes nothing"
        );
        // At a sane scale the same batch updates the weights, and the norm
        // reported is the unscaled one (as an f32 model computes it).
        m.loss_scale = Some(LossScale::default());
        accumulate_gradients(&mut m, &tokens, seq + 1, None).unwrap();
        let up = opt.apply(&mut m, &t, 0).unwrap();
        assert!(!up.skipped, "{up:?}");
        assert_ne!(m.download_params().unwrap(), p);
        let mut f32_model = DeviceModel::new(client.clone(), cfg, &p, 2, seq).unwrap();
        accumulate_gradients(&mut f32_model, &tokens, seq + 1, None).unwrap();
        let want = Optimizer::zeros(&client, &layout)
            .apply(&mut f32_model, &t, 0)
            .unwrap()
            .grad_norm
            .expect("apply reads the norm back");
        let got = up.grad_norm.expect("apply reads the norm back");
        let rel = (got - want).abs() / want;
        assert!(rel < 2e-2, "f16 grad norm {got} vs f32 {want}: {rel}");
    }
}

/// Dynamic loss scaling: an overflowing step is skipped and halves the
/// scale; a good one unscales before the update.
#[test]
fn an_f16_overflow_skips_the_step_and_halves_the_scale() {
    run_on(DeviceKind::Wgpu, Overflow).unwrap();
}

#[test]
fn the_loss_scale_grows_after_its_interval_of_good_steps() {
    let mut s = LossScale::default();
    for _ in 0..LossScale::GROWTH_INTERVAL - 1 {
        assert!(!s.update(true));
    }
    assert_eq!(s.scale, 65536.0);
    assert!(!s.update(true));
    assert_eq!((s.scale, s.good_steps), (131072.0, 0));
    assert!(s.update(false));
    assert_eq!(s.scale, 65536.0);
    // Never below the floor.
    let mut low = LossScale {
        scale: 1.0,
        good_steps: 3,
    };
    assert!(low.update(false));
    assert_eq!(low.scale, LossScale::MIN);
}

proptest::proptest! {
    /// ZeRO-1 shards: `world` contiguous ranges in rank order that cover
    /// every parameter once, each starting at a multiple of the norm's
    /// span (so gathered partials are the unsharded vector's) and none
    /// more than one span longer than another.
    #[test]
    fn optimizer_shards_tile_the_parameters_at_norm_spans(total in 1usize..200_000, world in 1u32..9) {
        use prior_runtime::kernels::optim::NORM_SPAN;
        let shards: Vec<_> = (0..world).map(|r| prior_model::parallel::shard_of(total, r, world)).collect();
        let mut next = 0;
        for s in &shards {
            proptest::prop_assert_eq!(s.start, next);
            proptest::prop_assert!(s.start % NORM_SPAN == 0 || s.start == total);
            next = s.end;
        }
        proptest::prop_assert_eq!(next, total);
        let longest = shards.iter().map(|s| s.len()).max().unwrap();
        let non_empty: Vec<_> = shards.iter().filter(|s| !s.is_empty()).collect();
        for s in &non_empty[..non_empty.len() - 1] {
            proptest::prop_assert_eq!(s.len(), longest);
        }
        proptest::prop_assert!(longest <= total.div_ceil(NORM_SPAN).div_ceil(world as usize) * NORM_SPAN);
    }
}
