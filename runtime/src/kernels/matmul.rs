//! Matrix multiplication with the transposes a linear layer's backward
//! needs, on cubek's matmul. A transpose is a stride change, never a copy.
//!
//! **Precision is explicit.** On CUDA, cubek runs f32 operands on tensor
//! cores as TF32 (10-bit mantissa, about 1e-3 relative error; `adjust_dtypes`
//! in cubek-matmul), so f32 callers choose: [`Precision::F32`] never uses a
//! tensor-core strategy for f32 operands (exact f32 products, f32 sums),
//! [`Precision::Tf32`] allows it where the device has TF32. Half-precision
//! operands always accumulate in f32 (`MatmulElems::from_globals`).
//!
//! **Strategies** differ per device: tensor cores (CUDA), then unit
//! kernels, then the naive kernel every device runs. [`matmul`] tries the
//! fastest allowed and falls back when cubek refuses one (never panicking,
//! unlike cubek's `Auto`). What failed is remembered per device, operand
//! type, precision and [`ShapeClass`] (what makes a strategy's launch fail:
//! transposes and alignment), so one shape a strategy refuses does not
//! demote every other matmul of the process; each demotion is logged once
//! with cubek's reason, and [`demotions`] lists them.

use cubecl::ir::StorageType;
use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::{launch_ref, Strategy};
use cubek::std::InputBinding;

use crate::buffer::Buf;
use crate::check::{rel_err, Checker};
use crate::error::{Result, RuntimeError};
use crate::reference as cpu;

/// How f32 operands are multiplied; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 products and sums: no tensor cores for f32 operands.
    F32,
    /// Tensor cores in TF32 where the device has them (CUDA); f32 elsewhere.
    Tf32,
}

impl Precision {
    /// TF32 where the device supports it (the fast path on CUDA), else f32.
    pub fn default_for<R: Runtime>(client: &ComputeClient<R>) -> Precision {
        if supports_tf32(client) {
            Precision::Tf32
        } else {
            Precision::F32
        }
    }

    /// The precision that actually runs for f32 operands on this device.
    pub fn effective<R: Runtime>(self, client: &ComputeClient<R>) -> Precision {
        match self {
            Precision::Tf32 if supports_tf32(client) => Precision::Tf32,
            _ => Precision::F32,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Tf32 => "tf32",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Precision, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "tf32" => Ok(Precision::Tf32),
            other => Err(format!(
                "unknown matmul precision {other:?}: use f32 or tf32"
            )),
        }
    }
}

/// Whether the device can run TF32 tensor-core math.
pub fn supports_tf32<R: Runtime>(client: &ComputeClient<R>) -> bool {
    client
        .properties()
        .supports_type(tf32::as_type_native_unchecked().storage_type())
}

/// cubek's strategies, fastest first (the first one on tensor cores).
const STRATEGIES: [&str; 3] = ["simple_cyclic_cmma", "simple_unit", "naive"];

fn strategy(i: usize) -> Strategy {
    match i {
        0 => Strategy::SimpleCyclicCmma(Default::default()),
        1 => Strategy::SimpleUnit(Default::default()),
        _ => Strategy::Naive,
    }
}

/// What decides whether cubek accepts a strategy for a problem, besides
/// the device and types: the operands' layouts and how their dimensions
/// align (the largest power of two up to 16 dividing m, k and n, which
/// bounds the vector width cubek can load with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeClass {
    pub ta: bool,
    pub tb: bool,
    pub align: [u8; 3],
}

impl ShapeClass {
    pub fn of(m: usize, k: usize, n: usize, ta: bool, tb: bool) -> ShapeClass {
        let align = |x: usize| (x.trailing_zeros().min(4)) as u8;
        ShapeClass {
            ta,
            tb,
            align: [align(m), align(k), align(n)],
        }
    }
}

/// A device (the address of its client's shared properties, one per
/// server), the operand type, the precision and the shape class.
/// The types are the operands' and the output's.
type CacheKey = (
    std::any::TypeId,
    usize,
    [StorageType; 2],
    Precision,
    ShapeClass,
);

