//! Power loss: `su` runs on `PowerCutFs`, a FUSE file system that loses every write not yet
//! synced when the power is cut (tests/support/powercut_fs.rs states its model). Concurrent
//! writers post messages and the power is cut while requests are in flight: at a random
//! instant, or while the file system holds a sync (before or after it takes effect, so inside
//! a commit). `su verify` checks the store the cut left, and the restarted SU must serve every
//! acknowledged write with its timestamp, in schedules without a gap or a repeat, with every
//! slot it served before unchanged; at the end every acknowledged item and assignment has
//! reached the bundler.
//!
//! `SU_POWER_LOSS_CYCLES` sets the number of cuts (default 20); `SU_POWER_LOSS_SEED` replays
//! the cut instants of an earlier run (each run prints its seed). The test needs Linux with
//! `/dev/fuse` and root (mount(2)); without them it fails, it never skips.

#[cfg(target_os = "linux")]
mod support;

#[cfg(target_os = "linux")]
#[path = "support/powercut_fs.rs"]
mod powercut_fs;

#[cfg(not(target_os = "linux"))]
#[test]
fn power_loss_needs_linux() {
    eprintln!("power_loss: skipped, the power-cut file system is FUSE on Linux");
}

#[cfg(target_os = "linux")]
mod linux {
    use super::powercut_fs::{CutReport, PowerCutFs, Trap};
    use super::support::fakes::{FakeBundler, Mode};
    use super::support::{Client, SuCommand, TestSu, json_field, tag};
    use std::collections::{HashMap, HashSet};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    const WRITERS: usize = 4;
    /// Acknowledged writes a cycle waits for before it may cut.
    const MIN_ACKS_PER_CYCLE: usize = 6;
    /// A random cut comes up to this long after those.
    const MAX_CUT_DELAY_MS: u64 = 400;
    /// A trapped cut holds one of the next this many syncs.
    const MAX_SYNCS_BEFORE_TRAP: u64 = 8;

