//! Every kernel forward and backward on wgpu (lavapipe on machines without
//! a GPU) against the CPU reference, on fresh random inputs each run (the
//! seed is printed so a failure can be replayed with `prior runtime check
//! --device wgpu --seed N`).

use prior_runtime::check::F32_TOLERANCE;
use prior_runtime::device::{run_on, DeviceKind};
use prior_runtime::CheckTask;

const EXPECTED: [&str; 18] = [
    "embedding_fwd",
    "embedding_bwd",
    "layernorm_fwd",
    "layernorm_bwd",
    "matmul_fwd",
    "matmul_bwd",
    "gelu_fwd",
    "gelu_bwd",
    "bias_fwd",
    "bias_bwd",
    "rotary_fwd",
    "rotary_bwd",
    "attention_fwd",
    "attention_bwd",
    "cross_entropy_fwd",
    "cross_entropy_bwd",
    "adamw",
    "grad_norm",
];

#[test]
fn every_kernel_matches_the_cpu_reference_on_wgpu() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let results = run_on(DeviceKind::Wgpu, CheckTask { seed })
        .expect("a wgpu device (ci/setup installs Mesa's lavapipe)");
    for r in &results {
        println!(
            "{:<20} {:>5} {:.3e} {:?}",
            r.name, r.ok, r.max_rel_err, r.error
        );
    }
    for name in EXPECTED {
        let r = results
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} was not checked"));
        assert!(
            r.ok,
            "{name}: max_rel_err {} > {F32_TOLERANCE} (seed {seed}) {:?}",
            r.max_rel_err, r.error
        );
        assert!(r.cases.len() >= 2, "{name} ran on fewer than two shapes");
    }
}

#[test]
fn a_missing_cuda_device_is_a_clear_error() {
    if prior_runtime::device::probe_cuda().missing.is_none() {
        println!("a CUDA device is present; the missing-device path is not exercised here");
        return;
    }
    let err = run_on(DeviceKind::Cuda, CheckTask { seed: 1 })
        .err()
        .expect("cuda is absent");
    let msg = err.to_string();
    assert!(msg.contains("--device cuda was requested"), "{msg}");
}
