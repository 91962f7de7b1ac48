//! `PowerCutFs`, a FUSE file system for power-loss tests: files live in memory, every inode
//! also keeps the state it had when it was last made durable, and `cut_power` unmounts,
//! throws away everything that was not durable, and mounts again.
//!
//! The durability model is POSIX's, the one RocksDB's own fault-injection file system assumes:
//! - A file's data, size and mode become durable at `fsync` or `fdatasync` of that file.
//!   A cut loses every write made since, whole: nothing unsynced survives, nothing synced is
//!   lost.
//! - A directory's entries (create, mknod, mkdir, unlink, rmdir, rename, link) become durable
//!   only at `fsync` of that directory (FUSE `fsyncdir`); a rename between two directories
//!   needs both synced. This is stricter than ext4 or xfs, whose journals usually commit a new
//!   file's name together with the file's `fsync`: what survives here survives there.
//! - After a cut a durable name points at its inode's durable content: a file whose name was
//!   synced but whose data was not comes back empty. Inodes no durable name reaches are gone.
//!
//! It does not lie in the other direction either. Every `write` reaches this daemon: no
//! writeback cache is negotiated and files are opened with direct I/O, so the kernel's page
//! cache holds nothing. Reads while the power is on see the latest, unsynced data. Each cut
//! remounts, so no kernel cache of the old mount survives. `fallocate` answers EOPNOTSUPP,
//! which RocksDB treats as "no preallocation".
//!
//! To cut the power inside a commit, a test arms a `Trap`: the n-th sync from then on holds
//! the file system (every request waits) before or after it takes effect, until the test has
//! sent SIGKILL to the process that made it.
//!
//! Mounting opens `/dev/fuse` and calls mount(2) directly (fuser without libfuse), which
//! needs root or CAP_SYS_ADMIN but no `fusermount` binary.

mod fuse;
mod model;

pub use model::CutReport;

use fuser::{BackgroundSession, Config, MountOption};
use model::State;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Where an armed sync holds the file system, so that the power can go at that instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// Before the sync takes effect: what it would have made durable is lost.
    BeforeSync,
    /// After the sync took effect, before its caller hears of it.
    AfterSync,
}

#[derive(Default)]
struct TrapState {
    /// Syncs left until the trap springs, and where it holds.
    armed: Option<(u64, Trap)>,
    /// A sync is held: the FUSE thread waits for `release`.
    holding: bool,
}

/// The trap shared by the test and the FUSE thread.
#[derive(Default)]
struct Traps {
    state: Mutex<TrapState>,
    changed: Condvar,
}

impl Traps {
    fn lock(&self) -> MutexGuard<'_, TrapState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one sync; `Some` when the trap springs on it.
    fn spring(&self) -> Option<Trap> {
        let mut state = self.lock();
        let (left, trap) = state.armed?;
        if left > 1 {
            state.armed = Some((left - 1, trap));
            return None;
        }
        state.armed = None;
        state.holding = true;
        self.changed.notify_all();
        Some(trap)
    }

    /// Holds the FUSE thread (and with it every request to the file system) until `release`.
    fn hold(&self) {
        let state = self.lock();
        drop(self.changed.wait_while(state, |state| state.holding));
    }

    fn release(&self) {
        let mut state = self.lock();
        *state = TrapState::default();
        self.changed.notify_all();
    }
}

/// The mounted file system; dropping it unmounts.
pub struct PowerCutFs {
    state: Arc<Mutex<State>>,
    traps: Arc<Traps>,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
}

impl PowerCutFs {
    /// Mounts an empty file system at `mountpoint` (an existing empty directory).
    pub fn mount(mountpoint: &Path) -> std::io::Result<Self> {
        let mut fs = Self {
            state: Arc::new(Mutex::new(State::new())),
            traps: Arc::default(),
            mountpoint: mountpoint.to_path_buf(),
            session: None,
        };
        fs.session = Some(fs.spawn()?);
        Ok(fs)
    }

    fn spawn(&self) -> std::io::Result<BackgroundSession> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powercut".to_string()),
            MountOption::DefaultPermissions,
        ];
        let handler = fuse::Handler {
            state: self.state.clone(),
            traps: self.traps.clone(),
        };
        fuser::spawn_mount(handler, &self.mountpoint, &config)
    }

    /// Arms the trap: the `syncs`-th sync from now (counting `fsync`, `fdatasync` and
    /// `fsyncdir`) holds the file system at `trap` until the power is cut.
    pub fn arm(&self, syncs: u64, trap: Trap) {
        self.traps.lock().armed = Some((syncs.max(1), trap));
    }

    /// Waits until the armed trap holds a sync; false after `timeout`.
    pub fn wait_for_trap(&self, timeout: Duration) -> bool {
        let state = self.traps.lock();
        let (state, _) = self
            .traps
            .changed
            .wait_timeout_while(state, timeout, |state| !state.holding)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.holding
    }

    /// Lets a held sync answer. Call it after SIGKILL has been sent to the process that made
    /// the sync (it cannot exit before the answer) and before waiting for it: it dies before
    /// it can act on the answer. A trap set off by nothing is disarmed.
    pub fn release_trap(&self) {
        self.traps.release();
    }

    /// Cuts the power: unmounts (every process using the mount must have exited), reverts
    /// every file and directory to its durable state, and mounts again.
    pub fn cut_power(&mut self) -> std::io::Result<CutReport> {
        self.traps.release();
        self.unmount()?;
        let report = self.lock().revert();
        self.session = Some(self.spawn()?);
        Ok(report)
    }

    /// `fsync`, `fdatasync` and `fsyncdir` calls served so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    fn unmount(&mut self) -> std::io::Result<()> {
        /// `ECONNABORTED`: some kernels end the connection of an unmounted FUSE file system
        /// with it rather than with `ENODEV`, which fuser takes as the normal end.
        const CONNECTION_ENDED_AT_UNMOUNT: i32 = 103;
        match self.session.take().map(BackgroundSession::umount_and_join) {
            Some(Err(error)) if error.raw_os_error() != Some(CONNECTION_ENDED_AT_UNMOUNT) => {
                Err(error)
            }
            _ => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        self.traps.release();
        if let Err(error) = self.unmount() {
            // A process still using the mount (a failing test's child): detach it lazily so
            // the temporary directory can go.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
            eprintln!(
                "powercut: unmount of {} failed: {error}",
                self.mountpoint.display()
            );
        }
    }
}