    /// A small xorshift generator: the test's only randomness, replayable from its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn env_u64(name: &str) -> Option<u64> {
        let text = std::env::var(name).ok()?;
        Some(
            text.parse()
                .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
        )
    }

    /// A mounted `PowerCutFs` with a data dir whose name is durable, in a temporary directory.
    struct Rig {
        fs: PowerCutFs,
        data_dir: PathBuf,
        _root: tempfile::TempDir,
    }

    impl Rig {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            let mountpoint = root.path().join("mnt");
            std::fs::create_dir(&mountpoint).unwrap();
            let fs = PowerCutFs::mount(&mountpoint).unwrap_or_else(|error| {
                panic!(
                    "cannot mount the power-cut FUSE file system at {}: {error}. The power-loss \
                     test needs Linux with /dev/fuse and root (mount(2)); it does not skip.",
                    mountpoint.display()
                )
            });
            // The operator (or systemd's StateDirectory) makes the data dir; make it durable
            // here so a cut tests su, not the test's own mkdir.
            let data_dir = mountpoint.join("data");
            std::fs::create_dir(&data_dir).unwrap();
            std::fs::File::open(&mountpoint)
                .unwrap()
                .sync_all()
                .unwrap();
            Self {
                fs,
                data_dir,
                _root: root,
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.data_dir.parent().unwrap().join(name)
        }
    }

    /// The power-cut file system itself: reads see unsynced data, a cut keeps exactly what
    /// was synced (data at fsync, names at fsync of the directory) and nothing else.
    #[test]
    fn the_powercut_fs_keeps_what_was_synced_and_nothing_else() {
        let mut rig = Rig::new();
        let synced = rig.path("synced");
        let unsynced = rig.path("unsynced");
        let named_only = rig.path("named_only");
        let renamed = rig.path("renamed");
        let dir = rig.data_dir.parent().unwrap().to_path_buf();

        let write = |path: &Path, text: &str, sync: bool| {
            let mut file = std::fs::File::create(path).unwrap();
            file.write_all(text.as_bytes()).unwrap();
            if sync {
                file.sync_data().unwrap();
            }
        };
        write(&synced, "kept", true);
        write(&named_only, "lost", false);
        std::fs::File::open(&dir).unwrap().sync_all().unwrap();
        // After the directory sync: data appended without a sync, a new file, a rename.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&synced)
            .unwrap();
        file.write_all(b" and more").unwrap();
        drop(file);
        write(&unsynced, "never synced", true);
        std::fs::rename(&named_only, &renamed).unwrap();
        // While powered, everything is visible.
        assert_eq!(std::fs::read_to_string(&synced).unwrap(), "kept and more");
        assert_eq!(std::fs::read_to_string(&unsynced).unwrap(), "never synced");
        assert_eq!(std::fs::read_to_string(&renamed).unwrap(), "lost");
        assert!(
            std::fs::OpenOptions::new()
                .read(true)
                .open(&named_only)
                .is_err()
        );

        let report = rig.fs.cut_power().unwrap();
        assert!(
            report.bytes_dropped > 0 && report.dirs_reverted == 1,
            "{report:?}"
        );
        // Synced data is kept, unsynced data dropped; the unsynced name is gone; the rename is
        // undone; a durable name whose data was never synced comes back empty.
        assert_eq!(std::fs::read_to_string(&synced).unwrap(), "kept");
        assert!(!unsynced.exists());
        assert!(!renamed.exists());
        assert_eq!(std::fs::read_to_string(&named_only).unwrap(), "");
        assert!(rig.data_dir.is_dir(), "the data dir's name was synced");

        // A synced rename survives.
        std::fs::rename(&named_only, &renamed).unwrap();
        std::fs::File::open(&dir).unwrap().sync_all().unwrap();
        rig.fs.cut_power().unwrap();
        assert!(renamed.exists() && !named_only.exists());
    }

    /// One acknowledged write: the item id and the timestamp the SU answered.
    #[derive(Clone, Debug)]
    struct Ack {
        pid: String,
        id: String,
        timestamp: u64,
    }

    /// A write the power cut left unanswered: it may or may not have been scheduled.
    #[derive(Debug)]
    struct Unanswered {
        pid: String,
        /// The item's id (the process's own for a new process).
        id: String,
    }

    /// What the writers of one cycle share.
    #[derive(Default)]
    struct Shared {
        acks: Mutex<Vec<Ack>>,
        unanswered: Mutex<Vec<Unanswered>>,
        /// Answers other than 200 while the power was on (none are expected).
        refusals: Mutex<Vec<String>>,
        /// Processes created (acknowledged) during the cycle.
        new_pids: Mutex<Vec<String>>,
        acked: AtomicUsize,
    }

    /// POST / that returns `None` once the SU is gone (refused, reset or no answer).
    fn try_post(port: u16, body: &[u8]) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let head = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((
            status,
            String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
        ))
    }

    /// Posts until the power goes: writer 0 first creates a process and writes to it too.
    fn writer(
        index: usize,
        port: u16,
        client: Arc<Client>,
        mut pids: Vec<String>,
        shared: Arc<Shared>,
    ) {
        let mut posted = 0usize;
        if index == 0 {
            let (process, pid) = client.process();
            let Some((status, body)) = try_post(port, &process) else {
                let id = pid.clone();
                shared
                    .unanswered
                    .lock()
                    .unwrap()
                    .push(Unanswered { pid, id });
                return;
            };
            if status == 200 {
                shared.new_pids.lock().unwrap().push(pid.clone());
                pids.push(pid);
            } else {
                shared
                    .refusals
                    .lock()
                    .unwrap()
                    .push(format!("{status} {body}"));
            }
        }
        loop {
            let pid = &pids[(index + posted) % pids.len()];
            posted += 1;
            let (bytes, id) = client.message(pid, &format!("writer {index} post {posted}"));
            let Some((status, body)) = try_post(port, &bytes) else {
                let pid = pid.clone();
                shared
                    .unanswered
                    .lock()
                    .unwrap()
                    .push(Unanswered { pid, id });
                return;
            };
            if status != 200 {
                shared
                    .refusals
                    .lock()
                    .unwrap()
                    .push(format!("{status} {body}"));
                continue;
            }
            assert_eq!(json_field(&body, "id"), id.as_str(), "{body}");
            let timestamp = json_field(&body, "timestamp").as_u64().expect("timestamp");
            shared.acks.lock().unwrap().push(Ack {
                pid: pid.clone(),
                id,
                timestamp,
            });
            shared.acked.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// One served slot: the message id, the assignment id and the Timestamp tag.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Slot {
        message: String,
        assignment: String,
        timestamp: u64,
    }

    /// A process's whole schedule, by nonce, read page by page.
    fn schedule(su: &TestSu, pid: &str) -> Vec<Slot> {
        let mut slots: Vec<Slot> = Vec::new();
        loop {
            let from = slots.len() as i64 - 1;
            let (status, body) = su.get(&format!(
                "/{pid}?process-id={pid}&from-nonce={from}&limit=1000"
            ));
            assert_eq!(status, 200, "{pid}, acknowledged, is not served: {body}");
            let page: serde_json::Value = serde_json::from_str(&body).unwrap();
            for edge in page["edges"].as_array().unwrap() {
                let node = &edge["node"];
                assert_eq!(
                    tag(node, "Nonce"),
                    slots.len().to_string(),
                    "{pid}: nonces must be 0..n without a gap or a repeat"
                );
                slots.push(Slot {
                    message: node["message"]["id"].as_str().unwrap().to_string(),
                    assignment: node["assignment"]["id"].as_str().unwrap().to_string(),
                    timestamp: tag(node, "Timestamp").parse().unwrap(),
                });
            }
            if page["page_info"]["has_next_page"] != true {
                return slots;
            }
        }
    }

    /// Every schedule after a restart: contiguous, each message once, every acknowledged
    /// write present with its answered timestamp, and every slot served before unchanged.
    fn check_schedules(
        su: &TestSu,
        acks: &[Ack],
        served: &mut HashMap<String, Vec<Slot>>,
        cycle: usize,
    ) {
        let mut acked_by_pid: HashMap<&str, Vec<&Ack>> = HashMap::new();
        for ack in acks {
            acked_by_pid.entry(&ack.pid).or_default().push(ack);
        }
        for (pid, before) in served.iter_mut() {
            let slots = schedule(su, pid);
            assert_eq!(
                slots[0].message, *pid,
                "cycle {cycle}: nonce 0 is the process"
            );
            let mut messages = HashSet::new();
            for slot in &slots {
                assert!(
                    messages.insert(&slot.message),
                    "cycle {cycle}: {pid} repeats {slot:?}"
                );
            }
            assert!(
                slots.len() >= before.len() && slots[..before.len()] == before[..],
                "cycle {cycle}: {pid} changed a slot it served before the cut \
                 ({} slots before, {} now)",
                before.len(),
                slots.len()
            );
            let by_id: HashMap<&str, &Slot> = slots
                .iter()
                .map(|slot| (slot.message.as_str(), slot))
                .collect();
            for ack in acked_by_pid.get(pid.as_str()).into_iter().flatten() {
                let slot = by_id
                    .get(ack.id.as_str())
                    .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged write lost: {ack:?}"));
                assert_eq!(slot.timestamp, ack.timestamp, "cycle {cycle}: {ack:?}");
            }
            *before = slots;
        }
    }

    fn start(data_dir: &Path, bundler: &FakeBundler) -> TestSu {
        SuCommand::new(data_dir)
            .env("UPLOAD_NODE_URL", bundler.url())
            .env("SU_SHARDS", "2")
            .serve()
    }

    fn verify(data_dir: &Path, when: &str) {
        let output = SuCommand::new(data_dir).arg("verify").output();
        assert!(output.success(), "su verify {when}:\n{}", output.text());
    }

    /// How a cycle's cut comes.
    #[derive(Clone, Copy, Debug)]
    enum CutAt {
        /// At a random instant.
        Random,
        /// While the file system holds a sync, before or after it takes effect: in the middle
        /// of a commit, whose clients are not answered yet.
        Sync(Trap),
    }

    /// The cycles take these in turn.
    const CUTS: [CutAt; 3] = [
        CutAt::Random,
        CutAt::Sync(Trap::BeforeSync),
        CutAt::Sync(Trap::AfterSync),
    ];

    /// Kills the SU at the cycle's instant; the file system keeps everything until `cut_power`.
    fn kill_at(cut: CutAt, rig: &Rig, su: &mut TestSu, rng: &mut Rng, cycle: usize) {
        match cut {
            CutAt::Random => {
                std::thread::sleep(Duration::from_millis(rng.next() % MAX_CUT_DELAY_MS));
                su.kill();
            }
            CutAt::Sync(trap) => {
                rig.fs.arm(1 + rng.next() % MAX_SYNCS_BEFORE_TRAP, trap);
                let held = rig.fs.wait_for_trap(Duration::from_secs(60));
                assert!(held, "cycle {cycle}: no sync reached the trap");
                // SIGKILL first: the SU cannot leave the held sync, and dies as it returns
                // from it, before it can answer anyone.
                let _ = su.child.kill();
                rig.fs.release_trap();
                su.kill();
            }
        }
    }

    /// What the unanswered writes became, over the whole run.
    #[derive(Debug, Default)]
    struct Fates {
        scheduled: usize,
        lost: usize,
    }

    /// A new process whose creation went unanswered but was scheduled joins `pids` and
    /// `served`, to be written to and checked like the others from now on.
    fn adopt_unanswered_processes(
        su: &TestSu,
        unanswered: &[Unanswered],
        served: &mut HashMap<String, Vec<Slot>>,
        pids: &mut Vec<String>,
    ) {
        for write in unanswered.iter().filter(|write| write.pid == write.id) {
            let (status, body) = su.get(&format!("/processes/{}", write.pid));
            assert!(matches!(status, 200 | 404), "{status} {body}");
            if status == 200 {
                served.insert(write.pid.clone(), Vec::new());
                pids.push(write.pid.clone());
            }
        }
    }

    /// Sorts the unanswered writes of a cycle into scheduled and lost (after `check_schedules`).
    fn tally_unanswered(
        unanswered: &[Unanswered],
        served: &HashMap<String, Vec<Slot>>,
        fates: &mut Fates,
    ) {
        for write in unanswered {
            let scheduled = served
                .get(&write.pid)
                .is_some_and(|slots| slots.iter().any(|slot| slot.message == write.id));
            if scheduled {
                fates.scheduled += 1;
            } else {
                fates.lost += 1;
            }
        }
    }

    #[test]
    fn no_acknowledged_write_is_lost_when_the_power_is_cut() {
        let cycles = env_u64("SU_POWER_LOSS_CYCLES").unwrap_or(20) as usize;
        let seed = env_u64("SU_POWER_LOSS_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
        eprintln!("power_loss: {cycles} cycles, SU_POWER_LOSS_SEED={seed}");
        let mut rng = Rng(seed);
        let started = Instant::now();
        let mut rig = Rig::new();
        let bundler = FakeBundler::start(Mode::Ok);
        let client = Arc::new(Client::new());
        let mut su = start(&rig.data_dir, &bundler);

        let mut pids = Vec::new();
        for _ in 0..3 {
            let (process, pid) = client.process();
            let (status, body) = su.post("/", &process);
            assert_eq!(status, 200, "{body}");
            pids.push(pid);
        }
        let mut served: HashMap<String, Vec<Slot>> = HashMap::new();
        let mut acks: Vec<Ack> = Vec::new();
        let (mut fates, mut dropped) = (Fates::default(), CutReport::default());
        for cycle in 0..cycles {
            let shared = Arc::new(Shared::default());
            let writers: Vec<_> = (0..WRITERS)
                .map(|index| {
                    let (client, pids, shared) = (client.clone(), pids.clone(), shared.clone());
                    let port = su.port;
                    std::thread::spawn(move || writer(index, port, client, pids, shared))
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(60);
            while shared.acked.load(Ordering::SeqCst) < MIN_ACKS_PER_CYCLE {
                assert!(
                    Instant::now() < deadline,
                    "cycle {cycle}: writes are not acknowledged"
                );
                std::thread::sleep(Duration::from_millis(5));
            }

            // The power cut: the SU dies, then every unsynced write is dropped.
            kill_at(CUTS[cycle % CUTS.len()], &rig, &mut su, &mut rng, cycle);
            for writer in writers {
                writer.join().unwrap();
            }
            let report = rig.fs.cut_power().expect("cut the power");
            dropped.files_reverted += report.files_reverted;
            dropped.bytes_dropped += report.bytes_dropped;
            dropped.dirs_reverted += report.dirs_reverted;
            let refusals = shared.refusals.lock().unwrap();
            assert!(
                refusals.is_empty(),
                "cycle {cycle}: refused while powered: {refusals:?}"
            );
            acks.extend(shared.acks.lock().unwrap().iter().cloned());
            pids.extend(shared.new_pids.lock().unwrap().iter().cloned());
            for pid in &pids {
                served.entry(pid.clone()).or_default();
            }

            verify(
                &rig.data_dir,
                &format!("on the store cycle {cycle}'s cut left"),
            );
            su = start(&rig.data_dir, &bundler);
            let unanswered = shared.unanswered.lock().unwrap();
            adopt_unanswered_processes(&su, &unanswered, &mut served, &mut pids);
            check_schedules(&su, &acks, &mut served, cycle);
            tally_unanswered(&unanswered, &served, &mut fates);
        }
        assert!(
            dropped.bytes_dropped > 0,
            "the cuts dropped nothing: {dropped:?}"
        );
        if cycles >= CUTS.len() {
            // The trapped cuts land inside commits: some unanswered writes were durable
            // (after the sync), some were not (before it).
            assert!(fates.scheduled > 0 && fates.lost > 0, "{fates:?}");
        }

        // At least once: every scheduled item and its assignment reach the bundler, even
        // when the power was cut before their upload.
        let mut expected: HashSet<String> = HashSet::new();
        for slots in served.values() {
            for slot in slots {
                expected.insert(slot.message.clone());
                expected.insert(slot.assignment.clone());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let received: HashSet<String> = bundler.received_ids().into_iter().collect();
            let missing = expected.difference(&received).count();
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} uploads never reached the bundler"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(su.stop(), Some(0), "graceful stop");
        verify(&rig.data_dir, "after the last clean stop");
        let entries: usize = served.values().map(Vec::len).sum();
        eprintln!(
            "power_loss: {cycles} cuts in {:.1} s: {} acknowledged writes, {entries} entries in \
             {} processes; of the writes unanswered at the cuts {} were scheduled and {} lost; \
             {} syncs; the cuts dropped {} unsynced bytes in {} files and reverted {} directories",
            started.elapsed().as_secs_f64(),
            acks.len(),
            served.len(),
            fates.scheduled,
            fates.lost,
            rig.fs.syncs(),
            dropped.bytes_dropped,
            dropped.files_reverted,
            dropped.dirs_reverted,
        );
    }
}
