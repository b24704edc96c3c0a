//! Finding NCCL at run time, for the collectives of a multi-GPU job.
//!
//! NCCL is a shared library loaded when a job needs it, never linked, so
//! a machine without it builds and runs everything else. cudarc's loader
//! looks for `libnccl.so` and `libnccl.so.{12,11,...}`, but the library
//! ships as `libnccl.so.2` (Debian's `libnccl2`, and the `nvidia-nccl-cu12`
//! / `-cu13` wheels under `site-packages/nvidia/nccl/lib`), so the probe
//! looks for itself, in this order:
//!
//! 1. `PRIOR_NCCL`, a path to the library;
//! 2. `libnccl.so.2` and `libnccl.so` through the dynamic loader's search
//!    (`LD_LIBRARY_PATH`, the ldconfig cache);
//! 3. the NCCL wheel in a `.venv` in the working directory or above it.
//!
//! A library counts as NCCL when it has `ncclGetVersion`, whose answer the
//! probe reports.
//!
//! [`NcclComm`] is a communicator over that library, formed through the
//! host [`Group`]'s rendezvous, with the sum all-reduce, reduce-scatter
//! and all-gather ZeRO-1 needs, on cubecl-cuda buffers' device addresses
//! ([`device_address`]). `prior runtime nccl-check` runs them against the
//! host collective. Training itself still exchanges through the host
//! collective on every device (see docs/distributed.md).

use super::{DistError, Group};
use libloading::Library;
use std::path::{Path, PathBuf};

/// A loadable NCCL: where it is and the version it reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NcclLibrary {
    /// The path or loader name it was opened by.
    pub path: PathBuf,
    /// `(major, minor, patch)`.
    pub version: (u32, u32, u32),
}

impl std::fmt::Display for NcclLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "NCCL {a}.{b}.{c} ({})", self.path.display())
    }
}

/// The first NCCL found in the order of the module doc, or every place
/// looked at and why each failed.
pub fn probe() -> Result<NcclLibrary, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("PRIOR_NCCL") {
        candidates.push(PathBuf::from(p));
    } else {
        candidates.push("libnccl.so.2".into());
        candidates.push("libnccl.so".into());
        if let Ok(cwd) = std::env::current_dir() {
            for dir in cwd.ancestors() {
                let lib = dir.join(".venv").join("lib");
                let Ok(pythons) = std::fs::read_dir(&lib) else {
                    continue;
                };
                let mut pythons: Vec<PathBuf> =
                    pythons.filter_map(|e| e.ok().map(|e| e.path())).collect();
                pythons.sort();
                candidates.extend(
                    pythons
                        .into_iter()
                        .map(|p| p.join("site-packages/nvidia/nccl/lib/libnccl.so.2")),
                );
            }
        }
    }
    let mut failures = Vec::new();
    for c in candidates {
        match probe_at(&c) {
            Ok(found) => return Ok(found),
            Err(why) => failures.push(why),
        }
    }
    Err(format!("no NCCL found: {}", failures.join("; ")))
}

/// NCCL at `path` (a file, or a bare name for the loader's search).
pub fn probe_at(path: &Path) -> Result<NcclLibrary, String> {
    let shown = path.display();
    // SAFETY: loading a library runs its initialisers; NCCL's (like any
    // well-formed shared library's) have no preconditions.
    let lib = unsafe { Library::new(path.as_os_str()) }.map_err(|e| format!("{shown}: {e}"))?;
    type GetVersion = unsafe extern "C" fn(*mut i32) -> i32;
    // SAFETY: `ncclGetVersion(int*)` has had this signature in every NCCL 2.
    let get: libloading::Symbol<GetVersion> = unsafe { lib.get(b"ncclGetVersion\0") }
        .map_err(|_| format!("{shown}: loads, but has no ncclGetVersion (not NCCL)"))?;
    let mut code = 0i32;
    // SAFETY: the symbol is NCCL's and `code` outlives the call.
    let status = unsafe { get(&mut code) };
    if status != 0 || code <= 0 {
        return Err(format!("{shown}: ncclGetVersion failed (status {status})"));
    }
    let code = code as u32;
    // NCCL 2.9 and later encode X.Y.Z as X*10000 + Y*100 + Z; earlier
    // releases as X*1000 + Y*100 + Z.
    let version = if code >= 20900 {
        (code / 10000, code / 100 % 100, code % 100)
    } else {
        (code / 1000, code / 100 % 10, code % 100)
    };
    Ok(NcclLibrary {
        path: path.to_path_buf(),
        version,
    })
}

