//! `prior runtime check`: every kernel, forward and backward, on fresh
//! random inputs (several shapes, sizes off the tile sizes) against the CPU
//! reference. The same checks run in `cargo test` on wgpu.
//!
//! Error measure: the largest absolute difference over a tensor divided by
//! the largest magnitude in the reference tensor (`max_rel_err`), which is
//! stable where single elements are near zero. Any NaN or infinity fails.
//!
//! Every check is listed in [`GROUPS`], and [`run_checks`] returns one
//! [`KernelCheck`] per name there: passed, failed, or skipped with the
//! reason (a type the device lacks). A listed check that records nothing,
//! or a result under a name not listed, comes back failed, so no check can
//! go missing from the report (and from the tests that assert it) without
//! notice.
//!
//! Each group's check lives beside its kernels (`kernels::<op>::check`);
//! this module holds what they share: the [`Checker`] that draws inputs and
//! records results, the error measure, and the list.

use cubecl::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::buffer::Buf;
use crate::kernels;
use crate::kernels::matmul::Precision;

/// Tolerance on `max_rel_err` for f32 kernels.
pub const F32_TOLERANCE: f64 = 2e-4;
/// Tolerance for matmuls in TF32 (inputs rounded to a 10-bit mantissa,
/// relative error about 1e-3 per product; sums stay f32).
pub const TF32_TOLERANCE: f64 = 5e-3;

/// The tolerance of a check at `precision`.
pub fn tolerance(precision: Precision) -> f64 {
    match precision {
        Precision::F32 => F32_TOLERANCE,
        Precision::Tf32 => TF32_TOLERANCE,
    }
}

/// The precision a check runs at, by its name (`*_tf32` in TF32).
pub fn precision_of(name: &str) -> Precision {
    if name.ends_with("_tf32") {
        Precision::Tf32
    } else {
        Precision::F32
    }
}

/// Every check [`run_checks`] records, by group (one check function per
/// group), in the order they run.
pub const GROUPS: [(&str, &[&str]); 10] = [
    ("embedding", &["embedding_fwd", "embedding_bwd"]),
    ("layernorm", &["layernorm_fwd", "layernorm_bwd"]),
    (
        "matmul",
        &[
            "matmul_fwd",
            "matmul_bwd",
            "matmul_fwd_tf32",
            "matmul_bwd_tf32",
        ],
    ),
    ("elementwise", &["bias_fwd", "bias_bwd", "residual_add"]),
    (
        "gelu",
        &["gelu_fwd", "gelu_bwd", "bias_gelu_fwd", "gelu_bias_bwd"],
    ),
    ("rotary", &["rotary_fwd", "rotary_bwd"]),
    ("attention", &["attention_fwd", "attention_bwd"]),
    ("cross_entropy", &["cross_entropy_fwd", "cross_entropy_bwd"]),
    (
        "optim",
        &[
            "adamw",
            "grad_norm",
            "grad_clip",
            "grad_unscale_clip",
            "adamw_clipped",
        ],
    ),
    ("casts", &["cast_f32_bf16", "cast_f32_f16"]),
];

/// The names of every check, in order (what [`run_checks`] returns one
/// result for each of).
pub fn check_names() -> impl Iterator<Item = &'static str> {
    GROUPS.iter().flat_map(|(_, names)| names.iter().copied())
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelCheck {
    pub name: String,
    /// Ran and stayed within tolerance. False for a failed or skipped check.
    pub ok: bool,
    /// What the kernel computed in (`tf32` only for TF32 matmuls).
    pub precision: Precision,
    /// The bound on `max_rel_err` for that precision.
    pub tolerance: f64,
    pub max_rel_err: f64,
    /// Shapes the kernel ran at.
    pub cases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the check could not run on this device; `None` when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl KernelCheck {
    pub fn failed(&self) -> bool {
        !self.ok && self.skipped.is_none()
    }
}

/// How many checks passed, failed and were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CheckSummary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub fn summarize(results: &[KernelCheck]) -> CheckSummary {
    let mut s = CheckSummary::default();
    for r in results {
        if r.skipped.is_some() {
            s.skipped += 1;
        } else if r.ok {
            s.passed += 1;
        } else {
            s.failed += 1;
        }
    }
    s
}

