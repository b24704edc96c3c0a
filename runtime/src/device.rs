//! Device selection: CUDA (cubecl-cuda, compiled at run time by NVRTC),
//! wgpu over Vulkan (any GPU, or Mesa's software driver on a plain CPU),
//! or `cpu`, the model crate's native CPU backend, for the tasks that
//! have one ([`OnDevice::run_native`]).
//!
//! cubecl panics when asked for a CUDA client on a machine without a
//! driver, so CUDA is probed first through cudarc's dynamic loader (and
//! client creation is wrapped in `catch_unwind` besides): a requested device
//! that is absent is an error saying what was looked for, and `auto` says
//! what it chose and why.

use std::fmt;
use std::str::FromStr;

use cubecl::cuda::{CudaDevice, CudaRuntime};
use cubecl::prelude::*;
use cubecl::wgpu::{WgpuDevice, WgpuRuntime};

use crate::error::{Result, RuntimeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Auto,
    Cuda,
    Wgpu,
    /// The native CPU backend of the model crate (no cubecl device): for
    /// the tasks that have one (training and evaluation).
    Cpu,
}

impl FromStr for DeviceKind {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<DeviceKind> {
        match s {
            "auto" => Ok(DeviceKind::Auto),
            "cuda" => Ok(DeviceKind::Cuda),
            "wgpu" => Ok(DeviceKind::Wgpu),
            "cpu" => Ok(DeviceKind::Cpu),
            other => Err(RuntimeError::Device(format!(
                "unknown device {other:?}: use auto, cuda, wgpu or cpu"
            ))),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Auto => "auto",
            DeviceKind::Cuda => "cuda",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cpu => "cpu",
        })
    }
}

/// What probing CUDA found.
#[derive(Debug, Clone)]
pub struct CudaProbe {
    pub devices: usize,
    /// Why CUDA cannot be used, when it cannot.
    pub missing: Option<String>,
}

/// Looks for the CUDA driver, a device and NVRTC without panicking.
pub fn probe_cuda() -> CudaProbe {
    let probe = std::panic::catch_unwind(|| {
        // SAFETY: dlopen of the driver library; no other effect.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("no CUDA driver (libcuda.so) could be loaded".to_string());
        }
        cudarc::driver::result::init()
            .map_err(|e| format!("the CUDA driver failed to start: {e:?}"))?;
        let n = cudarc::driver::result::device::get_count()
            .map_err(|e| format!("counting CUDA devices failed: {e:?}"))?;
        if n <= 0 {
            return Err("the CUDA driver reports no devices".to_string());
        }
        // SAFETY: dlopen of the NVRTC library; no other effect.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(
                "CUDA devices found, but no NVRTC (libnvrtc.so): set CUDA_PATH to a CUDA toolkit"
                    .to_string(),
            );
        }
        if cubecl::cuda::install::cuda_path().is_none() {
            return Err("CUDA devices found, but no CUDA toolkit headers: set CUDA_PATH (e.g. /usr/local/cuda)".to_string());
        }
        Ok(n as usize)
    });
    match probe {
        Ok(Ok(devices)) => CudaProbe {
            devices,
            missing: None,
        },
        Ok(Err(why)) => CudaProbe {
            devices: 0,
            missing: Some(why),
        },
        Err(_) => CudaProbe {
            devices: 0,
            missing: Some("probing the CUDA driver panicked".into()),
        },
    }
}

/// The device a run uses, and why.
#[derive(Debug, Clone)]
pub struct DeviceChoice {
    pub kind: DeviceKind,
    pub reason: String,
}

/// Resolves `auto` and checks that a requested device exists.
pub fn choose(kind: DeviceKind) -> Result<DeviceChoice> {
    match kind {
        DeviceKind::Cuda => {
            let p = probe_cuda();
            match p.missing {
                None => Ok(DeviceChoice {
                    kind,
                    reason: format!("requested; {} CUDA device(s) found", p.devices),
                }),
                Some(why) => Err(RuntimeError::Device(format!(
                    "--device cuda was requested, but {why}"
                ))),
            }
        }
        DeviceKind::Wgpu | DeviceKind::Cpu => Ok(DeviceChoice {
            kind,
            reason: "requested".into(),
        }),
        DeviceKind::Auto => {
            let p = probe_cuda();
            Ok(match p.missing {
                None => DeviceChoice {
                    kind: DeviceKind::Cuda,
                    reason: format!("auto: {} CUDA device(s) found", p.devices),
                },
                Some(why) => DeviceChoice {
                    kind: DeviceKind::Wgpu,
                    reason: format!("auto: wgpu, because {why}"),
                },
            })
        }
    }
}

/// Work generic over the runtime, run on whichever device was chosen.
pub trait OnDevice {
    type Output;
    fn run<R: Runtime>(self, client: ComputeClient<R>, device: &DeviceInfo) -> Self::Output;

    /// The task on the native CPU backend (`--device cpu`), or the task
    /// back when it has none; [`run_on`] then refuses `cpu`.
    fn run_native(self, device: &DeviceInfo) -> std::result::Result<Self::Output, Self>
    where
        Self: Sized,
    {
        let _ = device;
        Err(self)
    }
}

/// A description of the device a task runs on.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub kind: DeviceKind,
    pub name: String,
    pub reason: String,
    /// Chosen by `auto` rather than asked for: a task may then decline the
    /// native CPU backend ([`OnDevice::run_native`]) and run on wgpu.
    pub auto: bool,
}

fn client_or_error<R: Runtime>(
    make: impl FnOnce() -> ComputeClient<R> + std::panic::UnwindSafe,
    what: &str,
) -> Result<ComputeClient<R>> {
    std::panic::catch_unwind(make)
        .map_err(|p| RuntimeError::Device(format!("could not start {what}: {}", panic_message(&p))))
}