/// NCCL's C API, resolved from the library [`probe`] found. NCCL is
/// called through its own symbols rather than cudarc's `nccl` module
/// because cudarc's loader cannot open `libnccl.so.2`, the name every
/// NCCL package ships; the signatures are NCCL 2's (`nccl.h`).
pub struct Nccl {
    /// Where the symbols come from; kept open for as long as they are used.
    _lib: Library,
    pub found: NcclLibrary,
    get_unique_id: unsafe extern "C" fn(*mut UniqueId) -> i32,
    comm_init_rank: unsafe extern "C" fn(*mut RawComm, i32, UniqueId, i32) -> i32,
    comm_destroy: unsafe extern "C" fn(RawComm) -> i32,
    comm_abort: unsafe extern "C" fn(RawComm) -> i32,
    comm_get_async_error: unsafe extern "C" fn(RawComm, *mut i32) -> i32,
    get_error_string: unsafe extern "C" fn(i32) -> *const std::ffi::c_char,
    all_reduce: SumCall,
    reduce_scatter: SumCall,
    all_gather: unsafe extern "C" fn(u64, u64, usize, i32, RawComm, CuStream) -> i32,
}

/// `ncclUniqueId`: 128 opaque bytes rank 0 makes and every rank passes
/// to `ncclCommInitRank`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UniqueId {
    bytes: [u8; 128],
}

type RawComm = *mut std::ffi::c_void;
/// `ncclAllReduce` / `ncclReduceScatter`: (send, recv, count, datatype,
/// op, comm, stream).
type SumCall = unsafe extern "C" fn(u64, u64, usize, i32, i32, RawComm, CuStream) -> i32;
type CuStream = cudarc::driver::sys::CUstream;

/// `ncclFloat32` and `ncclSum` in `nccl.h`'s enums.
const NCCL_FLOAT32: i32 = 7;
const NCCL_SUM: i32 = 0;
/// `ncclInProgress`: a non-blocking call that has not finished.
const NCCL_IN_PROGRESS: i32 = 7;

impl Nccl {
    /// NCCL from [`probe`], with every symbol the collectives use, or why
    /// not (no library, or a library without one of them).
    pub fn load() -> Result<Self, String> {
        let found = probe()?;
        // SAFETY: as in `probe_at`; the library is NCCL (it answered
        // ncclGetVersion).
        let lib = unsafe { Library::new(found.path.as_os_str()) }
            .map_err(|e| format!("{}: {e}", found.path.display()))?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: each symbol is cast to its `nccl.h` signature;
                // the pointer stays valid while `lib` (kept in the
                // struct) is loaded.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|_| format!("{}: {found} has no {}", found.path.display(), $name))?
            };
        }
        Ok(Nccl {
            get_unique_id: sym!("ncclGetUniqueId"),
            comm_init_rank: sym!("ncclCommInitRank"),
            comm_destroy: sym!("ncclCommDestroy"),
            comm_abort: sym!("ncclCommAbort"),
            comm_get_async_error: sym!("ncclCommGetAsyncError"),
            get_error_string: sym!("ncclGetErrorString"),
            all_reduce: sym!("ncclAllReduce"),
            reduce_scatter: sym!("ncclReduceScatter"),
            all_gather: sym!("ncclAllGather"),
            _lib: lib,
            found,
        })
    }

    fn error(&self, call: &str, code: i32) -> String {
        // SAFETY: ncclGetErrorString returns a static C string for any code.
        let text = unsafe { std::ffi::CStr::from_ptr((self.get_error_string)(code)) };
        format!("{call}: NCCL error {code} ({})", text.to_string_lossy())
    }

    fn check(&self, call: &str, code: i32) -> Result<(), String> {
        match code {
            0 => Ok(()),
            code => Err(self.error(call, code)),
        }
    }
}