/// A strategy cubek refused, and for what.
#[derive(Debug, Clone)]
pub struct Demotion {
    pub runtime: &'static str,
    pub operands: String,
    pub precision: Precision,
    pub shape: ShapeClass,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
}

#[derive(Default)]
struct StrategyCache {
    first: std::collections::HashMap<CacheKey, usize>,
    demotions: Vec<Demotion>,
}

static CACHE: std::sync::LazyLock<std::sync::Mutex<StrategyCache>> =
    std::sync::LazyLock::new(Default::default);

fn cache() -> std::sync::MutexGuard<'static, StrategyCache> {
    CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every demotion so far in this process.
pub fn demotions() -> Vec<Demotion> {
    cache().demotions.clone()
}

fn cache_key<R: Runtime, F: Float + CubeElement, O: Float + CubeElement>(
    client: &ComputeClient<R>,
    shape: ShapeClass,
    precision: Precision,
) -> CacheKey {
    key_of(
        std::any::TypeId::of::<R>(),
        client.properties() as *const _ as usize,
        [
            F::as_type_native_unchecked().storage_type(),
            O::as_type_native_unchecked().storage_type(),
        ],
        precision,
        shape,
    )
}

fn key_of(
    runtime: std::any::TypeId,
    device: usize,
    operands: [StorageType; 2],
    precision: Precision,
    shape: ShapeClass,
) -> CacheKey {
    (runtime, device, operands, precision, shape)
}

/// The first strategy `precision` allows for operands of type `F`.
fn allowed_from<F: Float + CubeElement>(precision: Precision) -> usize {
    let is_f32 = F::as_type_native_unchecked().storage_type()
        == f32::as_type_native_unchecked().storage_type();
    if is_f32 && precision == Precision::F32 {
        1
    } else {
        0
    }
}

/// c[m, n] = op(a) @ op(b): `a` is `[m, k]` (`[k, m]` if `ta`), `b` is
/// `[k, n]` (`[n, k]` if `tb`), all row-major in memory. `c` is overwritten.
/// The output may be of another type than the operands (bf16 operands, an
/// f32 weight gradient); products accumulate in f32 unless both are f64.
/// Returns the name of the strategy that ran.
#[allow(clippy::too_many_arguments)]
pub fn matmul<R: Runtime, F: Float + CubeElement, O: Float + CubeElement>(
    client: &ComputeClient<R>,
    a: &Buf<R, F>,
    b: &Buf<R, F>,
    c: &Buf<R, O>,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    precision: Precision,
) -> Result<&'static str> {
    // The tensor handles below carry shapes, not bounds: an operand shorter
    // than its shape would be read (or written) past its end, into the
    // neighbouring tensor of a flat buffer.
    for (what, len, need) in [
        ("a", a.len(), m * k),
        ("b", b.len(), k * n),
        ("c", c.len(), m * n),
    ] {
        if len < need {
            return Err(RuntimeError::Kernel {
                kernel: "matmul",
                detail: format!(
                    "operand {what} holds {len} elements, the shape m {m}, k {k}, n {n} needs {need}"
                ),
            });
        }
    }
    let ty = F::as_type_native_unchecked();
    let dt = ty.storage_type();
    let out_dt = O::as_type_native_unchecked().storage_type();
    // An operand stored transposed reads with swapped strides.
    let a_strides = if ta { [m * k, 1, m] } else { [m * k, k, 1] };
    let b_strides = if tb { [k * n, 1, k] } else { [k * n, n, 1] };
    let run = |s: &Strategy| {
        let a = TensorHandle::<R>::new(a.handle().clone(), [1, m, k], a_strides, dt).binding();
        let b = TensorHandle::<R>::new(b.handle().clone(), [1, k, n], b_strides, dt).binding();
        let c =
            TensorHandle::<R>::new(c.handle().clone(), [1, m, n], [m * n, n, 1], out_dt).binding();
        // Half-precision operands accumulate in f32; f32 ones in f32.
        let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems {
            lhs: dt,
            rhs: dt,
            out: out_dt,
        });
        launch_ref(
            s,
            client,
            InputBinding::Normal(a, dt),
            InputBinding::Normal(b, dt),
            c,
            &mut dtypes,
        )
    };
    let shape = ShapeClass::of(m, k, n, ta, tb);
    let key = cache_key::<R, F, O>(client, shape, precision);
    let mut allowed = allowed_from::<F>(precision.effective(client));
    if client.properties().features.matmul.cmma.is_empty() {
        // No tensor cores at all (wgpu on lavapipe): nothing to demote from.
        allowed = allowed.max(1);
    }
    let describe = || Demotion {
        runtime: std::any::type_name::<R>(),
        operands: if dt == out_dt {
            format!("{dt:?}")
        } else {
            format!("{dt:?} (out {out_dt:?})")
        },
        precision,
        shape,
        from: "",
        to: "",
        reason: String::new(),
    };
    let i = first_accepted(key, allowed, describe, |i| {
        run(&strategy(i)).map_err(|e| format!("{e:?}"))
    })?;
    Ok(STRATEGIES[i])
}

