//! The tip cache cannot cause equivocation: with one shard and a cache of one tip, many
//! concurrent writers across processes, idempotent repeats and dedupe rejections never make
//! the SU reuse a nonce, skip one, or schedule a repeat twice.

mod support;

use ao_su::ans104::{ItemDraft, SignatureType, b64};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use support::{Client, TestSu, edges, json_field, su_verify, tag};

/// Two signatures of one pushed message: different ids, one dedupe hash.
fn pushed_pair(client: &Client, pid: &str, seed: u8) -> [Vec<u8>; 2] {
    let draft = ItemDraft {
        signature_type: SignatureType::ARWEAVE,
        owner: client.wallet.owner().to_vec(),
        target: Some(b64::decode_id(pid).unwrap()),
        anchor: Some([seed; 32]),
        tags: [
            ("Data-Protocol", "ao"),
            ("Type", "Message"),
            ("From-Process", "pusher"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect(),
        data: vec![seed],
    };
    [
        client.wallet.sign(&draft).unwrap().0,
        client.wallet.sign(&draft).unwrap().0,
    ]
}

/// Per process, the (id, timestamp) of every answer to a message.
type Receipts = HashMap<String, Vec<(String, String)>>;
/// The (status, body) answers to the posts of one pushed pair.
type Answers = Vec<(u16, String)>;

#[derive(Clone)]
enum Post {
    /// A fresh message; posted twice (the second is an idempotent repeat).
    Message { pid: String, bytes: Vec<u8> },
    /// One of a pushed pair: exactly one of the two may be scheduled.
    Pushed { pair: usize, bytes: Vec<u8> },
}

#[test]
fn a_one_tip_cache_under_concurrent_writers_never_reuses_or_skips_a_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(
        dir.path(),
        &[("SU_SHARDS", "1"), ("SU_TIP_CACHE_SIZE", "1")],
    );
    let client = Client::new();
    let mut pids = Vec::new();
    for _ in 0..4 {
        let (process, pid) = client.process();
        assert_eq!(su.post("/", &process).0, 200);
        pids.push(pid);
    }
    let mut posts = Vec::new();
    let mut pair_process = Vec::new();
    for (index, pid) in pids.iter().enumerate() {
        for n in 0..25 {
            let (bytes, _) = client.message(pid, &format!("message {n}"));
            posts.push(Post::Message {
                pid: pid.clone(),
                bytes: bytes.clone(),
            });
            posts.push(Post::Message {
                pid: pid.clone(),
                bytes,
            });
        }
        for n in 0..8u8 {
            let pair = pair_process.len();
            pair_process.push(pid.clone());
            for bytes in pushed_pair(&client, pid, (index as u8) << 4 | n) {
                posts.push(Post::Pushed { pair, bytes });
            }
        }
    }
    // A fixed interleaving that puts repeats and pairs close together across processes.
    let mut order: Vec<usize> = (0..posts.len()).collect();
    order.sort_by_key(|&i| (i * 7919) % posts.len());
    let queue = Arc::new(Mutex::new(order));
    let posts = Arc::new(posts);
    let receipts: Arc<Mutex<Receipts>> = Arc::default();
    let pair_outcomes: Arc<Mutex<Vec<Answers>>> =
        Arc::new(Mutex::new(vec![Vec::new(); pair_process.len()]));
    let port = su.port;
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (queue, posts, receipts, pair_outcomes) = (
                queue.clone(),
                posts.clone(),
                receipts.clone(),
                pair_outcomes.clone(),
            );
            std::thread::spawn(move || {
                loop {
                    let Some(index) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let post = &posts[index];
                    let bytes = match post {
                        Post::Message { bytes, .. } | Post::Pushed { bytes, .. } => bytes,
                    };
                    let (status, body, _) = support::request(port, "POST", "/", bytes, &[]);
                    let body = String::from_utf8(body).unwrap();
                    match post {
                        Post::Message { pid, .. } => {
                            assert_eq!(status, 200, "{body}");
                            let id = json_field(&body, "id").as_str().unwrap().to_string();
                            let timestamp = json_field(&body, "timestamp").to_string();
                            receipts
                                .lock()
                                .unwrap()
                                .entry(pid.clone())
                                .or_default()
                                .push((id, timestamp));
                        }
                        Post::Pushed { pair, .. } => {
                            pair_outcomes.lock().unwrap()[*pair].push((status, body));
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }

    // Every repeat got the original receipt: each id answered twice with one timestamp.
    for (pid, answers) in receipts.lock().unwrap().iter() {
        let mut by_id: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (id, timestamp) in answers {
            by_id.entry(id).or_default().insert(timestamp);
        }
        assert_eq!(by_id.len(), 25, "{pid}");
        assert!(
            by_id.values().all(|timestamps| timestamps.len() == 1),
            "{pid}"
        );
    }
    // Exactly one of each pushed pair was scheduled; the other is the reference's 400.
    let mut scheduled_pushed: HashMap<&str, usize> = HashMap::new();
    for (pair, outcomes) in pair_outcomes.lock().unwrap().iter().enumerate() {
        let accepted = outcomes.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(accepted, 1, "pair {pair}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .any(|(status, body)| *status == 400 && body.contains("Deep hash already exists")),
            "pair {pair}: {outcomes:?}"
        );
        *scheduled_pushed.entry(&pair_process[pair]).or_default() += 1;
    }
    // Each schedule: nonces 0..n without a gap or a repeat, every message once.
    for pid in &pids {
        let edges = edges(&su, pid);
        assert_eq!(
            edges.len(),
            1 + 25 + scheduled_pushed[pid.as_str()],
            "{pid}"
        );
        let mut ids = HashSet::new();
        for (expected, edge) in edges.iter().enumerate() {
            let node = &edge["node"];
            assert_eq!(tag(node, "Nonce"), expected.to_string(), "{pid}");
            assert!(
                ids.insert(node["message"]["id"].to_string()),
                "{pid}: repeat"
            );
        }
    }
    drop(su);
    let (ok, output) = su_verify(dir.path());
    assert!(ok, "{output}");
}