/// One rank's NCCL communicator over CUDA device `ordinal`, formed from
/// the host [`Group`] this job's rendezvous made: rank 0 makes the NCCL
/// unique id and the group broadcasts it, so NCCL needs no address of
/// its own and joins exactly the ranks the rendezvous admitted.
///
/// Every collective runs on the communicator's own stream, ordered
/// against cubecl's by synchronisation: the caller syncs cubecl's stream
/// before (the inputs are written), and the collective waits for its
/// stream before it returns (the outputs are there for cubecl's next
/// kernel). The wait polls, so a peer that died or hung ends it after the
/// group's timeout with the communicator aborted, never a hang.
pub struct NcclComm {
    nccl: Nccl,
    comm: RawComm,
    stream: CuStream,
    rank: u32,
    world: u32,
    timeout: std::time::Duration,
    /// Set once `finish` aborted the communicator (NCCL freed it then).
    aborted: std::cell::Cell<bool>,
}

impl NcclComm {
    /// The communicator of `group`'s ranks, this one on CUDA device
    /// `ordinal` (the local rank's). Collective over `group`.
    pub fn init(nccl: Nccl, group: &mut Group, ordinal: usize) -> Result<Self, DistError> {
        let fail = |detail: String| DistError::Nccl { detail };
        let (rank, world) = (group.rank(), group.world());
        // NCCL works on the device of the calling thread's CUDA context:
        // the primary one, which is also the context cubecl-cuda uses.
        // SAFETY: plain driver calls on a device index the caller checked.
        unsafe {
            cudarc::driver::result::init().map_err(|e| fail(format!("cuInit: {e}")))?;
            let dev = cudarc::driver::result::device::get(ordinal as i32)
                .map_err(|e| fail(format!("CUDA device {ordinal}: {e}")))?;
            let ctx = cudarc::driver::result::primary_ctx::retain(dev)
                .map_err(|e| fail(format!("CUDA device {ordinal}'s context: {e}")))?;
            cudarc::driver::result::ctx::set_current(ctx)
                .map_err(|e| fail(format!("CUDA device {ordinal}'s context: {e}")))?;
        }
        let mut id = UniqueId { bytes: [0; 128] };
        if rank == 0 {
            // SAFETY: `id` is a writable ncclUniqueId.
            nccl.check("ncclGetUniqueId", unsafe { (nccl.get_unique_id)(&mut id) })
                .map_err(fail)?;
        }
        let shared = group.broadcast(&id.bytes)?;
        id.bytes = shared.as_slice().try_into().map_err(|_| DistError::Peer {
            rank: 0,
            detail: format!("sent an NCCL id of {} bytes, not 128", shared.len()),
        })?;
        let stream = cudarc::driver::result::stream::create(
            cudarc::driver::result::stream::StreamKind::NonBlocking,
        )
        .map_err(|e| fail(format!("creating NCCL's stream: {e}")))?;
        let mut comm: RawComm = std::ptr::null_mut();
        // SAFETY: `comm` receives the communicator; every rank passes the
        // same id, the group's world and its own rank. The call blocks
        // until every rank has made it, with no deadline of its own: it
        // runs only after the rendezvous admitted every rank.
        let init = unsafe { (nccl.comm_init_rank)(&mut comm, world as i32, id, rank as i32) };
        if let Err(why) = nccl.check("ncclCommInitRank", init) {
            // SAFETY: the stream was created above and is used by nothing.
            let _ = unsafe { cudarc::driver::result::stream::destroy(stream) };
            return Err(fail(why));
        }
        Ok(NcclComm {
            nccl,
            comm,
            stream,
            rank,
            world,
            timeout: group.timeout(),
            aborted: std::cell::Cell::new(false),
        })
    }

