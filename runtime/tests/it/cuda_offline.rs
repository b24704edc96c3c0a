//! The compile-only CUDA runtime: kernels recorded once each as CUDA C++
//! for Hopper, the matmul's precision and strategy choice as on a card, and
//! NVRTC's report read.
//!
//! NVRTC comes from the venv `ci/setup` makes; without it the NVRTC test
//! says so and returns, unless `PRIOR_REQUIRE_NVRTC=1` (set by `ci/test`),
//! where its absence fails.

use prior_runtime::buffer::Buf;
use prior_runtime::cuda_offline::census::{launch_step_kernels, CensusShape};
use prior_runtime::cuda_offline::nvrtc::Nvrtc;
use prior_runtime::cuda_offline::report::{compile_all, Recorded};
use prior_runtime::cuda_offline::{compile_client, take_kernels, Arch};
use prior_runtime::device::{run_on, DeviceInfo, DeviceKind, OnDevice};
use prior_runtime::kernels::matmul::{self, supports_tf32, Precision};

const TINY: CensusShape = CensusShape {
    batch: 2,
    seq: 40,
    d_model: 64,
    heads: 4,
    rotary_dims: 4,
    d_ff: 256,
    vocab: 300,
};

#[test]
fn a_step_is_recorded_as_cuda_source_once_per_kernel_with_launches_counted() {
    let client = compile_client(Arch::SM_90A);
    launch_step_kernels::<_, f32>(&client, TINY, Precision::Tf32).expect("census");
    let once = take_kernels(&client);
    assert!(once.len() >= 20, "{} kernels", once.len());
    for k in &once {
        assert!(k.error.is_none(), "{}: {:?}", k.type_name, k.error);
        assert!(
            k.source.contains("__global__") && k.source.contains(&k.entrypoint),
            "{} has no entry {:?} in its source",
            k.type_name,
            k.entrypoint
        );
        assert!(k.threads > 0 && k.threads <= 1024);
    }
    assert!(
        once.iter().any(|k| k.type_name.contains("flash_fwd")),
        "the attention forward was recorded"
    );
    // The same step again: the same kernels, each launched twice as often.
    launch_step_kernels::<_, f32>(&client, TINY, Precision::Tf32).expect("census");
    launch_step_kernels::<_, f32>(&client, TINY, Precision::Tf32).expect("census");
    let twice = take_kernels(&client);
    let names = |v: &[prior_runtime::cuda_offline::KernelSource]| {
        v.iter().map(|k| k.entrypoint.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&once), names(&twice));
    for (a, b) in once.iter().zip(&twice) {
        assert_eq!(2 * a.launches, b.launches, "{}", a.entrypoint);
    }
    // A separate client has its own log.
    let other = compile_client(Arch::SM_90A);
    assert!(take_kernels(&other).is_empty());
}

#[test]
fn bf16_kernels_are_cuda_bf16_code() {
    let client = compile_client(Arch::SM_90A);
    launch_step_kernels::<_, half::bf16>(&client, TINY, Precision::F32).expect("census");
    let kernels = take_kernels(&client);
    let attention = kernels
        .iter()
        .find(|k| k.type_name.contains("flash_fwd"))
        .expect("attention recorded");
    assert!(
        attention.source.contains("bfloat16"),
        "{}",
        attention.source
    );
}

/// On Hopper the bf16 attention's tile products run on tensor cores and
/// the f32 ones (which have no cmma) on the scalar path; each flash kernel
/// takes its tiles in dynamic shared memory.
#[test]
fn bf16_flash_attention_uses_tensor_cores_and_f32_does_not() {
    let uses_wmma = |k: &prior_runtime::cuda_offline::KernelSource| k.source.contains("wmma::");
    for bf16 in [true, false] {
        let client = compile_client(Arch::SM_90A);
        if bf16 {
            launch_step_kernels::<_, half::bf16>(&client, TINY, Precision::F32).expect("census");
        } else {
            launch_step_kernels::<_, f32>(&client, TINY, Precision::F32).expect("census");
        }
        let flash: Vec<_> = take_kernels(&client)
            .into_iter()
            .filter(|k| k.type_name.contains("flash_") && !k.type_name.contains("delta"))
            .collect();
        assert_eq!(flash.len(), 3, "forward, dK/dV and dQ kernels");
        for k in &flash {
            assert_eq!(uses_wmma(k), bf16, "{} (bf16: {bf16})", k.type_name);
            assert!(
                k.dynamic_shared_bytes > 0,
                "{} has no shared memory",
                k.type_name
            );
            // Fragment loads and stores need 32-byte aligned tiles: every
            // shared array's offset in the dynamic buffer is a multiple.
            let offsets: Vec<usize> = k
                .source
                .match_indices("&dynamic_shared_mem[")
                .map(|(at, m)| {
                    let rest = &k.source[at + m.len()..];
                    rest[..rest.find(']').expect("]")].parse().expect("offset")
                })
                .collect();
            assert!(offsets.len() >= 7, "{}: {offsets:?}", k.type_name);
            assert!(
                offsets.iter().all(|o| o % 32 == 0),
                "{}: {offsets:?}",
                k.type_name
            );
        }
    }
}

