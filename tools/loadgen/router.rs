//! Router benchmarks: fill a router's placement table with synthetic processes offline, and
//! measure redirects per second against a running `su router` with a minimal keep-alive
//! HTTP/1.1 client (so the client's own cost stays small on a shared machine).

use ao_su::ans104::b64;
use ao_su::store::routes::{RouteRecord, RouteState};
use ao_su::store::{OpenMode, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The synthetic process id number `n`: splitmix64 of `n`, spread over 32 bytes.
pub fn process_id(n: u64) -> [u8; 32] {
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut id = [0u8; 32];
    for chunk in id.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    id
}

/// Writes `count` confirmed routes, spread round-robin over `sus`, into the store at `dir`.
pub fn prefill(dir: &std::path::Path, count: u64, sus: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(!sus.is_empty(), "--router-sus names no SU");
    let store = Store::open(dir, OpenMode::ReadWrite)?;
    let started = Instant::now();
    let records: Vec<RouteRecord> = sus
        .iter()
        .map(|su| RouteRecord {
            state: RouteState::Confirmed,
            set_ms: 1_700_000_000_000,
            su: su.clone(),
        })
        .collect();
    let mut n = 0;
    while n < count {
        let end = (n + 10_000).min(count);
        let ids: Vec<[u8; 32]> = (n..end).map(process_id).collect();
        store.put_routes(
            ids.iter()
                .zip(n..end)
                .map(|(id, i)| (id, &records[(i % records.len() as u64) as usize])),
        )?;
        n = end;
    }
    store.compact()?;
    eprintln!(
        "prefilled {count} routes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `GET /processes/{id}` for ids drawn uniformly from the first `table` synthetic processes,
/// `requests` in all over `connections` keep-alive connections; every answer must be a 307.
pub async fn redirects(
    address: &str,
    table: u64,
    requests: u64,
    connections: usize,
) -> anyhow::Result<(u64, Duration)> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (issued, address) = (issued.clone(), address.to_string());
        tasks.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await?;
            stream.set_nodelay(true)?;
            let mut buffer = vec![0u8; 4096];
            let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ (worker as u64 + 1).wrapping_mul(0x9E37);
            let mut done = 0u64;
            while issued.fetch_add(1, Ordering::Relaxed) < requests {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let id = b64::encode(&process_id(rng % table));
                let head = format!("GET /processes/{id} HTTP/1.1\r\nHost: bench\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
                let mut filled = 0;
                let end = loop {
                    let read = stream.read(&mut buffer[filled..]).await?;
                    anyhow::ensure!(read > 0, "the router closed the connection");
                    filled += read;
                    if let Some(at) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                        break at;
                    }
                    anyhow::ensure!(filled < buffer.len(), "response head too large");
                };
                let head = &buffer[..end];
                anyhow::ensure!(
                    head.starts_with(b"HTTP/1.1 307"),
                    "expected a 307, got {}",
                    String::from_utf8_lossy(head)
                );
                // A 307 has an empty body (content-length: 0): nothing more to read.
                anyhow::ensure!(filled == end + 4, "unexpected bytes after a 307 head");
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok((total, started.elapsed()))
}

/// VmRSS and VmHWM (peak) of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