    pub fn rank(&self) -> u32 {
        self.rank
    }

    pub fn world(&self) -> u32 {
        self.world
    }

    /// Refuses a call on a communicator that a failed collective aborted.
    fn usable(&self, call: &str) -> Result<(), DistError> {
        match self.aborted.get() {
            false => Ok(()),
            true => Err(DistError::Nccl {
                detail: format!(
                    "{call}: the communicator was aborted after an earlier failure; form a new one"
                ),
            }),
        }
    }

    /// Sum over the ranks of `count` f32 at device address `send`, into
    /// `recv` (the same address for in place).
    pub fn all_reduce_sum(&self, send: u64, recv: u64, count: usize) -> Result<(), DistError> {
        // SAFETY (for `summed`): the caller's addresses hold `count` f32.
        self.summed("ncclAllReduce", self.nccl.all_reduce, send, recv, count)
    }

    /// Rank `r`'s `count` values of the sum over ranks of `world × count`
    /// f32 at `send`, into `recv`: the first half of ZeRO's exchange.
    pub fn reduce_scatter_sum(&self, send: u64, recv: u64, count: usize) -> Result<(), DistError> {
        // SAFETY (for `summed`): `send` holds world × count f32, `recv` count.
        self.summed(
            "ncclReduceScatter",
            self.nccl.reduce_scatter,
            send,
            recv,
            count,
        )
    }

    /// A sum collective (`ncclAllReduce` and `ncclReduceScatter` share
    /// their signature) of f32 on this communicator's stream, waited for.
    fn summed(
        &self,
        call: &str,
        op: SumCall,
        send: u64,
        recv: u64,
        count: usize,
    ) -> Result<(), DistError> {
        self.usable(call)?;
        // SAFETY: `op` is one of NCCL's sum collectives, the addresses hold
        // what the public caller's SAFETY note says, and the communicator
        // and stream are alive.
        let code = unsafe {
            op(
                send,
                recv,
                count,
                NCCL_FLOAT32,
                NCCL_SUM,
                self.comm,
                self.stream,
            )
        };
        self.finish(call, code)
    }

    /// Every rank's `count` f32 at `send`, in rank order, into `recv`
    /// (world × count): the second half.
    pub fn all_gather(&self, send: u64, recv: u64, count: usize) -> Result<(), DistError> {
        self.usable("ncclAllGather")?;
        // SAFETY: `send` holds count f32, `recv` world × count.
        let code = unsafe {
            (self.nccl.all_gather)(send, recv, count, NCCL_FLOAT32, self.comm, self.stream)
        };
        self.finish("ncclAllGather", code)
    }