fn f32_matmul_source(precision: Precision) -> (&'static str, String) {
    let client = compile_client(Arch::SM_90A);
    let (m, k, n) = (64, 128, 96);
    let a = Buf::<_, f32>::empty(&client, m * k);
    let b = Buf::<_, f32>::empty(&client, k * n);
    let c = Buf::<_, f32>::empty(&client, m * n);
    let strategy = matmul::matmul(&client, &a, &b, &c, m, k, n, false, true, precision)
        .expect("a strategy for an aligned f32 matmul");
    let kernels = take_kernels(&client);
    assert_eq!(kernels.len(), 1, "one matmul kernel");
    (strategy, kernels[0].source.clone())
}

#[test]
fn f32_matmuls_on_hopper_are_exact_unless_tf32_is_asked_for() {
    let client = compile_client(Arch::SM_90A);
    assert!(supports_tf32(&client), "sm_90a has TF32");
    assert_eq!(Precision::default_for(&client), Precision::Tf32);
    let (strategy, source) = f32_matmul_source(Precision::Tf32);
    assert_eq!(strategy, "simple_cyclic_cmma");
    assert!(
        source.contains("wmma::") && source.contains("precision::tf32"),
        "TF32 WMMA:\n{source}"
    );
    let (strategy, source) = f32_matmul_source(Precision::F32);
    assert_eq!(strategy, "simple_unit");
    assert!(!source.contains("wmma::"), "no tensor cores in exact f32");
}

struct Tf32OnWgpu;
impl OnDevice for Tf32OnWgpu {
    type Output = (bool, Precision);
    fn run<R: cubecl::Runtime>(
        self,
        client: cubecl::prelude::ComputeClient<R>,
        _: &DeviceInfo,
    ) -> (bool, Precision) {
        (supports_tf32(&client), Precision::Tf32.effective(&client))
    }
}

#[test]
fn wgpu_has_no_tf32_so_tf32_runs_as_f32_there() {
    let (tf32, effective) = run_on(DeviceKind::Wgpu, Tf32OnWgpu).expect("wgpu");
    assert!(!tf32);
    assert_eq!(effective, Precision::F32);
}

#[test]
fn nvrtc_compiles_the_recorded_kernels_for_hopper_and_reports_failures_as_rows() {
    let nvrtc = match Nvrtc::load(None) {
        Ok(n) => n,
        Err(e) if std::env::var_os("PRIOR_REQUIRE_NVRTC").is_none() => {
            println!("skipped: {e} (set PRIOR_REQUIRE_NVRTC=1 to fail instead)");
            return;
        }
        Err(e) => panic!("PRIOR_REQUIRE_NVRTC is set: {e}"),
    };
    let client = compile_client(Arch::SM_90A);
    launch_step_kernels::<_, half::bf16>(&client, TINY, Precision::F32).expect("census");
    let mut recorded: Vec<Recorded> = take_kernels(&client)
        .into_iter()
        .map(|kernel| Recorded {
            dtype: "bf16".into(),
            model: "tiny".into(),
            kernel,
        })
        .collect();
    let n = recorded.len();
    // A kernel of another type (so another KernelId), its source broken.
    let f32_client = compile_client(Arch::SM_90A);
    launch_step_kernels::<_, f32>(&f32_client, TINY, Precision::F32).expect("census");
    let mut broken = take_kernels(&f32_client).remove(0);
    broken.source = broken
        .source
        .replace("__global__", "__global__ this_is_not_cuda");
    broken.type_name = "broken";
    recorded.push(Recorded {
        dtype: "bf16".into(),
        model: "tiny".into(),
        kernel: broken,
    });
    let done = std::sync::atomic::AtomicUsize::new(0);
    let rows = compile_all(&nvrtc, Arch::SM_90A, recorded, 2, &|_distinct| {
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(rows.len(), n + 1);
    assert_eq!(done.into_inner(), n + 1, "progress after each compile");
    for r in &rows[..n] {
        assert!(r.ok, "{}: {:?}", r.name, r.log);
        assert!(
            r.registers > 0 && r.occupancy > 0.0 && r.occupancy <= 1.0,
            "{r:?}"
        );
    }
    let failed = &rows[n];
    assert!(!failed.ok && failed.occupancy == 0.0);
    let log = failed.log.as_deref().unwrap_or("");
    assert!(log.contains("error"), "NVRTC's log is carried: {log}");
    // Shared memory counts what the kernel launches with.
    let layernorm = rows
        .iter()
        .find(|r| r.name.contains("layernorm_fwd"))
        .expect("layernorm compiled");
    assert!(layernorm.shared_bytes > 0, "{layernorm:?}");
}