/// The text a caught panic carried.
pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown reason".into())
}

/// Chooses the device and runs `task` on it.
pub fn run_on<T: OnDevice>(kind: DeviceKind, task: T) -> Result<T::Output> {
    run_on_index(kind, 0, task)
}

/// [`run_on`] on CUDA device `index` (a data-parallel rank's local rank).
/// A process that sees exactly one device takes it whatever the index
/// (the launcher gave each rank its own GPU, as srun's `--gpus-per-task`
/// does); wgpu takes its default adapter.
pub fn run_on_index<T: OnDevice>(kind: DeviceKind, index: usize, task: T) -> Result<T::Output> {
    let choice = choose(kind)?;
    match choice.kind {
        DeviceKind::Cpu => {
            let info = DeviceInfo {
                kind: DeviceKind::Cpu,
                name: "cpu (native)".into(),
                reason: choice.reason,
                auto: false,
            };
            task.run_native(&info).map_err(|_| {
                RuntimeError::Device(
                    "--device cpu: the native CPU backend does not run this (it trains and evaluates, in one process); use --device wgpu".into(),
                )
            })
        }
        // Without CUDA, `auto` takes the native CPU backend where the task
        // has one: on a CPU it is far faster than a software Vulkan driver.
        DeviceKind::Wgpu if kind == DeviceKind::Auto => {
            let info = DeviceInfo {
                kind: DeviceKind::Cpu,
                name: "cpu (native)".into(),
                reason: choice
                    .reason
                    .replacen("auto: wgpu", "auto: the native CPU backend", 1),
                auto: true,
            };
            match task.run_native(&info) {
                Ok(out) => Ok(out),
                Err(task) => run_wgpu(task, choice, true),
            }
        }
        DeviceKind::Cuda => {
            let count = cudarc::driver::result::device::get_count()
                .unwrap_or(0)
                .max(0) as usize;
            let index = if count <= 1 { 0 } else { index };
            if index >= count.max(1) {
                return Err(RuntimeError::Device(format!(
                    "CUDA device {index} asked for (the local rank), but this process sees {count} (check CUDA_VISIBLE_DEVICES and the launcher's processes per node)"
                )));
            }
            let client = client_or_error(
                || CudaRuntime::client(&CudaDevice::new(index)),
                "the CUDA device",
            )?;
            let name = cudarc::driver::result::device::get(index as i32)
                .and_then(cudarc::driver::result::device::get_name)
                .unwrap_or_else(|_| format!("CUDA device {index}"));
            Ok(task.run(
                client,
                &DeviceInfo {
                    kind: DeviceKind::Cuda,
                    name,
                    auto: kind == DeviceKind::Auto,
                    reason: choice.reason,
                },
            ))
        }
        _ => run_wgpu(task, choice, kind == DeviceKind::Auto),
    }
}

/// `task` on wgpu's default adapter.
fn run_wgpu<T: OnDevice>(task: T, choice: DeviceChoice, auto: bool) -> Result<T::Output> {
    let client = client_or_error(
            || WgpuRuntime::client(&WgpuDevice::DefaultDevice),
            "wgpu (is a Vulkan driver installed? on a machine without a GPU: apt-get install mesa-vulkan-drivers libvulkan1)",
        )?;
    let name = "wgpu (Vulkan)".to_string();
    Ok(task.run(
        client,
        &DeviceInfo {
            kind: DeviceKind::Wgpu,
            name,
            auto,
            reason: choice.reason,
        },
    ))
}

/// Dense bf16 peak FLOP/s of known cards, by a substring of the device
/// name, with what the figure is. The denominator of MFU.
pub fn peak_flops(device_name: &str) -> Option<(f64, &'static str)> {
    const TABLE: [(&str, f64, &str); 6] = [
        ("H200", 989e12, "H200 SXM dense bf16"),
        ("H100 PCIe", 756e12, "H100 PCIe dense bf16"),
        ("H100", 989e12, "H100 SXM dense bf16"),
        ("A100", 312e12, "A100 dense bf16"),
        ("L40S", 362e12, "L40S dense bf16"),
        ("4090", 165e12, "RTX 4090 dense bf16"),
    ];
    TABLE
        .iter()
        .find(|t| device_name.contains(t.0))
        .map(|t| (t.1, t.2))
}

/// How much memory a device has for buffers, and where that figure came
/// from (printed beside any refusal it causes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeviceMemory {
    pub bytes: u64,
    pub source: &'static str,
}

/// The memory a model may plan for on `client`'s device: on CUDA the
/// device's total (cuDeviceTotalMem, which cubecl-cuda reads at startup
/// and reports as four pages); on wgpu, whose adapters cubecl reports no
/// memory for, the host's available memory (`MemAvailable` in
/// /proc/meminfo): lavapipe keeps its buffers there, and on any device the
/// trainer holds a host copy of the weights and moments while it uploads
/// them. None where neither figure exists (no /proc).
pub fn device_memory<R: Runtime>(client: &ComputeClient<R>) -> Option<DeviceMemory> {
    if std::any::TypeId::of::<R>() == std::any::TypeId::of::<CudaRuntime>() {
        return Some(DeviceMemory {
            bytes: client.properties().memory.max_page_size.saturating_mul(4),
            source: "the device's total memory",
        });
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    mem_available(&text).map(|bytes| DeviceMemory {
        bytes,
        source: "the host's available memory, which holds lavapipe's buffers",
    })
}

/// `MemAvailable` of a /proc/meminfo text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes_from_meminfo() {
        let text = "MemTotal:       24000000 kB\nMemFree:   100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(mem_available(text), Some(20_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }
}
