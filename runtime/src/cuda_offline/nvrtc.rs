//! NVRTC, loaded at run time, compiling CUDA C++ to a CUBIN for a named
//! architecture and reading ptxas's resource report (`--ptxas-options=-v`):
//! registers, spills, stack and static shared memory per entry function.
//!
//! The library is found, in order, at `--nvrtc` (the caller's path), at
//! `PRIOR_NVRTC`, in the project venv that `ci/setup` makes (`.venv`, the
//! PyPI wheels `nvidia-cuda-nvrtc`, `-runtime`, `-crt`, `-cccl` for CUDA
//! 13.0), and in a CUDA toolkit (`CUDA_PATH`, `/usr/local/cuda`). A path
//! may name `libnvrtc.so.*` itself or the directory holding it.
//!
//! NVRTC opens its builtins library (`libnvrtc-builtins.so.*`) by name, so
//! it must already be loaded or on `LD_LIBRARY_PATH`; it is loaded here
//! first, from beside `libnvrtc`, with `RTLD_GLOBAL`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use libloading::os::unix::{Library, Symbol, RTLD_GLOBAL, RTLD_NOW};

use super::Arch;

type Program = *mut c_void;
type CreateProgram = unsafe extern "C" fn(
    *mut Program,
    *const c_char,
    *const c_char,
    c_int,
    *const *const c_char,
    *const *const c_char,
) -> c_int;
type CompileProgram = unsafe extern "C" fn(Program, c_int, *const *const c_char) -> c_int;
type DestroyProgram = unsafe extern "C" fn(*mut Program) -> c_int;
type GetSize = unsafe extern "C" fn(Program, *mut usize) -> c_int;
type GetBytes = unsafe extern "C" fn(Program, *mut c_char) -> c_int;
type Version = unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int;

/// What went wrong finding or loading NVRTC.
#[derive(Debug, thiserror::Error)]
pub enum NvrtcError {
    #[error(
        "NVRTC not found (looked in: {looked}). Install it with ci/setup (CUDA 13.0 wheels into .venv), or pip install nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85 and pass --nvrtc <site-packages>/nvidia/cu13/lib (or set PRIOR_NVRTC)"
    )]
    NotFound { looked: String },
    #[error("could not load NVRTC from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("NVRTC at {lib} has no CUDA headers at {include} (cuda_fp16.h is needed); install nvidia-cuda-runtime and nvidia-cuda-crt beside it")]
    NoHeaders { lib: PathBuf, include: PathBuf },
}

/// A loaded NVRTC with the include directories its CUDA headers are in.
pub struct Nvrtc {
    pub library: PathBuf,
    pub include: PathBuf,
    pub version: (i32, i32),
    create: CreateProgram,
    compile: CompileProgram,
    destroy: DestroyProgram,
    log_size: GetSize,
    log: GetBytes,
    cubin_size: GetSize,
    _builtins: Option<Library>,
    _lib: Library,
}

// SAFETY: NVRTC's entry points are thread-safe for distinct programs (the
// NVRTC documentation), and each compile below owns its program.
unsafe impl Send for Nvrtc {}
unsafe impl Sync for Nvrtc {}

/// The first file in `dir` (by name) whose name starts with `prefix`.
fn file_with_prefix(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// `<dir>/.venv/lib/python3.*/site-packages/nvidia/cu13/lib`.
fn venv_lib(dir: &Path) -> Option<PathBuf> {
    let lib = dir.join(".venv").join("lib");
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    pythons.sort();
    pythons
        .into_iter()
        .map(|p| p.join("site-packages/nvidia/cu13/lib"))
        .find(|p| p.is_dir())
}

/// The NVRTC library to load: see the module doc for the order.
pub fn find(explicit: Option<&Path>) -> Result<PathBuf, NvrtcError> {
    let mut looked = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    } else if let Some(p) = std::env::var_os("PRIOR_NVRTC") {
        candidates.push(PathBuf::from(p));
    } else {
        let mut roots: Vec<PathBuf> = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            roots.extend(cwd.ancestors().map(Path::to_path_buf));
        }
        if let Ok(exe) = std::env::current_exe() {
            roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
        }
        for root in roots {
            match venv_lib(&root) {
                Some(lib) => candidates.push(lib),
                None => looked.push(format!("{}/.venv", root.display())),
            }
        }
        if let Some(cuda) = std::env::var_os("CUDA_PATH") {
            candidates.push(PathBuf::from(cuda).join("lib64"));
        }
        candidates.push(PathBuf::from("/usr/local/cuda/lib64"));
    }
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
        if let Some(lib) = c
            .is_dir()
            .then(|| file_with_prefix(&c, "libnvrtc.so"))
            .flatten()
        {
            return Ok(lib);
        }
        looked.push(c.display().to_string());
    }
    looked.dedup();
    Err(NvrtcError::NotFound {
        looked: looked.join(", "),
    })
}

