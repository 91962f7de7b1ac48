//! The in-memory file system and its durable shadow: every file's bytes and every
//! directory's names as they are now and as they were at their last sync, and the power cut
//! that brings every inode back to the latter.

use fuser::{Errno, FileAttr, FileType, INodeNo, RenameFlags, Request};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

pub(super) const ROOT: u64 = 1;

/// A file's bytes now, and as they were at its last sync.
#[derive(Default)]
pub(super) struct FileBody {
    pub(super) live: Vec<u8>,
    durable: Vec<u8>,
    /// The lowest offset changed since the last sync (a sync copies from there on).
    dirty_from: Option<usize>,
}

impl FileBody {
    fn touch(&mut self, offset: usize) {
        self.dirty_from = Some(self.dirty_from.map_or(offset, |from| from.min(offset)));
    }

    pub(super) fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        self.touch(offset.min(self.live.len()));
        if self.live.len() < end {
            self.live.resize(end, 0);
        }
        self.live[offset..end].copy_from_slice(data);
    }

    pub(super) fn truncate(&mut self, size: usize) {
        self.touch(size.min(self.live.len()));
        self.live.resize(size, 0);
    }

    pub(super) fn sync(&mut self) {
        if let Some(from) = self.dirty_from.take() {
            let from = from.min(self.live.len()).min(self.durable.len());
            self.durable.truncate(from);
            self.durable.extend_from_slice(&self.live[from..]);
        }
    }

    /// Drops unsynced bytes; returns how many bytes differed.
    pub(super) fn revert(&mut self) -> usize {
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
pub(super) struct DirBody {
    pub(super) live: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

pub(super) enum Body {
    File(FileBody),
    Dir(DirBody),
    /// A socket or a fifo: a name and a mode, no content.
    Node(FileType),
}

pub(super) struct Inode {
    pub(super) body: Body,
    pub(super) perm: u16,
    durable_perm: u16,
    /// Live names of this inode (a directory counts 2, as `stat` shows).
    pub(super) nlink: u32,
    /// Open handles; an unlinked file keeps its data while one is open.
    pub(super) open: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: SystemTime,
}

impl Inode {
    /// Frees a file's live bytes once no name and no handle refers to it; its durable bytes
    /// stay, since a cut may bring a durable name back.
    fn forget_if_unreferenced(&mut self) {
        if self.nlink == 0
            && self.open == 0
            && let Body::File(file) = &mut self.body
        {
            file.live = Vec::new();
            file.dirty_from = None;
        }
    }

    pub(super) fn kind(&self) -> FileType {
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
pub(super) struct State {
    pub(super) inodes: HashMap<u64, Inode>,
    next_ino: u64,
    next_fh: u64,
    /// `fsync`, `fdatasync` and `fsyncdir` calls since the start, for reports.
    pub(super) syncs: u64,
}

pub(super) type Fallible<T> = Result<T, Errno>;

impl State {
    pub(super) fn new() -> Self {
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

    pub(super) fn inode(&self, ino: u64) -> Fallible<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    pub(super) fn inode_mut(&mut self, ino: u64) -> Fallible<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    pub(super) fn dir(&self, ino: u64) -> Fallible<&DirBody> {
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

    pub(super) fn file_mut(&mut self, ino: u64) -> Fallible<&mut FileBody> {
        match &mut self.inode_mut(ino)?.body {
            Body::File(file) => Ok(file),
            Body::Dir(_) => Err(Errno::EISDIR),
            Body::Node(_) => Err(Errno::EINVAL),
        }
    }

    pub(super) fn attr(&self, ino: u64) -> Fallible<FileAttr> {
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

    pub(super) fn child(&self, parent: u64, name: &OsStr) -> Fallible<u64> {
        self.dir(parent)?
            .live
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    /// Creates an inode under a new name in `parent`.
    pub(super) fn create(
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

    /// A hard link: a new name for a file.
    pub(super) fn link(&mut self, ino: u64, parent: u64, name: &OsStr) -> Fallible<u64> {
        if matches!(self.inode(ino)?.body, Body::Dir(_)) {
            return Err(Errno::EPERM);
        }
        if self.dir(parent)?.live.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        self.dir_mut(parent)?.live.insert(name.to_os_string(), ino);
        self.inode_mut(ino)?.nlink += 1;
        Ok(ino)
    }

    /// A new handle on an inode.
    pub(super) fn open(&mut self, ino: u64) -> Fallible<u64> {
        self.inode_mut(ino)?.open += 1;
        self.next_fh += 1;
        Ok(self.next_fh)
    }

    /// A handle closed (FUSE `release`).
    pub(super) fn close(&mut self, ino: u64) {
        if let Ok(inode) = self.inode_mut(ino) {
            inode.open = inode.open.saturating_sub(1);
            inode.forget_if_unreferenced();
        }
    }

    /// Removes a live name; the inode's live data goes once nothing names or holds it (its
    /// durable state stays until the next cut, which may bring the name back).
    pub(super) fn unname(&mut self, parent: u64, name: &OsStr) -> Fallible<u64> {
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
        inode.forget_if_unreferenced();
        if is_dir {
            let parent = self.inode_mut(parent)?;
            parent.nlink = parent.nlink.saturating_sub(1);
        }
        Ok(ino)
    }

    pub(super) fn rename(
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
    pub(super) fn sync(&mut self, ino: u64) -> Fallible<()> {
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
    pub(super) fn revert(&mut self) -> CutReport {
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
