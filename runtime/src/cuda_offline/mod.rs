//! CUDA without a GPU: a cubecl [`Runtime`] whose server compiles every
//! kernel it is asked to launch into CUDA C++ (cubecl-cpp's CUDA dialect,
//! the compiler cubecl-cuda uses) and records it, instead of running it.
//!
//! Why: a GPU is rarely at hand, and the CUDA source of a kernel depends on
//! the device's properties (tensor-core shapes, plane width, shared memory),
//! which cubecl-cuda reads from the driver. Here they are registered the
//! way cubecl-cuda's runtime registers them (`register_supported_types`,
//! `register_wmma_features`, `register_mma_features`, `CudaArchitecture`),
//! for a named architecture, so the model's launchers and cubek's matmul
//! run unchanged and choose what they would choose on that card. The
//! recorded sources then go through NVRTC ([`nvrtc`]) for registers,
//! spills and shared memory, and [`occupancy`] turns those into warps per
//! SM.
//!
//! Nothing is allocated: buffers are sizes only (a step of pythia-1b costs
//! no memory), writes are dropped and reads return zeros. So a compile-only
//! client runs control flow that does not depend on values (a training
//! step does not), and every kernel launched is recorded once per distinct
//! [`KernelId`] (the kernel, its comptime arguments and its cube size).

pub mod census;
pub mod nvrtc;
pub mod occupancy;
pub mod report;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use cubecl::bytes::Bytes;
use cubecl::cuda::CudaRuntime;
use cubecl::device::{Device, DeviceId, DeviceService};
use cubecl::future::DynFut;
use cubecl::ir::features::{AtomicUsage, TypeUsage};
use cubecl::ir::features::{Plane, Tma};
use cubecl::ir::{
    BarrierLevel, DeviceProperties, ElemType, FloatKind, HardwareProperties,
    MemoryDeviceProperties, OpaqueType, SemanticType, StorageType, TargetProperties, Type,
    VectorSize,
};
use cubecl::prelude::*;
use cubecl::profile::{ProfileDuration, TimingMethod};
use cubecl::server::{
    Binding, ComputeServer, CopyDescriptor, ExecutionMode, IoError, KernelArguments, ProfileError,
    ProfilingToken, ServerCommunication, ServerError, ServerUtilities,
};
use cubecl::stream_id::StreamId;
use cubecl::zspace::{Shape, Strides};
use cubecl::{CubeTask, MemoryUsage};
use cubecl_cpp::cuda::arch::CudaArchitecture;
use cubecl_cpp::cuda::mma::CudaWmmaCompiler;
use cubecl_cpp::register_supported_types;
use cubecl_cpp::shared::{
    register_mma_features, register_wmma_features, CompilationOptions, CppSupportedFeatures,
    DialectWmmaCompiler,
};
use cubecl_runtime::allocator::PitchedMemoryLayoutPolicy;
use cubecl_runtime::id::KernelId;
use cubecl_runtime::logging::ServerLogger;
use cubecl_runtime::memory_management::{ManagedMemoryHandle, MemoryAllocationMode};
use cubecl_runtime::storage::{BytesStorage, ComputeStorage, ManagedResource};
use cubecl_runtime::timestamp_profiler::TimestampProfiler;

/// The compiler cubecl-cuda uses (CUDA C++ with WMMA for tensor cores).
pub type CudaCompiler = cubecl::cuda::CudaCompiler;

/// A CUDA architecture the compile-only runtime can stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arch {
    /// Compute capability times ten: 90 for Hopper (sm_90a), 80 for A100.
    pub version: u32,
}

impl Arch {
    pub const SM_90A: Arch = Arch { version: 90 };
    pub const SM_80: Arch = Arch { version: 80 };