impl Nvrtc {
    /// Loads NVRTC found by [`find`].
    pub fn load(explicit: Option<&Path>) -> Result<Nvrtc, NvrtcError> {
        let library = find(explicit)?;
        let dir = library.parent().unwrap_or(Path::new(".")).to_path_buf();
        let include = [dir.join("../include"), dir.join("../../include")]
            .into_iter()
            .find(|p| p.join("cuda_fp16.h").is_file())
            .ok_or_else(|| NvrtcError::NoHeaders {
                lib: library.clone(),
                include: dir.join("../include"),
            })?;
        let include = include.canonicalize().unwrap_or(include);
        let load_err = |path: &Path, e: libloading::Error| NvrtcError::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let builtins = file_with_prefix(&dir, "libnvrtc-builtins.so");
        // SAFETY: loading NVIDIA's libraries runs their initialisers only.
        let builtins = match builtins {
            Some(b) => Some(
                unsafe { Library::open(Some(&b), RTLD_NOW | RTLD_GLOBAL) }
                    .map_err(|e| load_err(&b, e))?,
            ),
            None => None,
        };
        // SAFETY: as above.
        let lib = unsafe { Library::open(Some(&library), RTLD_NOW) }
            .map_err(|e| load_err(&library, e))?;
        // SAFETY: the symbols are NVRTC's C API, with the signatures above
        // (nvrtc.h, CUDA 11 to 13).
        unsafe {
            fn sym<T: Copy>(lib: &Library, name: &[u8], path: &Path) -> Result<T, NvrtcError> {
                // SAFETY: the caller names a symbol of type T.
                let s: Symbol<T> = unsafe { lib.get(name) }.map_err(|e| NvrtcError::Load {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
                Ok(*s)
            }
            let version: Version = sym(&lib, b"nvrtcVersion\0", &library)?;
            let (mut major, mut minor) = (0, 0);
            version(&mut major, &mut minor);
            Ok(Nvrtc {
                create: sym(&lib, b"nvrtcCreateProgram\0", &library)?,
                compile: sym(&lib, b"nvrtcCompileProgram\0", &library)?,
                destroy: sym(&lib, b"nvrtcDestroyProgram\0", &library)?,
                log_size: sym(&lib, b"nvrtcGetProgramLogSize\0", &library)?,
                log: sym(&lib, b"nvrtcGetProgramLog\0", &library)?,
                cubin_size: sym(&lib, b"nvrtcGetCUBINSize\0", &library)?,
                version: (major, minor),
                library,
                include,
                _builtins: builtins,
                _lib: lib,
            })
        }
    }

    /// Compiles `source` for `arch` to a CUBIN, as cubecl-cuda does (its
    /// flags) plus ptxas's resource report, which is parsed.
    pub fn compile(&self, source: &str, arch: Arch) -> Compiled {
        let Ok(src) = CString::new(source) else {
            return Compiled::failed("the source holds a NUL byte".into());
        };
        let mut options = vec![
            arch.nvrtc_flag(),
            format!("--include-path={}", self.include.display()),
            "-lineinfo".to_string(),
            "--ptxas-options=-v".to_string(),
        ];
        let cccl = self.include.join("cccl");
        if cccl.is_dir() {
            options.push(format!("--include-path={}", cccl.display()));
        }
        let options: Vec<CString> = options
            .into_iter()
            .map(|o| CString::new(o).expect("paths hold no NUL"))
            .collect();
        let option_ptrs: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
        let name = c"kernel.cu";
        // SAFETY: NVRTC's C API used as documented: the program is created,
        // compiled, its log read into a buffer of the size NVRTC reports,
        // and destroyed; every pointer outlives the calls.
        unsafe {
            let mut program: Program = std::ptr::null_mut();
            let rc = (self.create)(
                &mut program,
                src.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            );
            if rc != 0 {
                return Compiled::failed(format!("nvrtcCreateProgram returned {rc}"));
            }
            let rc = (self.compile)(program, option_ptrs.len() as c_int, option_ptrs.as_ptr());
            let mut size = 0usize;
            let mut log = String::new();
            if (self.log_size)(program, &mut size) == 0 && size > 0 {
                let mut buf = vec![0 as c_char; size];
                if (self.log)(program, buf.as_mut_ptr()) == 0 {
                    log = CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
                }
            }
            let mut cubin = 0usize;
            if rc == 0 {
                (self.cubin_size)(program, &mut cubin);
            }
            (self.destroy)(&mut program);
            if rc != 0 {
                return Compiled::failed(format!("nvrtcCompileProgram returned {rc}:\n{log}"));
            }
            let mut c = parse_ptxas(&log);
            c.cubin_bytes = cubin;
            c.log = log;
            c
        }
    }
}

/// One compile's result: `ok` with ptxas's figures for the entry function
/// (the largest, if the source holds several), or the log of why not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    pub ok: bool,
    pub registers: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
    pub stack_bytes: u32,
    /// `__shared__` arrays declared in the source (ptxas's `smem`).
    pub static_shared_bytes: u32,
    pub barriers: u32,
    pub cubin_bytes: usize,
    pub log: String,
}

impl Compiled {
    fn failed(log: String) -> Compiled {
        Compiled {
            log,
            ..Default::default()
        }
    }
}

/// The first integer before `unit` in `line` (`"16 registers"` -> 16).
fn number_before(line: &str, unit: &str) -> Option<u32> {
    let at = line.find(unit)?;
    line[..at].split_whitespace().last()?.parse().ok()
}

/// Reads ptxas's `-v` report: per entry function a "Function properties"
/// line (stack, spill stores, spill loads) and a "Used N registers" line
/// (barriers, smem). The entry with the most registers is kept.
pub fn parse_ptxas(log: &str) -> Compiled {
    let mut entries: Vec<Compiled> = Vec::new();
    let mut current: Option<Compiled> = None;
    for line in log.lines() {
        if line.contains("Compiling entry function") {
            if let Some(c) = current.take() {
                entries.push(c);
            }
            current = Some(Compiled {
                ok: true,
                ..Default::default()
            });
        }
        let Some(c) = current.as_mut() else { continue };
        if line.contains("bytes stack frame") {
            c.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
            c.spill_stores = number_before(line, "bytes spill stores").unwrap_or(0);
            c.spill_loads = number_before(line, "bytes spill loads").unwrap_or(0);
        }
        if line.contains("Used") && line.contains("registers") {
            c.registers = number_before(line, "registers").unwrap_or(0);
            c.barriers = number_before(line, "barriers").unwrap_or(0);
            c.static_shared_bytes = number_before(line, "bytes smem").unwrap_or(0);
        }
    }
    entries.extend(current);
    entries
        .into_iter()
        .max_by_key(|c| c.registers)
        .unwrap_or_else(|| Compiled::failed(format!("no entry function in ptxas's report:\n{log}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptxas_reports_are_read_per_entry_function_keeping_the_largest() {
        let log = "ptxas info    : 0 bytes gmem\n\
ptxas info    : Compiling entry function 'small' for 'sm_90a'\n\
ptxas info    : Function properties for small\n\
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
ptxas info    : Used 10 registers, used 1 barriers, 1024 bytes smem\n\
ptxas info    : Compiling entry function 'big' for 'sm_90a'\n\
ptxas info    : Function properties for big\n\
ptxas         .     48 bytes stack frame, 44 bytes spill stores, 40 bytes spill loads\n\
ptxas info    : Used 255 registers, 400 bytes cmem[0]\n";
        let c = parse_ptxas(log);
        assert!(c.ok);
        assert_eq!(
            (c.registers, c.spill_stores, c.spill_loads, c.stack_bytes),
            (255, 44, 40, 48)
        );
        assert_eq!((c.barriers, c.static_shared_bytes), (0, 0));
        let none = parse_ptxas("ptxas info    : 0 bytes gmem\n");
        assert!(!none.ok && none.log.contains("no entry function"));
    }
}