/// Largest |a - b| over the largest |b|; infinite if `a` holds NaN/inf or
/// the lengths differ.
pub fn rel_err(device: &[f32], reference: &[f32]) -> f64 {
    if device.len() != reference.len() || device.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let scale = reference
        .iter()
        .fold(0f64, |m, &x| m.max(x.abs() as f64))
        .max(1e-30);
    device
        .iter()
        .zip(reference)
        .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()))
        / scale
}

/// A launch refused (its buffers do not fit its shape) as the text a
/// check records.
pub(crate) fn launch_err(e: crate::error::RuntimeError) -> String {
    e.to_string()
}

pub(crate) struct Checker<'a, R: Runtime> {
    pub(crate) client: &'a ComputeClient<R>,
    pub(crate) rng: ChaCha8Rng,
    results: Vec<KernelCheck>,
}

impl<R: Runtime> Checker<'_, R> {
    pub(crate) fn rand(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| self.rng.random_range(-1.0f32..1.0))
            .collect()
    }

    pub(crate) fn up(&self, v: &[f32]) -> Buf<R, f32> {
        Buf::upload(self.client, v)
    }

    pub(crate) fn down(&self, b: &Buf<R, f32>) -> Result<Vec<f32>, String> {
        b.download(self.client).map_err(|e| e.to_string())
    }

    fn entry(&mut self, name: &str) -> &mut KernelCheck {
        entry(&mut self.results, name)
    }

    /// Records `errs` (one per compared tensor, per case) under `name`.
    pub(crate) fn record(&mut self, name: &str, case: String, result: Result<Vec<f64>, String>) {
        let r = self.entry(name);
        r.cases.push(case);
        match result {
            Ok(errs) => {
                for e in errs {
                    r.max_rel_err = r.max_rel_err.max(e);
                }
                r.ok &= r.max_rel_err <= r.tolerance;
            }
            Err(e) => {
                r.ok = false;
                r.max_rel_err = f64::INFINITY;
                r.error.get_or_insert(e);
            }
        }
    }

    /// Records that `name` cannot run here, and why.
    pub(crate) fn skip(&mut self, name: &str, why: String) {
        let r = self.entry(name);
        r.ok = false;
        r.skipped = Some(why);
    }
}

/// The result recorded under `name`, created (passing, no cases) if none is.
fn entry<'a>(results: &'a mut Vec<KernelCheck>, name: &str) -> &'a mut KernelCheck {
    let i = match results.iter().position(|r| r.name == name) {
        Some(i) => i,
        None => {
            let precision = precision_of(name);
            results.push(KernelCheck {
                name: name.into(),
                ok: true,
                precision,
                tolerance: tolerance(precision),
                max_rel_err: 0.0,
                cases: vec![],
                error: None,
                skipped: None,
            });
            results.len() - 1
        }
    };
    &mut results[i]
}

/// After a group ran: each of its `names` that `results[first..]` lacks is
/// recorded failed with `missing` (why it is absent), and each result there
/// under a name not in `names` is marked failed.
fn settle(
    results: &mut Vec<KernelCheck>,
    first: usize,
    group: &str,
    names: &[&str],
    missing: &str,
) {
    for name in names {
        if !results[first..].iter().any(|r| r.name == *name) {
            let r = entry(results, name);
            r.ok = false;
            r.max_rel_err = f64::INFINITY;
            r.error = Some(missing.to_string());
        }
    }
    for r in &mut results[first..] {
        if !names.contains(&r.name.as_str()) {
            r.ok = false;
            r.skipped = None;
            r.error = Some(format!("not listed under {group} in check::GROUPS"));
        }
    }
}

