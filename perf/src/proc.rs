//! The process's own memory, from Linux's /proc/self/status.
//!
//! Benchmarks report resident memory beside their rates: a loader that is
//! fast because it holds the corpus in RAM is not the loader we want. Where
//! there is no /proc (not Linux) every figure is 0, and the reports say so
//! by printing 0 rather than failing the benchmark.

/// A `kB` field of /proc/self/status (`"VmHWM:"`, `"RssAnon:"`, ...) in
/// bytes; 0 where the file or the field is missing.
pub fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status_field_bytes(&status, field))
        .unwrap_or(0)
}

/// The peak resident set size of this process so far.
pub fn peak_rss_bytes() -> u64 {
    status_bytes("VmHWM:")
}

/// `field` of a /proc/self/status text, in bytes. The kernel writes these
/// sizes in KiB (its "kB" means 1024 bytes).
fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_as_bytes() {
        let status = "Name:\tprior\nVmHWM:\t  2048 kB\nRssAnon:\t  12 kB\n";
        assert_eq!(status_field_bytes(status, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(status_field_bytes(status, "RssAnon:"), Some(12 * 1024));
        assert_eq!(status_field_bytes(status, "RssFile:"), None);
    }

    #[test]
    fn this_process_has_a_peak_rss_on_linux() {
        if !std::path::Path::new("/proc/self/status").exists() {
            eprintln!("skipped: no /proc/self/status on this system");
            return;
        }
        assert!(peak_rss_bytes() > 0);
    }
}