    /// The NVRTC flag, as cubecl-cuda passes it: Hopper and later compile
    /// for the architecture-specific target (`sm_90a`).
    pub fn nvrtc_flag(self) -> String {
        format!("--gpu-architecture={}", self)
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.version >= 90 {
            write!(f, "sm_{}a", self.version)
        } else {
            write!(f, "sm_{}", self.version)
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Arch, String> {
        match s {
            "sm_90a" | "sm_90" => Ok(Arch::SM_90A),
            "sm_80" => Ok(Arch::SM_80),
            other => Err(format!(
                "unknown architecture {other:?}: use sm_90a or sm_80"
            )),
        }
    }
}

/// The device properties of the cards the GPU machines have, per
/// architecture: what cubecl-cuda would read from the driver there.
#[derive(Debug, Clone, Copy)]
pub struct CardLimits {
    pub name: &'static str,
    pub sms: u32,
    /// Largest dynamic shared memory a cube may opt in to, in bytes.
    pub max_shared_per_cube: usize,
    pub total_memory: u64,
}

impl CardLimits {
    pub fn of(arch: Arch) -> CardLimits {
        if arch.version >= 90 {
            CardLimits {
                name: "H100 SXM (sm_90a)",
                sms: 132,
                max_shared_per_cube: 232_448,
                total_memory: 80 << 30,
            }
        } else {
            CardLimits {
                name: "A100 SXM (sm_80)",
                sms: 108,
                max_shared_per_cube: 166_912,
                total_memory: 80 << 30,
            }
        }
    }
}

/// One distinct kernel the server was asked to launch.
#[derive(Debug, Clone)]
pub struct KernelSource {
    /// cubecl's identity of the kernel (type, comptime arguments, cube
    /// size): the same on every client. The source text is not a key:
    /// cubecl emits some declarations in hash-set order, so one kernel's
    /// source differs between recordings.
    pub id: KernelId,
    /// The kernel's type name (cubecl's `KernelMetadata::name`).
    pub type_name: &'static str,
    /// The `__global__` function's name in `source`.
    pub entrypoint: String,
    /// The CUDA C++ source, or empty when cubecl could not generate it.
    pub source: String,
    /// Units per cube.
    pub threads: u32,
    /// Shared memory cubecl launches the kernel with (dynamic; NVRTC's
    /// report counts only static shared memory).
    pub dynamic_shared_bytes: usize,
    /// How many times it was launched.
    pub launches: u64,
    /// Why cubecl could not generate CUDA for it, or why the launch would be
    /// refused on the card (cube size, shared memory).
    pub error: Option<String>,
}

/// What a compile-only server recorded, in launch order.
#[derive(Debug, Default)]
pub struct CompileLog {
    index: HashMap<KernelId, usize>,
    kernels: Vec<KernelSource>,
}

impl CompileLog {
    pub fn kernels(&self) -> &[KernelSource] {
        &self.kernels
    }

    /// Empties the log, returning what it held.
    pub fn take(&mut self) -> Vec<KernelSource> {
        self.index.clear();
        std::mem::take(&mut self.kernels)
    }
}

/// A stand-in for one CUDA card of architecture `arch`. Each
/// [`compile_client`] call makes a new one (`session`), so separate uses
/// (tests in one process, say) have separate logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompileDevice {
    pub arch: Arch,
    pub session: u16,
}

impl Default for CompileDevice {
    fn default() -> Self {
        CompileDevice {
            arch: Arch::SM_90A,
            session: 0,
        }
    }
}

/// cubecl registers servers by device id; this type's ids are its own
/// (type 0x5c of no real backend), the architecture in the low byte.
const DEVICE_TYPE: u16 = 0x5c;

impl Device for CompileDevice {
    fn from_id(id: DeviceId) -> Self {
        CompileDevice {
            arch: Arch {
                version: (id.index_id & 0xff) as u32,
            },
            session: id.index_id >> 8,
        }
    }