    /// Waits for the collective's stream, polling NCCL's asynchronous
    /// error, until the group's timeout. Any failure (an error NCCL
    /// reports, a stream error, the timeout) aborts this rank's
    /// communicator, as NCCL asks after an asynchronous error, so that
    /// nothing later waits on its unfinished work; the peers' own polls
    /// then fail in turn.
    fn finish(&self, call: &str, code: i32) -> Result<(), DistError> {
        if code != 0 && code != NCCL_IN_PROGRESS {
            return Err(self.abort(self.nccl.error(call, code)));
        }
        let start = std::time::Instant::now();
        loop {
            // SAFETY: the stream is this communicator's, alive until drop.
            match unsafe { cudarc::driver::sys::cuStreamQuery(self.stream) } {
                cudarc::driver::sys::CUresult::CUDA_SUCCESS => return Ok(()),
                cudarc::driver::sys::CUresult::CUDA_ERROR_NOT_READY => {}
                other => {
                    return Err(self.abort(format!("{call}: waiting for its stream: {other:?}")))
                }
            }
            let mut state = 0i32;
            // SAFETY: `state` outlives the call; the communicator is alive.
            let asked = unsafe { (self.nccl.comm_get_async_error)(self.comm, &mut state) };
            if asked == 0 && state != 0 && state != NCCL_IN_PROGRESS {
                return Err(self.abort(self.nccl.error(call, state)));
            }
            if start.elapsed() > self.timeout {
                return Err(self.abort(format!(
                    "{call} on rank {} of {}: not finished after {:?} (a peer died or hung)",
                    self.rank, self.world, self.timeout
                )));
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// Aborts the communicator (once) and gives the error to return.
    fn abort(&self, why: String) -> DistError {
        if !self.aborted.get() {
            // SAFETY: a live communicator, aborted once; nothing touches it
            // afterwards (`usable`, `Drop`).
            unsafe { (self.nccl.comm_abort)(self.comm) };
            self.aborted.set(true);
        }
        DistError::Nccl {
            detail: format!("{why}; communicator aborted"),
        }
    }
}

impl Drop for NcclComm {
    fn drop(&mut self) {
        // SAFETY: both are this communicator's own and used no further;
        // an aborted communicator is already freed.
        unsafe {
            if !self.aborted.get() {
                (self.nccl.comm_destroy)(self.comm);
            }
            let _ = cudarc::driver::result::stream::destroy(self.stream);
        }
    }
}

/// The device address of a cubecl-cuda buffer (its view's first element),
/// for NCCL. The caller syncs cubecl's stream before NCCL reads or writes
/// there.
pub fn device_address<T: cubecl::prelude::CubeElement>(
    client: &cubecl::prelude::ComputeClient<cubecl::cuda::CudaRuntime>,
    buf: &crate::buffer::Buf<cubecl::cuda::CudaRuntime, T>,
) -> Result<u64, DistError> {
    client
        .get_resource(buf.handle().clone())
        .map(|r| r.resource().ptr)
        .map_err(|e| DistError::Nccl {
            detail: format!("the device address of a buffer: {e:?}"),
        })
}

/// One collective of [`check_against_host`]: the largest difference from
/// the host collective's answer and NCCL's time for it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CollectiveCheck {
    pub op: &'static str,
    /// f32 values each rank contributes.
    pub count: usize,
    pub max_abs_diff: f32,
    /// Allowed: 0 where the operation moves values without adding them
    /// (all-gather, or a sum over one rank); else f32 rounding of a sum
    /// over `world` ranks in another order.
    pub tolerance: f32,
    pub passed: bool,
    pub nccl_ms: f64,
}

/// Runs NCCL's all-reduce, reduce-scatter and all-gather on cubecl-cuda
/// buffers filled with random values (from `seed` and the rank), and
/// compares each with the host collective's result on the same values:
/// the check `prior runtime nccl-check` and ci/gpu-check run on a card.
pub fn check_against_host(
    comm: &NcclComm,
    group: &mut Group,
    client: &cubecl::prelude::ComputeClient<cubecl::cuda::CudaRuntime>,
    count: usize,
    seed: u64,
) -> Result<Vec<CollectiveCheck>, DistError> {
    use crate::buffer::Buf;
    use rand::{Rng, SeedableRng};
    let (rank, world) = (comm.rank() as usize, comm.world() as usize);
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (rank as u64).wrapping_mul(0x9e37_79b9));
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let download = |b: &Buf<cubecl::cuda::CudaRuntime, f32>| {
        b.download(client).map_err(|e| DistError::Nccl {
            detail: format!("reading a result back: {e}"),
        })
    };
    let sync = || {
        crate::buffer::sync(client).map_err(|e| DistError::Nccl {
            detail: format!("syncing cubecl's stream: {e}"),
        })
    };
    let sum_tolerance = |values: &[f32]| match world {
        1 => 0.0,
        w => values.iter().fold(0f32, |m, x| m.max(x.abs())) * w as f32 * f32::EPSILON * 4.0,
    };
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter().zip(b).fold(0f32, |m, (x, y)| {
            m.max((x - y).abs()).max(if x.is_nan() != y.is_nan() {
                f32::INFINITY
            } else {
                0.0
            })
        })
    };
    let mut checks = Vec::new();
    let mut record = |op, got: &[f32], want: &[f32], tolerance: f32, ms: f64| {
        let max_abs_diff = match got.len() == want.len() {
            true => max_diff(got, want),
            false => f32::INFINITY,
        };
        checks.push(CollectiveCheck {
            op,
            count,
            max_abs_diff,
            tolerance,
            passed: max_abs_diff <= tolerance,
            nccl_ms: ms,
        });
    };

