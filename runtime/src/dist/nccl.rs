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
//! probe reports. The collectives over NCCL are not wired into training
//! yet: a data-parallel run uses the host collective on every device.

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
