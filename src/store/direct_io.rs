//! Whether a directory's file system takes direct (`O_DIRECT`) writes. An import writes every
//! item once, gigabytes that nothing reads back while it runs; through the page cache each
//! byte is copied by the kernel into pages it must first find, which on a virtual machine
//! that hands free memory back to its host costs more than the rest of the write path
//! (BENCHMARKS.md). ext4 and xfs take direct writes; some file systems refuse them (tmpfs before
//! Linux 6.6, many FUSE ones), so the importer asks first rather than fail at its first flush.

use std::path::Path;

/// The alignment RocksDB's direct writes use (a page) and the size of the probe's write.
const BLOCK: usize = 4096;

/// Whether a file in `dir` can be opened for direct I/O and written one aligned block at a
/// time. Leaves nothing behind.
#[cfg(target_os = "linux")]
pub fn supported(dir: &Path) -> bool {
    use rustix::fs::{Mode, OFlags};
    let path = dir.join(".direct-io-probe");
    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::DIRECT;
    let written = rustix::fs::open(&path, flags, Mode::from_raw_mode(0o600)).and_then(|file| {
        let buffer = vec![0u8; 2 * BLOCK];
        let start = buffer.as_ptr().align_offset(BLOCK);
        rustix::io::write(&file, &buffer[start..start + BLOCK])
    });
    let _ = std::fs::remove_file(&path);
    matches!(written, Ok(BLOCK))
}

/// Elsewhere the importer writes through the page cache.
#[cfg(not(target_os = "linux"))]
pub fn supported(_dir: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::supported;

    #[test]
    fn the_probe_leaves_nothing_behind_and_refuses_a_missing_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Either answer is right for the machine's /tmp; what matters is that it answers
        // without leaving its file.
        let _ = supported(dir.path());
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
        assert!(!supported(&dir.path().join("missing")));
    }
}