    fn to_id(&self) -> DeviceId {
        DeviceId {
            type_id: DEVICE_TYPE,
            index_id: (self.session << 8) | (self.arch.version as u16 & 0xff),
        }
    }
}

/// A client of a fresh compile-only server for `arch`.
pub fn compile_client(arch: Arch) -> ComputeClient<CompileOnlyRuntime> {
    static SESSION: AtomicU16 = AtomicU16::new(1);
    let session = SESSION.fetch_add(1, Ordering::Relaxed) & 0xff;
    CompileOnlyRuntime::client(&CompileDevice { arch, session })
}

/// Everything recorded so far by `client`'s server, emptying its log.
pub fn take_kernels(client: &ComputeClient<CompileOnlyRuntime>) -> Vec<KernelSource> {
    // Launches reach the server through a queue: wait for all of them.
    let _ = crate::buffer::sync(client);
    client
        .info()
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// The runtime: cubecl-cuda's compiler and target properties over
/// [`CompileServer`].
#[derive(Debug, Clone)]
pub struct CompileOnlyRuntime;

impl Runtime for CompileOnlyRuntime {
    type Compiler = CudaCompiler;
    type Server = CompileServer;
    type Device = CompileDevice;

    fn client(device: &Self::Device) -> ComputeClient<Self> {
        ComputeClient::load(device)
    }

    fn name(_client: &ComputeClient<Self>) -> &'static str {
        "cuda (compile-only)"
    }

    fn require_array_lengths() -> bool {
        CudaRuntime::require_array_lengths()
    }

    fn max_cube_count() -> (u32, u32, u32) {
        CudaRuntime::max_cube_count()
    }

    fn can_read_tensor(shape: &Shape, strides: &Strides) -> bool {
        CudaRuntime::can_read_tensor(shape, strides)
    }

    fn target_properties() -> TargetProperties {
        CudaRuntime::target_properties()
    }

    fn enumerate_devices(_type_id: u16, _info: &CompileInfo) -> Vec<DeviceId> {
        vec![CompileDevice::default().to_id()]
    }
}

/// The server's shared state, reachable from a client as `client.info()`.
#[derive(Debug, Default)]
pub struct CompileInfo {
    pub log: Mutex<CompileLog>,
}

/// Compiles instead of launching; see the module doc.
#[derive(Debug)]
pub struct CompileServer {
    arch: Arch,
    options: CompilationOptions,
    utilities: Arc<ServerUtilities<Self>>,
    timestamps: TimestampProfiler,
}

impl ServerCommunication for CompileServer {
    const SERVER_COMM_ENABLED: bool = false;
}

impl DeviceService for CompileServer {
    fn init(device_id: DeviceId) -> Self {
        let arch = CompileDevice::from_id(device_id).arch;
        let (properties, options) = card_properties(arch);
        let utilities = Arc::new(ServerUtilities::new(
            properties,
            Arc::new(ServerLogger::default()),
            CompileInfo::default(),
            PitchedMemoryLayoutPolicy::new(512),
        ));
        CompileServer {
            arch,
            options,
            utilities,
            timestamps: TimestampProfiler::default(),
        }
    }

