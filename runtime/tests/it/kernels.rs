//! Every kernel forward and backward on wgpu (lavapipe on machines without
//! a GPU) against the CPU reference, on fresh random inputs each run. The
//! test asserts every check `prior runtime check` records (the list is the
//! runtime's own, `check::GROUPS`), and a failure names its seed, to be
//! replayed with `prior runtime check --device wgpu --seed N` or with
//! `PRIOR_CHECK_SEED=N cargo test -p prior-runtime`.

use prior_runtime::check::{check_names, summarize, KernelCheck};
use prior_runtime::device::{run_on, DeviceKind};
use prior_runtime::CheckTask;

/// The seed of this run: `PRIOR_CHECK_SEED` when replaying one, else fresh.
fn seed() -> u64 {
    match std::env::var("PRIOR_CHECK_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("PRIOR_CHECK_SEED={s:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// Why `r` does not count as a pass or an explained skip, if it does not.
fn problem(r: &KernelCheck) -> Option<String> {
    if let Some(why) = &r.skipped {
        return why
            .trim()
            .is_empty()
            .then(|| "skipped without a reason".to_string());
    }
    if !r.ok {
        return Some(format!(
            "max_rel_err {:.3e} (tolerance {:e} at {}), error {:?}",
            r.max_rel_err, r.tolerance, r.precision, r.error
        ));
    }
    if r.cases.len() < 2 {
        return Some(format!(
            "ran on {} shape(s), not two or more",
            r.cases.len()
        ));
    }
    None
}

#[test]
fn every_check_passes_or_is_skipped_with_a_reason_on_wgpu() {
    let seed = seed();
    println!("seed {seed}");
    let results = run_on(DeviceKind::Wgpu, CheckTask { seed })
        .expect("a wgpu device (ci/setup installs Mesa's lavapipe)");
    for r in &results {
        println!(
            "{:<24} {:>5} {:.3e} {:?} {}",
            r.name,
            r.ok,
            r.max_rel_err,
            r.error,
            r.skipped
                .as_ref()
                .map(|why| format!("skipped: {why}"))
                .unwrap_or_default()
        );
    }
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        check_names().collect::<Vec<_>>(),
        "one result per listed check, in order (seed {seed})"
    );
    let problems: Vec<String> = results
        .iter()
        .filter_map(|r| problem(r).map(|p| format!("{}: {p}", r.name)))
        .collect();
    assert!(
        problems.is_empty(),
        "{} check(s) failed with seed {seed} (replay: prior runtime check --device wgpu \
         --seed {seed}, or PRIOR_CHECK_SEED={seed} cargo test -p prior-runtime):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The counts `prior runtime check` prints agree with the results.
    let summary = summarize(&results);
    let skipped = results.iter().filter(|r| r.skipped.is_some()).count();
    assert_eq!(
        (summary.passed, summary.skipped, summary.failed),
        (results.len() - skipped, skipped, 0),
        "seed {seed}"
    );
    println!("{} passed, {} skipped", summary.passed, summary.skipped);
}

#[test]
fn a_missing_cuda_device_is_a_clear_error() {
    if prior_runtime::device::probe_cuda().missing.is_none() {
        println!("a CUDA device is present; the missing-device path is not exercised here");
        return;
    }
    let err = run_on(DeviceKind::Cuda, CheckTask { seed: 1 }).expect_err("cuda is absent");
    let msg = err.to_string();
    assert!(msg.contains("--device cuda was requested"), "{msg}");
}

/// Kernels run on views of one flat buffer exactly as on separate buffers:
/// the model keeps all parameters (and all gradients) in one allocation.
#[test]
fn kernels_on_views_of_a_flat_buffer_match_separate_buffers() {
    use cubecl::prelude::*;
    use prior_runtime::buffer::Buf;
    use prior_runtime::device::OnDevice;
    use prior_runtime::kernels::AdamW;
    use prior_runtime::kernels::{gelu, optim};

    struct ViewTest;
    impl OnDevice for ViewTest {
        type Output = ();
        fn run<R: Runtime>(self, client: ComputeClient<R>, _: &prior_runtime::DeviceInfo) {
            let align = Buf::<R, f32>::view_align();
            let (n1, n2) = (100usize, 37usize);
            let off2 = n1.div_ceil(align) * align;
            let total = off2 + n2;
            let p: Vec<f32> = (0..total)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let g: Vec<f32> = (0..total)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0)
                .collect();
            let flat_p = Buf::<R, f32>::upload(&client, &p);
            let flat_g = Buf::<R, f32>::upload(&client, &g);
            let flat_m = Buf::<R, f32>::upload(&client, &vec![0.0; total]);
            let flat_v = Buf::<R, f32>::upload(&client, &vec![0.0; total]);
            let h = AdamW {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: 0.1,
                step: 1,
            };
            // The second tensor gets no weight decay, as biases and norms.
            let h2 = AdamW {
                weight_decay: 0.0,
                ..h
            };
            optim::adamw(
                &client,
                &flat_p.view(0, n1),
                &flat_g.view(0, n1),
                &flat_m.view(0, n1),
                &flat_v.view(0, n1),
                h,
            )
            .unwrap();
            optim::adamw(
                &client,
                &flat_p.view(off2, n2),
                &flat_g.view(off2, n2),
                &flat_m.view(off2, n2),
                &flat_v.view(off2, n2),
                h2,
            )
            .unwrap();
            gelu::gelu_fwd(&client, &flat_g.view(off2, n2), &flat_m.view(off2, n2)).unwrap();
            let got = flat_p.download(&client).unwrap();
            let got_view = flat_p.view(off2, n2).download(&client).unwrap();
            let gelu = flat_m.view(off2, n2).download(&client).unwrap();
            let mut want = p.clone();
            let (mut m, mut v) = (vec![0.0; total], vec![0.0; total]);
            prior_runtime::reference::adamw(
                &mut want[..n1],
                &g[..n1],
                &mut m[..n1],
                &mut v[..n1],
                h,
            );
            prior_runtime::reference::adamw(
                &mut want[off2..],
                &g[off2..],
                &mut m[off2..],
                &mut v[off2..],
                h2,
            );
            for i in 0..total {
                assert!(
                    (got[i] - want[i]).abs() < 1e-6,
                    "element {i}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
            assert_eq!(got_view.len(), n2);
            assert_eq!(got_view, got[off2..].to_vec());
            let gelu_ref = prior_runtime::reference::gelu_fwd(&g[off2..]);
            for (a, b) in gelu.iter().zip(&gelu_ref) {
                assert!((a - b).abs() < 1e-6);
            }
            // The padding between the two views is untouched.
            assert_eq!(got[n1..off2], p[n1..off2]);
        }
    }
    run_on(DeviceKind::Wgpu, ViewTest).unwrap();
}

/// Launchers refuse buffers that disagree with their shape, naming the
/// kernel and the buffer, before anything runs: a row count that does not
/// divide, a length that differs, an attention shape its buffers do not
/// hold.
#[test]
fn launchers_refuse_buffers_that_do_not_fit_their_shape() {
    use cubecl::prelude::*;
    use prior_runtime::buffer::Buf;
    use prior_runtime::device::OnDevice;
    use prior_runtime::kernels::{attention, gelu, layernorm, AttnShape};

    struct ShapeTest;
    impl OnDevice for ShapeTest {
        type Output = Vec<String>;
        fn run<R: Runtime>(
            self,
            client: ComputeClient<R>,
            _: &prior_runtime::DeviceInfo,
        ) -> Vec<String> {
            let buf = |n: usize| Buf::<R, f32>::upload(&client, &vec![0.5; n]);
            let (x, gamma, beta, y, stats) = (buf(10), buf(3), buf(3), buf(10), buf(6));
            let s = AttnShape {
                batch: 1,
                seq: 4,
                heads: 2,
                head_dim: 8,
                rotary_dims: 2,
            };
            let (qkv, out, lse) = (buf(s.qkv_len()), buf(4 * 2 * 8), buf(2 * 4));
            vec![
                layernorm::layernorm_fwd(&client, &x, &gamma, &beta, &y, &stats, 1e-5)
                    .unwrap_err()
                    .to_string(),
                gelu::gelu_fwd(&client, &x, &gamma).unwrap_err().to_string(),
                attention::attention_fwd(&client, &qkv, &out, &buf(7), s)
                    .unwrap_err()
                    .to_string(),
                // The same shapes, right this time, run.
                attention::attention_fwd(&client, &qkv, &out, &lse, s)
                    .map(|()| "ran".to_string())
                    .unwrap_or_else(|e| e.to_string()),
            ]
        }
    }
    let got = run_on(DeviceKind::Wgpu, ShapeTest).unwrap();
    assert_eq!(
        got[0],
        "kernel layernorm_fwd: x has 10 elements, not a whole number of rows of 3"
    );
    assert_eq!(got[1], "kernel gelu_fwd: x has 10 elements, expected 3");
    assert_eq!(
        got[2],
        "kernel attention_fwd: lse has 7 elements, expected 8"
    );
    assert_eq!(got[3], "ran");
}