/// One group's checks: records its results, or stops at a launch that was
/// refused (its unrecorded checks then fail with that reason).
type CheckGroup<R> = fn(&mut Checker<R>) -> Result<(), String>;

/// Runs every check with inputs drawn from `seed`: one result per name of
/// [`GROUPS`], in that order (and any result recorded under a name not
/// listed there, marked failed).
pub fn run_checks<R: Runtime>(client: &ComputeClient<R>, seed: u64) -> Vec<KernelCheck> {
    let mut c = Checker {
        client,
        rng: ChaCha8Rng::seed_from_u64(seed),
        results: Vec::new(),
    };
    // In the order of GROUPS.
    let runs: [CheckGroup<R>; 10] = [
        kernels::embedding::check,
        kernels::layernorm::check,
        kernels::matmul::check,
        kernels::elementwise::check,
        kernels::gelu::check,
        kernels::rotary::check,
        kernels::attention::check,
        kernels::cross_entropy::check,
        kernels::optim::check,
        kernels::elementwise::check_casts,
    ];
    for ((group, names), run) in GROUPS.into_iter().zip(runs) {
        let first = c.results.len();
        // A kernel launch cubecl rejects can panic; that fails this group's
        // unrecorded checks, with the panic's text, instead of ending the run.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut c)));
        let missing = match outcome {
            Ok(Ok(())) => {
                format!("recorded nothing: the {group} checks neither ran nor skipped it")
            }
            Ok(Err(e)) => format!("the {group} checks stopped at a launch: {e}"),
            Err(p) => format!(
                "the {group} checks panicked: {}",
                crate::device::panic_message(&p)
            ),
        };
        settle(&mut c.results, first, group, names, &missing);
    }
    c.results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(name: &str) -> KernelCheck {
        KernelCheck {
            name: name.into(),
            ok: true,
            precision: Precision::F32,
            tolerance: F32_TOLERANCE,
            max_rel_err: 1e-7,
            cases: vec!["a".into(), "b".into()],
            error: None,
            skipped: None,
        }
    }

    #[test]
    fn a_listed_check_that_records_nothing_comes_back_failed_with_the_reason() {
        let mut results = vec![passed("grad_norm")];
        settle(
            &mut results,
            0,
            "optim",
            &["adamw", "grad_norm", "grad_clip"],
            "recorded nothing",
        );
        let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["grad_norm", "adamw", "grad_clip"]);
        assert!(results[0].ok);
        for r in &results[1..] {
            assert!(r.failed(), "{r:?}");
            assert_eq!(r.error.as_deref(), Some("recorded nothing"));
        }
        assert_eq!(
            summarize(&results),
            CheckSummary {
                passed: 1,
                failed: 2,
                skipped: 0
            }
        );
    }

    #[test]
    fn a_result_under_an_unlisted_name_fails_and_a_skip_stays_a_skip() {
        let mut results = vec![passed("earlier group")];
        let mut skipped = passed("cast_f32_bf16");
        skipped.ok = false;
        skipped.skipped = Some("no bf16".into());
        results.extend([skipped, passed("cast_f32_f8")]);
        settle(
            &mut results,
            1,
            "casts",
            &["cast_f32_bf16", "cast_f32_f16"],
            "missing",
        );
        assert!(results[0].ok, "results before `first` are left alone");
        assert!(!results[1].failed() && results[1].skipped.is_some());
        assert!(results[2].failed());
        assert!(results[2].error.as_deref().unwrap().contains("not listed"));
        assert!(results[3].failed() && results[3].name == "cast_f32_f16");
        assert_eq!(
            summarize(&results),
            CheckSummary {
                passed: 1,
                failed: 2,
                skipped: 1
            }
        );
    }

    #[test]
    fn the_list_names_every_check_once() {
        let names: Vec<&str> = check_names().collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for must in ["layernorm_bwd", "grad_clip", "cast_f32_bf16"] {
            assert!(names.contains(&must), "{must}");
        }
    }
}