    fn utilities(&self) -> Arc<dyn std::any::Any + Send + Sync> {
        ComputeServer::utilities(self) as Arc<dyn std::any::Any + Send + Sync>
    }
}

/// Device properties and compilation options for `arch`, registered as
/// cubecl-cuda's `DeviceService::init` registers them from the driver
/// (cubecl-cuda 0.10, src/runtime.rs), with the card's figures from
/// [`CardLimits`] in place of the driver's answers.
pub fn card_properties(arch: Arch) -> (DeviceProperties, CompilationOptions) {
    let card = CardLimits::of(arch);
    let version = arch.version;
    let cuda_arch = CudaArchitecture { version };
    let wmma = CudaWmmaCompiler::supported_wmma_combinations(&cuda_arch);
    let mma = CudaWmmaCompiler::supported_mma_combinations(&cuda_arch);
    let memory = MemoryDeviceProperties {
        max_page_size: card.total_memory / 4,
        alignment: 512,
    };
    let hardware = HardwareProperties {
        load_width: 128,
        plane_size_min: 32,
        plane_size_max: 32,
        max_bindings: 1024,
        max_shared_memory_size: card.max_shared_per_cube,
        max_cube_count: (i32::MAX as u32, u16::MAX as u32, u16::MAX as u32),
        max_units_per_cube: 1024,
        max_cube_dim: (1024, 1024, 64),
        num_streaming_multiprocessors: Some(card.sms),
        num_tensor_cores: Some(4),
        min_tensor_cores_dim: if wmma.is_empty() { None } else { Some(8) },
        num_cpu_cores: None,
        max_vector_size: VectorSize::MAX,
    };
    let mut options = CompilationOptions {
        warp_size: 32,
        supports_features: CppSupportedFeatures {
            fast_math: true,
            ..Default::default()
        },
    };
    let mut props =
        DeviceProperties::new(Default::default(), memory, hardware, TimingMethod::System);
    register_supported_types(&mut props);
    props.register_type_usage(ElemType::Float(FloatKind::TF32), TypeUsage::Conversion);
    props.register_atomic_type_usage(
        Type::new(StorageType::Atomic(ElemType::Float(FloatKind::F64))),
        AtomicUsage::Add | AtomicUsage::LoadStore,
    );
    props.register_atomic_type_usage(
        Type::new(StorageType::Atomic(ElemType::Float(FloatKind::F16))),
        AtomicUsage::Add | AtomicUsage::LoadStore,
    );
    props.register_atomic_type_usage(
        Type::new(StorageType::Atomic(ElemType::Float(FloatKind::F16))).with_vector_size(2),
        AtomicUsage::Add | AtomicUsage::LoadStore,
    );
    props.register_semantic_type(SemanticType::Pipeline);
    props.register_type_usage(OpaqueType::Barrier(BarrierLevel::Unit), TypeUsage::Buffer);
    props.register_type_usage(OpaqueType::Barrier(BarrierLevel::Cube), TypeUsage::Buffer);
    props.features.plane.insert(Plane::Sync);
    options.supports_features.grid_constants = true;
    for float in [FloatKind::F16, FloatKind::BF16] {
        props
            .features
            .matmul
            .ldmatrix
            .insert(ElemType::Float(float).into());
    }
    // The GPU machines run CUDA 13.0 (cubecl-cuda checks CUDA_VERSION >= 12.8).
    options.supports_features.fast_tanh = true;
    props.features.copy_async = true;
    props.register_type_usage(
        ElemType::Float(FloatKind::E4M3),
        TypeUsage::Conversion | TypeUsage::Buffer,
    );
    props.register_type_usage(
        ElemType::Float(FloatKind::E5M2),
        TypeUsage::Conversion | TypeUsage::Buffer,
    );
    if version >= 90 {
        props.features.tma.insert(Tma::Base);
        props.register_semantic_type(SemanticType::TensorMap);
        props.features.cube_cluster = true;
        options.supports_features.clusters = true;
        options.supports_features.elect_sync = true;
        for float in [FloatKind::F16, FloatKind::BF16] {
            props
                .features
                .matmul
                .stmatrix
                .insert(ElemType::Float(float).into());
        }
        for width in [2, 4] {
            props.register_atomic_type_usage(
                Type::new(StorageType::Atomic(ElemType::Float(FloatKind::F32)))
                    .with_vector_size(width),
                AtomicUsage::LoadStore | AtomicUsage::Add,
            );
        }
    }
    props.features.memory_reinterpret = true;
    props.features.alignment = true;
    props.features.plane.insert(Plane::Ops);
    props.features.plane.insert(Plane::NonUniformControlFlow);
    register_wmma_features(wmma, &mut props);
    register_mma_features(mma, &mut props);
    (props, options)
}

impl CompileServer {
    fn record(&self, kernel: &dyn CubeTask<CudaCompiler>, mode: ExecutionMode) {
        let id = kernel.id();
        let mut log = self
            .utilities
            .info
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(&i) = log.index.get(&id) {
            log.kernels[i].launches += 1;
            return;
        }
        let props = &self.utilities.properties;
        let limits = cubecl_runtime::validation::validate_cube_dim(props, &id)
            .and_then(|()| cubecl_runtime::validation::validate_units(props, &id));
        let compiled = kernel.compile(
            &mut CudaCompiler::default(),
            &self.options,
            mode,
            kernel.address_type(),
        );
        let threads = id.cube_dim.num_elems();
        let entry = match compiled {
            Ok(c) => {
                let dynamic_shared_bytes = c.repr.as_ref().map_or(0, |r| r.shared_memory_size());
                let mut error = limits.err().map(|e| format!("{e}"));
                if dynamic_shared_bytes > props.hardware.max_shared_memory_size {
                    error = Some(format!(
                        "{} bytes of shared memory, more than the {} a cube may have on {}",
                        dynamic_shared_bytes, props.hardware.max_shared_memory_size, self.arch
                    ));
                }
                KernelSource {
                    id: id.clone(),
                    type_name: kernel.name(),
                    entrypoint: c.entrypoint_name,
                    source: c.source,
                    threads,
                    dynamic_shared_bytes,
                    launches: 1,
                    error,
                }
            }
            Err(e) => KernelSource {
                id: id.clone(),
                type_name: kernel.name(),
                entrypoint: String::new(),
                source: String::new(),
                threads,
                dynamic_shared_bytes: 0,
                launches: 1,
                error: Some(format!("cubecl could not generate CUDA: {e}")),
            },
        };
        let at = log.kernels.len();
        log.index.insert(id, at);
        log.kernels.push(entry);
    }
}

impl ComputeServer for CompileServer {
    type Kernel = Box<dyn CubeTask<CudaCompiler>>;
    type Info = CompileInfo;
    type MemoryLayoutPolicy = PitchedMemoryLayoutPolicy;
    type Storage = BytesStorage;

