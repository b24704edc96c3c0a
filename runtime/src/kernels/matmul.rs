//! Matrix multiplication with the transposes a linear layer's backward
//! needs, on cubek's matmul. A transpose is a stride change, never a copy.
//!
//! Strategies differ per device: tensor-core kernels on CUDA, unit kernels
//! elsewhere. [`matmul`] tries the device's fast strategy and falls back to
//! simpler ones when a strategy is unsupported (never panicking, unlike
//! cubek's `Auto`), remembering per client which one worked.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;
use cubek::matmul::definition::MatmulElems;
use cubek::matmul::launch::{launch_ref, Strategy};
use cubek::std::InputBinding;

use crate::buffer::Buf;
use crate::error::{Result, RuntimeError};

/// Fastest first: tensor cores (CUDA), then unit kernels, then the naive
/// kernel every device runs.
fn strategies() -> [Strategy; 3] {
    [
        Strategy::SimpleCyclicCmma(Default::default()),
        Strategy::SimpleUnit(Default::default()),
        Strategy::Naive,
    ]
}

/// The first strategy worth trying per runtime, learned from failures.
static CHOSEN: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<std::any::TypeId, usize>>,
> = std::sync::LazyLock::new(Default::default);

/// c[m, n] = op(a) @ op(b): `a` is `[m, k]` (`[k, m]` if `ta`), `b` is
/// `[k, n]` (`[n, k]` if `tb`), all row-major in memory. `c` is overwritten.
#[allow(clippy::too_many_arguments)]
pub fn matmul<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    a: &Buf<R, F>,
    b: &Buf<R, F>,
    c: &Buf<R, F>,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
) -> Result<()> {
    // The tensor handles below carry shapes, not bounds: an operand shorter
    // than its shape would be read (or written) past its end, into the
    // neighbouring tensor of a flat buffer.
    for (what, buf, need) in [("a", a, m * k), ("b", b, k * n), ("c", c, m * n)] {
        if buf.len() < need {
            return Err(RuntimeError::Kernel {
                kernel: "matmul",
                detail: format!(
                    "operand {what} holds {} elements, the shape m {m}, k {k}, n {n} needs {need}",
                    buf.len()
                ),
            });
        }
    }
    let ty = F::as_type_native_unchecked();
    let dt = ty.storage_type();
    // Row-major [m, k] has strides [k, 1]; its transpose view [k, m] stored
    // as [m, k]... i.e. an operand stored transposed reads with swapped strides.
    let a_strides = if ta { [m * k, 1, m] } else { [m * k, k, 1] };
    let b_strides = if tb { [k * n, 1, k] } else { [k * n, n, 1] };
    let run = |s: &Strategy| {
        let a = TensorHandle::<R>::new(a.handle().clone(), [1, m, k], a_strides, dt).binding();
        let b = TensorHandle::<R>::new(b.handle().clone(), [1, k, n], b_strides, dt).binding();
        let c = TensorHandle::<R>::new(c.handle().clone(), [1, m, n], [m * n, n, 1], dt).binding();
        let mut dtypes = MatmulElems::from_single_dtype(ty);
        launch_ref(
            s,
            client,
            InputBinding::Normal(a, dt),
            InputBinding::Normal(b, dt),
            c,
            &mut dtypes,
        )
    };
    let strategies = strategies();
    let key = std::any::TypeId::of::<R>();
    let first = CHOSEN
        .lock()
        .expect("matmul strategy")
        .get(&key)
        .copied()
        .unwrap_or(0);
    let mut last = None;
    for (i, s) in strategies.iter().enumerate().skip(first) {
        match run(s) {
            Ok(()) => {
                if i != first {
                    CHOSEN.lock().expect("matmul strategy").insert(key, i);
                }
                return Ok(());
            }
            Err(e) => last = Some(format!("{e:?}")),
        }
    }
    Err(RuntimeError::Kernel {
        kernel: "matmul",
        detail: last.unwrap_or_default(),
    })
}