    // All-reduce, in place.
    let mine = random(count);
    let buf = Buf::<cubecl::cuda::CudaRuntime, f32>::upload(client, &mine);
    sync()?;
    let at = device_address(client, &buf)?;
    let t = std::time::Instant::now();
    comm.all_reduce_sum(at, at, count)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let got = download(&buf)?;
    let mut want = mine.clone();
    group.all_reduce_sum(&mut want)?;
    record("all_reduce_sum", &got, &want, sum_tolerance(&want), ms);

    // Reduce-scatter: world × count in, this rank's count of the sum out.
    let mine = random(world * count);
    let send = Buf::<cubecl::cuda::CudaRuntime, f32>::upload(client, &mine);
    let recv = Buf::<cubecl::cuda::CudaRuntime, f32>::empty(client, count);
    sync()?;
    let (s, r) = (
        device_address(client, &send)?,
        device_address(client, &recv)?,
    );
    let t = std::time::Instant::now();
    comm.reduce_scatter_sum(s, r, count)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let got = download(&recv)?;
    let mut want = mine;
    group.all_reduce_sum(&mut want)?;
    let want = &want[rank * count..(rank + 1) * count];
    record("reduce_scatter_sum", &got, want, sum_tolerance(want), ms);

    // All-gather: count in, every rank's count in rank order out.
    let mine = random(count);
    let send = Buf::<cubecl::cuda::CudaRuntime, f32>::upload(client, &mine);
    let recv = Buf::<cubecl::cuda::CudaRuntime, f32>::empty(client, world * count);
    sync()?;
    let (s, r) = (
        device_address(client, &send)?,
        device_address(client, &recv)?,
    );
    let t = std::time::Instant::now();
    comm.all_gather(s, r, count)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let got = download(&recv)?;
    let bytes: Vec<u8> = mine.iter().flat_map(|x| x.to_le_bytes()).collect();
    let want: Vec<f32> = group
        .all_gather(&bytes)?
        .concat()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    record("all_gather", &got, &want, 0.0, ms);
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_and_a_library_that_is_not_nccl_are_told_apart() {
        let missing = probe_at(Path::new("/nonexistent/libnccl.so.2")).unwrap_err();
        assert!(
            missing.starts_with("/nonexistent/libnccl.so.2: "),
            "{missing}"
        );
        let libc = probe_at(Path::new("libc.so.6")).unwrap_err();
        assert!(libc.contains("no ncclGetVersion (not NCCL)"), "{libc}");
    }

    #[test]
    fn the_probe_finds_nccl_or_says_where_it_looked() {
        match probe() {
            Ok(found) => {
                println!("found {found}");
                assert!(found.version.0 >= 2, "{found}");
            }
            Err(why) => {
                println!("no NCCL here: {why}");
                assert!(
                    why.contains("libnccl.so.2") && why.contains("libnccl.so:"),
                    "{why}"
                );
            }
        }
    }
}