    fn initialize_memory(&mut self, _memory: ManagedMemoryHandle, _size: u64, _stream: StreamId) {}

    fn logger(&self) -> Arc<ServerLogger> {
        self.utilities.logger.clone()
    }

    fn utilities(&self) -> Arc<ServerUtilities<Self>> {
        self.utilities.clone()
    }

    fn read(
        &mut self,
        descriptors: Vec<CopyDescriptor>,
        _stream: StreamId,
    ) -> DynFut<Result<Vec<Bytes>, ServerError>> {
        let sizes: Vec<usize> = descriptors
            .iter()
            .map(|d| d.handle.size_in_used() as usize)
            .collect();
        Box::pin(async move {
            Ok(sizes
                .into_iter()
                .map(|n| Bytes::from_bytes_vec(vec![0u8; n]))
                .collect())
        })
    }

    fn write(&mut self, _descriptors: Vec<(CopyDescriptor, Bytes)>, _stream: StreamId) {}

    fn sync(&mut self, _stream: StreamId) -> DynFut<Result<(), ServerError>> {
        Box::pin(async { Ok(()) })
    }

    fn get_resource(
        &mut self,
        _binding: Binding,
        _stream: StreamId,
    ) -> Result<ManagedResource<<BytesStorage as ComputeStorage>::Resource>, ServerError> {
        Err(IoError::Unknown {
            description: "a compile-only CUDA device holds no memory".into(),
            backtrace: cubecl::backtrace::BackTrace::capture(),
        }
        .into())
    }

    unsafe fn launch(
        &mut self,
        kernel: Self::Kernel,
        _count: CubeCount,
        _bindings: KernelArguments,
        mode: ExecutionMode,
        _stream: StreamId,
    ) {
        self.record(kernel.as_ref(), mode);
    }

    fn flush(&mut self, _stream: StreamId) -> Result<(), ServerError> {
        Ok(())
    }

    fn memory_usage(&mut self, _stream: StreamId) -> Result<MemoryUsage, ServerError> {
        Ok(MemoryUsage {
            number_allocs: 0,
            bytes_in_use: 0,
            bytes_padding: 0,
            bytes_reserved: 0,
        })
    }

    fn memory_cleanup(&mut self, _stream: StreamId) {}

    fn start_profile(&mut self, _stream: StreamId) -> Result<ProfilingToken, ServerError> {
        Ok(self.timestamps.start())
    }

    fn end_profile(
        &mut self,
        _stream: StreamId,
        token: ProfilingToken,
    ) -> Result<ProfileDuration, ProfileError> {
        self.timestamps.stop(token)
    }

    fn allocation_mode(&mut self, _mode: MemoryAllocationMode, _stream: StreamId) {}
}
