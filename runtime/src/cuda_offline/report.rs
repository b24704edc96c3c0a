//! One row per distinct kernel: recorded sources compiled by NVRTC in
//! parallel, their resources, and the occupancy those imply on the card.
//!
//! Kernels are distinct by cubecl's `KernelId` (type, comptime arguments,
//! cube size) and float type: the same kernel recorded by two models is
//! compiled once and lists both.

use serde::Serialize;

use super::nvrtc::{Compiled, Nvrtc};
use super::occupancy::{occupancy, Limiter, SmLimits};
use super::{Arch, KernelSource};

/// A recorded kernel and what it was recorded for.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub dtype: String,
    pub model: String,
    pub kernel: KernelSource,
}

/// One row of `prior runtime compile-check`.
#[derive(Debug, Clone, Serialize)]
pub struct KernelReport {
    pub name: String,
    pub dtype: String,
    pub ok: bool,
    pub registers: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
    /// Static (ptxas) plus dynamic (launch) shared memory per cube.
    pub shared_bytes: u32,
    /// Resident warps per SM over the SM's 64 warp slots.
    pub occupancy: f64,
    pub warps_per_sm: u32,
    pub limiter: Limiter,
    pub threads: u32,
    pub stack_bytes: u32,
    pub models: Vec<String>,
    /// The entry function, for finding the kernel in a profiler's output.
    pub entrypoint: String,
    /// cubecl's type name of the kernel (with its generic arguments).
    pub kernel_type: String,
    /// NVRTC's or cubecl's message when `ok` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// A readable name: a prior kernel's module path and function
/// (`kernels::layernorm::layernorm_fwd_kernel`); a cubek kernel's crate and
/// function with how it multiplies (`cubek::matmul::matmul_entry [wmma]`).
pub fn short_name(kernel: &KernelSource) -> String {
    let base = kernel
        .type_name
        .split('<')
        .next()
        .unwrap_or(kernel.type_name);
    let mut parts: Vec<&str> = base.split("::").collect();
    // cubecl names a kernel `module::kernel_fn::KernelFn`: drop the struct.
    if parts.len() >= 2 {
        let (f, s) = (parts[parts.len() - 2], parts[parts.len() - 1]);
        if s.to_lowercase() == f.replace('_', "") {
            parts.pop();
        }
    }
    let Some(&crate_name) = parts.first() else {
        return kernel.entrypoint.clone();
    };
    let function = parts.last().copied().unwrap_or(crate_name);
    if let Some(k) = crate_name.strip_prefix("cubek_") {
        let how = if kernel.source.contains("wmma::") {
            " [wmma]"
        } else if kernel.source.contains("mma.sync") {
            " [mma]"
        } else {
            ""
        };
        format!("cubek::{k}::{function}{how}")
    } else if crate_name.starts_with("prior_") && parts.len() > 1 {
        parts[1..].join("::")
    } else {
        parts.join("::")
    }
}

/// Compiles each distinct source of `recorded` for `arch` with `threads`
/// workers (`progress` is told, after each compile, how many distinct
/// sources there are in all), in the order first recorded.
pub fn compile_all(
    nvrtc: &Nvrtc,
    arch: Arch,
    recorded: Vec<Recorded>,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<KernelReport> {
    let mut rows: Vec<(Recorded, Vec<String>)> = Vec::new();
    for r in recorded {
        let same = rows
            .iter_mut()
            .find(|(x, _)| x.dtype == r.dtype && x.kernel.id == r.kernel.id);
        match same {
            Some((_, models)) => {
                if !models.contains(&r.model) {
                    models.push(r.model.clone());
                }
            }
            None => {
                let model = r.model.clone();
                rows.push((r, vec![model]));
            }
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Compiled>>> =
        rows.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((r, _)) = rows.get(i) else { break };
                let compiled = match &r.kernel.error {
                    Some(e) => Compiled {
                        log: e.clone(),
                        ..Default::default()
                    },
                    None => nvrtc.compile(&r.kernel.source, arch),
                };
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(compiled);
                progress(rows.len());
            });
        }
    });
    let limits = SmLimits::of(arch);
    // Variants of one kernel (cubek's matmul at several layouts and tile
    // sizes) are numbered in order of first launch.
    let names: Vec<(String, String)> = rows
        .iter()
        .map(|(r, _)| (short_name(&r.kernel), r.dtype.clone()))
        .collect();
    let mut seen: Vec<(String, String)> = Vec::new();
    let names: Vec<String> = names
        .iter()
        .map(|key| {
            let total = names.iter().filter(|n| *n == key).count();
            seen.push(key.clone());
            let nth = seen.iter().filter(|n| *n == key).count();
            if total > 1 {
                format!("{} #{nth}", key.0)
            } else {
                key.0.clone()
            }
        })
        .collect();
    rows.into_iter()
        .zip(names)
        .zip(results)
        .map(|(((r, models), name), c)| {
            let c = c
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_default();
            let k = &r.kernel;
            let shared = c.static_shared_bytes + k.dynamic_shared_bytes as u32;
            let occ = occupancy(limits, k.threads, c.registers, shared);
            KernelReport {
                name,
                dtype: r.dtype,
                ok: c.ok,
                registers: c.registers,
                spill_stores: c.spill_stores,
                spill_loads: c.spill_loads,
                shared_bytes: shared,
                occupancy: if c.ok { occ.fraction } else { 0.0 },
                warps_per_sm: if c.ok { occ.warps_per_sm } else { 0 },
                limiter: occ.limiter,
                threads: k.threads,
                stack_bytes: c.stack_bytes,
                models,
                entrypoint: k.entrypoint.clone(),
                kernel_type: k.type_name.to_string(),
                log: (!c.ok).then_some(c.log),
            }
        })
        .collect()
}