/// Runs strategies from the cached first one (else `allowed`) on, until
/// one is accepted; a demotion is cached under `key` and logged once.
fn first_accepted(
    key: CacheKey,
    allowed: usize,
    describe: impl Fn() -> Demotion,
    mut run: impl FnMut(usize) -> std::result::Result<(), String>,
) -> Result<usize> {
    let first = cache().first.get(&key).copied().unwrap_or(allowed);
    let mut last = None;
    for (i, name) in STRATEGIES.iter().enumerate().skip(first) {
        match run(i) {
            Ok(()) => {
                if i != first {
                    let demotion = Demotion {
                        from: STRATEGIES[first],
                        to: name,
                        reason: last.take().unwrap_or_default(),
                        ..describe()
                    };
                    eprintln!(
                        "prior-runtime: matmul {} operands, {} precision, {:?}: {} refused ({}); using {} for this device, type, precision and shape class",
                        demotion.operands,
                        demotion.precision,
                        demotion.shape,
                        demotion.from,
                        first_line(&demotion.reason),
                        demotion.to
                    );
                    let mut cache = cache();
                    cache.first.insert(key, i);
                    cache.demotions.push(demotion);
                }
                return Ok(i);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(RuntimeError::Kernel {
        kernel: "matmul",
        detail: last.unwrap_or_default(),
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    /// c[m, n] = sum_k op(a)[m, k] * op(b)[k, n], where op transposes when asked:
    /// `a` is stored `[m, k]` (or `[k, m]` if `ta`), `b` is `[k, n]` (or `[n, k]` if `tb`).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        n: usize,
        ta: bool,
        tb: bool,
    ) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    check_at(c, Precision::F32, "")?;
    if supports_tf32(c.client) {
        check_at(c, Precision::Tf32, "_tf32")?;
    } else {
        for name in ["matmul_fwd_tf32", "matmul_bwd_tf32"] {
            c.skip(
                name,
                "the device has no TF32 tensor cores (its f32 matmuls are exact f32)".into(),
            );
        }
    }
    Ok(())
}

fn check_at<R: Runtime>(
    c: &mut Checker<R>,
    precision: Precision,
    suffix: &str,
) -> Result<(), String> {
    let client = c.client;
    for (m, k, n) in [(33usize, 47usize, 29usize), (64, 128, 96), (1, 70, 130)] {
        // Forward of a linear layer: y = x W^T (W stored [n, k]), and the
        // plain product, both layouts of each operand.
        let mut errs = Vec::new();
        let mut failure = None;
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = c.rand(m * k);
            let b = c.rand(k * n);
            let out = Buf::<R, f32>::empty(client, m * n);
            match matmul(
                client,
                &c.up(&a),
                &c.up(&b),
                &out,
                m,
                k,
                n,
                ta,
                tb,
                precision,
            ) {
                Ok(_) => match c.down(&out) {
                    Ok(v) => errs.push(rel_err(&v, &cpu::matmul(&a, &b, m, k, n, ta, tb))),
                    Err(e) => failure = Some(e),
                },
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let case = format!("m {m}, k {k}, n {n}, all transposes");
        c.record(
            &format!("matmul_fwd{suffix}"),
            case,
            failure.map_or(Ok(errs), Err),
        );
        // Backward of y = x W^T: dx = dy W, dW = dy^T x.
        let x = c.rand(m * k);
        let w = c.rand(n * k);
        let dy = c.rand(m * n);
        let bwd = (|| {
            let (xb, wb, dyb) = (c.up(&x), c.up(&w), c.up(&dy));
            let dx = Buf::<R, f32>::empty(client, m * k);
            let dw = Buf::<R, f32>::empty(client, n * k);
            matmul(client, &dyb, &wb, &dx, m, n, k, false, false, precision)
                .map_err(|e| e.to_string())?;
            matmul(client, &dyb, &xb, &dw, n, m, k, true, false, precision)
                .map_err(|e| e.to_string())?;
            Ok(vec![
                rel_err(&c.down(&dx)?, &cpu::matmul(&dy, &w, m, n, k, false, false)),
                rel_err(&c.down(&dw)?, &cpu::matmul(&dy, &x, n, m, k, true, false)),
            ])
        })();
        c.record(
            &format!("matmul_bwd{suffix}"),
            format!("linear {k} -> {n}, {m} rows"),
            bwd,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake device whose tensor-core strategy refuses operands with an
    /// odd m: one such matmul demotes its shape class only, and an aligned
    /// matmul on the same device afterwards still gets tensor cores.
    #[test]
    fn a_shape_refused_by_tensor_cores_demotes_only_its_shape_class() {
        let f32_type = f32::as_type_native_unchecked().storage_type();
        let key = |m, k, n| {
            key_of(
                std::any::TypeId::of::<()>(),
                0x5eed_usize,
                [f32_type, f32_type],
                Precision::Tf32,
                ShapeClass::of(m, k, n, false, true),
            )
        };
        let describe = |shape| {
            move || Demotion {
                runtime: "test",
                operands: "f32".into(),
                precision: Precision::Tf32,
                shape,
                from: "",
                to: "",
                reason: String::new(),
            }
        };
        let calls = std::cell::RefCell::new(Vec::new());
        let device = |m: usize| {
            let calls = &calls;
            move |i: usize| {
                calls.borrow_mut().push((m, i));
                if i == 0 && m % 2 == 1 {
                    Err("odd rows: no tensor-core tiling".to_string())
                } else {
                    Ok(())
                }
            }
        };
        let odd = ShapeClass::of(33, 64, 64, false, true);
        let got = first_accepted(key(33, 64, 64), 0, describe(odd), device(33)).unwrap();
        assert_eq!(got, 1, "the odd shape falls back to the unit strategy");
        let aligned = ShapeClass::of(64, 64, 64, false, true);
        let got = first_accepted(key(64, 64, 64), 0, describe(aligned), device(64)).unwrap();
        assert_eq!(
            got, 0,
            "an aligned shape after a refused one keeps tensor cores"
        );
        calls.borrow_mut().clear();
        let got = first_accepted(key(35, 64, 64), 0, describe(odd), device(35)).unwrap();
        assert_eq!(got, 1);
        assert_eq!(
            *calls.borrow(),
            vec![(35, 1)],
            "the same class starts at the strategy that worked"
        );
        let logged: Vec<Demotion> = demotions()
            .into_iter()
            .filter(|d| d.runtime == "test")
            .collect();
        assert_eq!(logged.len(), 1, "logged once: {logged:?}");
        assert_eq!(
            (logged[0].from, logged[0].to),
            ("simple_cyclic_cmma", "simple_unit")
        );
        assert!(logged[0].reason.contains("odd rows"));
    }

    #[test]
    fn exact_f32_skips_tensor_cores_and_half_types_use_them() {
        assert_eq!(allowed_from::<f32>(Precision::F32), 1);
        assert_eq!(allowed_from::<f32>(Precision::Tf32), 0);
        assert_eq!(allowed_from::<half::bf16>(Precision::F32), 0);
        assert_eq!(
            ShapeClass::of(33, 64, 48, true, false).align,
            [0, 4, 4],
            "alignment is capped at 16"
        );
    }
}
