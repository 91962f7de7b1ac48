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

use fuser::{
    AccessFlags, BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

const ROOT: u64 = 1;
/// How long the kernel may cache names and attributes; nothing changes them behind its back
/// while mounted, and every cut remounts.
const TTL: Duration = Duration::from_secs(1);
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFIFO: u32 = 0o010_000;

/// A file's bytes now, and as they were at its last sync.
#[derive(Default)]
struct FileBody {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// The lowest offset changed since the last sync (a sync copies from there on).
    dirty_from: Option<usize>,
}

impl FileBody {
    fn touch(&mut self, offset: usize) {
        self.dirty_from = Some(self.dirty_from.map_or(offset, |from| from.min(offset)));
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        self.touch(offset.min(self.live.len()));
        if self.live.len() < end {
            self.live.resize(end, 0);
        }
        self.live[offset..end].copy_from_slice(data);
    }

    fn truncate(&mut self, size: usize) {
        self.touch(size.min(self.live.len()));
        self.live.resize(size, 0);
    }

    fn sync(&mut self) {
        if let Some(from) = self.dirty_from.take() {
            let from = from.min(self.live.len()).min(self.durable.len());
            self.durable.truncate(from);
            self.durable.extend_from_slice(&self.live[from..]);
        }
    }

    /// Drops unsynced bytes; returns how many bytes differed.
    fn revert(&mut self) -> usize {
        let dropped = match self.dirty_from.take() {
            Some(from) => self.live.len().saturating_sub(from).max(1),
            None => 0,
        };
        self.live.clone_from(&self.durable);
        dropped
    }
}

/// A directory's names now, and as they were at its last sync.
#[derive(Default)]
struct DirBody {
    live: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

enum Body {
    File(FileBody),
    Dir(DirBody),
    /// A socket or a fifo: a name and a mode, no content.
    Node(FileType),
}

struct Inode {
    body: Body,
    perm: u16,
    durable_perm: u16,
    /// Live names of this inode (a directory counts 2, as `stat` shows).
    nlink: u32,
    /// Open handles; an unlinked file keeps its data while one is open.
    open: u32,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
}

impl Inode {
    fn kind(&self) -> FileType {
        match &self.body {
            Body::File(_) => FileType::RegularFile,
            Body::Dir(_) => FileType::Directory,
            Body::Node(kind) => *kind,
        }
    }
}

/// What one cut threw away.
#[derive(Debug, Default, Clone, Copy)]
pub struct CutReport {
    /// Files that had unsynced writes.
    pub files_reverted: usize,
    /// Bytes written after the files' last sync (at least 1 per reverted file).
    pub bytes_dropped: usize,
    /// Directories whose names changed since their last sync.
    pub dirs_reverted: usize,
}

/// The whole file system; it outlives every mount.
struct State {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    next_fh: u64,
    /// `fsync`, `fdatasync` and `fsyncdir` calls since the start, for reports.
    syncs: u64,
}

type Fallible<T> = Result<T, Errno>;

impl State {
    fn new() -> Self {
        let mut state = Self {
            inodes: HashMap::new(),
            next_ino: ROOT,
            next_fh: 1,
            syncs: 0,
        };
        let root = state.add(Body::Dir(DirBody::default()), 0o755, 0, 0);
        assert_eq!(root, ROOT);
        state.inode_mut(ROOT).expect("root").nlink = 2;
        state
    }

    fn add(&mut self, body: Body, perm: u16, uid: u32, gid: u32) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if matches!(body, Body::Dir(_)) { 2 } else { 1 };
        let inode = Inode {
            body,
            perm,
            durable_perm: perm,
            nlink,
            open: 0,
            uid,
            gid,
            mtime: SystemTime::now(),
        };
        self.inodes.insert(ino, inode);
        ino
    }

    fn inode(&self, ino: u64) -> Fallible<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn inode_mut(&mut self, ino: u64) -> Fallible<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: u64) -> Fallible<&DirBody> {
        match &self.inode(ino)?.body {
            Body::Dir(dir) => Ok(dir),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Fallible<&mut DirBody> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(dir) => Ok(dir),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Fallible<&mut FileBody> {
        match &mut self.inode_mut(ino)?.body {
            Body::File(file) => Ok(file),
            Body::Dir(_) => Err(Errno::EISDIR),
            Body::Node(_) => Err(Errno::EINVAL),
        }
    }

    fn attr(&self, ino: u64) -> Fallible<FileAttr> {
        let inode = self.inode(ino)?;
        let size = match &inode.body {
            Body::File(file) => file.live.len() as u64,
            Body::Dir(dir) => dir.live.len() as u64,
            Body::Node(_) => 0,
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: inode.mtime,
            mtime: inode.mtime,
            ctime: inode.mtime,
            crtime: inode.mtime,
            kind: inode.kind(),
            perm: inode.perm,
            nlink: inode.nlink,
            uid: inode.uid,
            gid: inode.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn child(&self, parent: u64, name: &OsStr) -> Fallible<u64> {
        self.dir(parent)?
            .live
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    /// Creates an inode under a new name in `parent`.
    fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        body: Body,
        perm: u16,
        req: &Request,
    ) -> Fallible<u64> {
        if self.dir(parent)?.live.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let is_dir = matches!(body, Body::Dir(_));
        let ino = self.add(body, perm, req.uid(), req.gid());
        self.dir_mut(parent)?.live.insert(name.to_os_string(), ino);
        if is_dir {
            self.inode_mut(parent)?.nlink += 1;
        }
        Ok(ino)
    }

    /// Removes a live name; the inode's live data goes once nothing names or holds it (its
    /// durable state stays until the next cut, which may bring the name back).
    fn unname(&mut self, parent: u64, name: &OsStr) -> Fallible<u64> {
        let ino = self
            .dir_mut(parent)?
            .live
            .remove(name)
            .ok_or(Errno::ENOENT)?;
        let inode = self.inode_mut(ino)?;
        let is_dir = matches!(inode.body, Body::Dir(_));
        inode.nlink = if is_dir {
            0
        } else {
            inode.nlink.saturating_sub(1)
        };
        if inode.nlink == 0 && inode.open == 0 {
            if let Body::File(file) = &mut inode.body {
                file.live = Vec::new();
                file.dirty_from = None;
            }
        }
        if is_dir {
            let parent = self.inode_mut(parent)?;
            parent.nlink = parent.nlink.saturating_sub(1);
        }
        Ok(ino)
    }

    fn rename(
        &mut self,
        from: (u64, &OsStr),
        to: (u64, &OsStr),
        flags: RenameFlags,
    ) -> Fallible<()> {
        let ino = self.child(from.0, from.1)?;
        let is_dir = matches!(self.inode(ino)?.body, Body::Dir(_));
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return Err(Errno::EINVAL);
        }
        if let Ok(existing) = self.child(to.0, to.1) {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if existing == ino {
                return Ok(());
            }
            let existing_is_dir = matches!(self.inode(existing)?.body, Body::Dir(_));
            match (is_dir, existing_is_dir) {
                (true, true) if !self.dir(existing)?.live.is_empty() => {
                    return Err(Errno::ENOTEMPTY);
                }
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                _ => {}
            }
            self.unname(to.0, to.1)?;
        }
        self.dir_mut(from.0)?.live.remove(from.1);
        self.dir_mut(to.0)?.live.insert(to.1.to_os_string(), ino);
        if is_dir && from.0 != to.0 {
            self.inode_mut(from.0)?.nlink -= 1;
            self.inode_mut(to.0)?.nlink += 1;
        }
        Ok(())
    }

    /// `fsync`, `fdatasync` or `fsyncdir`: the inode's state now is what survives a cut.
    fn sync(&mut self, ino: u64) -> Fallible<()> {
        self.syncs += 1;
        let inode = self.inode_mut(ino)?;
        inode.durable_perm = inode.perm;
        match &mut inode.body {
            Body::File(file) => file.sync(),
            Body::Dir(dir) => dir.durable.clone_from(&dir.live),
            Body::Node(_) => {}
        }
        Ok(())
    }

    /// The power cut: every inode goes back to its durable state, and inodes no durable name
    /// reaches from the root are dropped.
    fn revert(&mut self) -> CutReport {
        let mut report = CutReport::default();
        for inode in self.inodes.values_mut() {
            inode.perm = inode.durable_perm;
            inode.open = 0;
            match &mut inode.body {
                Body::File(file) => {
                    let dropped = file.revert();
                    if dropped > 0 {
                        report.files_reverted += 1;
                        report.bytes_dropped += dropped;
                    }
                }
                Body::Dir(dir) => {
                    if dir.live != dir.durable {
                        report.dirs_reverted += 1;
                        dir.live.clone_from(&dir.durable);
                    }
                }
                Body::Node(_) => {}
            }
        }
        let mut names: HashMap<u64, u32> = HashMap::from([(ROOT, 1)]);
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if let Some(Inode {
                body: Body::Dir(dir),
                ..
            }) = self.inodes.get(&ino)
            {
                for child in dir.live.values() {
                    let count = names.entry(*child).or_insert(0);
                    *count += 1;
                    if *count == 1 {
                        stack.push(*child);
                    }
                }
            }
        }
        self.inodes.retain(|ino, _| names.contains_key(ino));
        let subdirs: HashMap<u64, u32> = self
            .inodes
            .iter()
            .filter_map(|(ino, inode)| match &inode.body {
                Body::Dir(dir) => Some((
                    *ino,
                    dir.live
                        .values()
                        .filter(|child| {
                            matches!(self.inodes.get(child).map(|c| &c.body), Some(Body::Dir(_)))
                        })
                        .count() as u32,
                )),
                _ => None,
            })
            .collect();
        for (ino, inode) in &mut self.inodes {
            inode.nlink = match subdirs.get(ino) {
                Some(count) => 2 + count,
                None => names[ino],
            };
        }
        report
    }
}

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
        let handler = Handler {
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

/// The FUSE side: each request locks the state once.
struct Handler {
    state: Arc<Mutex<State>>,
    traps: Arc<Traps>,
}

impl Handler {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `fsync`, `fdatasync` and `fsyncdir`, with the trap.
    fn sync(&self, ino: INodeNo, reply: ReplyEmpty) {
        let trap = self.traps.spring();
        if trap == Some(Trap::BeforeSync) {
            self.traps.hold();
            return reply.error(Errno::EIO);
        }
        let result = self.lock().sync(ino.0);
        if trap == Some(Trap::AfterSync) {
            self.traps.hold();
        }
        empty(result, reply);
    }

    fn entry(&self, result: Fallible<u64>, reply: ReplyEntry) {
        match result.and_then(|ino| self.lock().attr(ino)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(errno) => reply.error(errno),
        }
    }
}

fn empty(result: Fallible<()>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(errno) => reply.error(errno),
    }
}

fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

impl Filesystem for Handler {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.lock().child(parent.0, name);
        self.entry(found, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.lock().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(errno) => reply.error(errno),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.lock();
        let result = (|| {
            if let Some(size) = size {
                state.file_mut(ino.0)?.truncate(size as usize);
            }
            let inode = state.inode_mut(ino.0)?;
            if let Some(mode) = mode {
                inode.perm = (mode & 0o7777) as u16;
            }
            inode.uid = uid.unwrap_or(inode.uid);
            inode.gid = gid.unwrap_or(inode.gid);
            inode.mtime = match mtime {
                Some(TimeOrNow::SpecificTime(time)) => time,
                Some(TimeOrNow::Now) => SystemTime::now(),
                None if size.is_some() => SystemTime::now(),
                None => inode.mtime,
            };
            state.attr(ino.0)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(errno) => reply.error(errno),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let body = match mode & S_IFMT {
            S_IFREG => Body::File(FileBody::default()),
            S_IFSOCK => Body::Node(FileType::Socket),
            S_IFIFO => Body::Node(FileType::NamedPipe),
            _ => return reply.error(Errno::EPERM),
        };
        let created = self
            .lock()
            .create(parent.0, name, body, perm(mode, umask), req);
        self.entry(created, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let body = Body::Dir(DirBody::default());
        let created = self
            .lock()
            .create(parent.0, name, body, perm(mode, umask), req);
        self.entry(created, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.lock();
        let result = state.child(parent.0, name).and_then(|ino| {
            if matches!(state.inode(ino)?.body, Body::Dir(_)) {
                return Err(Errno::EISDIR);
            }
            state.unname(parent.0, name).map(drop)
        });
        empty(result, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.lock();
        let result = state.child(parent.0, name).and_then(|ino| {
            if !state.dir(ino)?.live.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            state.unname(parent.0, name).map(drop)
        });
        empty(result, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = self
            .lock()
            .rename((parent.0, name), (newparent.0, newname), flags);
        empty(result, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut state = self.lock();
        let result = (|| {
            if matches!(state.inode(ino.0)?.body, Body::Dir(_)) {
                return Err(Errno::EPERM);
            }
            if state.dir(newparent.0)?.live.contains_key(newname) {
                return Err(Errno::EEXIST);
            }
            state
                .dir_mut(newparent.0)?
                .live
                .insert(newname.to_os_string(), ino.0);
            state.inode_mut(ino.0)?.nlink += 1;
            Ok(ino.0)
        })();
        drop(state);
        self.entry(result, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut state = self.lock();
        match state.inode_mut(ino.0).map(|inode| inode.open += 1) {
            Ok(()) => {
                state.next_fh += 1;
                reply.opened(FileHandle(state.next_fh), FopenFlags::FOPEN_DIRECT_IO);
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut state = self.lock();
        match state.file_mut(ino.0) {
            Ok(file) => {
                let start = (offset as usize).min(file.live.len());
                let end = (start + size as usize).min(file.live.len());
                reply.data(&file.live[start..end]);
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.lock();
        match state.file_mut(ino.0) {
            Ok(file) => {
                file.write(offset as usize, data);
                if let Ok(inode) = state.inode_mut(ino.0) {
                    inode.mtime = SystemTime::now();
                }
                reply.written(data.len() as u32);
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.lock();
        if let Ok(inode) = state.inode_mut(ino.0) {
            inode.open = inode.open.saturating_sub(1);
            if inode.open == 0 && inode.nlink == 0 {
                if let Body::File(file) = &mut inode.body {
                    file.live = Vec::new();
                    file.dirty_from = None;
                }
            }
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino, reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.lock();
        let dir = match state.dir(ino.0) {
            Ok(dir) => dir,
            Err(errno) => return reply.error(errno),
        };
        let dots = [
            (ino.0, FileType::Directory, OsStr::new(".")),
            (ino.0, FileType::Directory, OsStr::new("..")),
        ];
        let children = dir.live.iter().map(|(name, child)| {
            let kind = state
                .inodes
                .get(child)
                .map_or(FileType::RegularFile, Inode::kind);
            (*child, kind, name.as_os_str())
        });
        for (index, (child, kind, name)) in dots
            .into_iter()
            .chain(children)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(child), index as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let blocks = 1 << 24;
        reply.statfs(blocks, blocks, blocks, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.lock();
        let body = Body::File(FileBody::default());
        let result = state
            .create(parent.0, name, body, perm(mode, umask), req)
            .and_then(|ino| {
                state.inode_mut(ino)?.open += 1;
                state.attr(ino)
            });
        match result {
            Ok(attr) => {
                let fh = state.next_fh;
                state.next_fh += 1;
                reply.created(
                    &TTL,
                    &attr,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::FOPEN_DIRECT_IO,
                );
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EOPNOTSUPP);
    }
}
