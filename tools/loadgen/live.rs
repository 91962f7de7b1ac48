//! Live schedule benchmark (BENCHMARKS.md "Live schedule"): opens N Server-Sent Events
//! streams on one process, posts M messages one at a time, and reports, over every (stream,
//! message) pair, the time from the write's acknowledgement (its 200 received) to the event's
//! arrival on the stream. A delivery before the acknowledgement counts as 0.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one stream until it has seen nonce `last`; returns each nonce's arrival time.
async fn follow(address: String, pid: String, last: u64) -> anyhow::Result<Vec<(u64, Instant)>> {
    let mut stream = TcpStream::connect(&address).await?;
    stream
        .write_all(
            format!("GET /{pid}/stream?from-nonce=0 HTTP/1.1\r\nHost: {address}\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut arrivals = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut head_checked = false;
    loop {
        let read = stream.read(&mut chunk).await?;
        anyhow::ensure!(read > 0, "the stream closed before nonce {last}");
        let now = Instant::now();
        buffer.extend_from_slice(&chunk[..read]);
        if !head_checked {
            if buffer.len() < 12 {
                continue;
            }
            anyhow::ensure!(
                buffer.starts_with(b"HTTP/1.1 200"),
                "stream answered {}",
                String::from_utf8_lossy(&buffer[..12])
            );
            head_checked = true;
        }
        // Events are `id: N\n` lines; JSON data never holds `id: ` (it is compact).
        let mut consumed = 0;
        while let Some(at) = find(&buffer[consumed..], b"id: ") {
            let start = consumed + at + 4;
            let Some(end) = buffer[start..].iter().position(|b| *b == b'\n') else {
                break;
            };
            let nonce: u64 = std::str::from_utf8(&buffer[start..start + end])?.parse()?;
            arrivals.push((nonce, now));
            consumed = start + end;
            if nonce >= last {
                return Ok(arrivals);
            }
        }
        // Keep a tail that may hold a split `id: ` line.
        let keep_from = consumed.max(buffer.len().saturating_sub(32));
        buffer.drain(..keep_from);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Opens `streams` streams on `pid` (whose schedule holds only its process), posts the
/// pre-signed `messages` one at a time `pause` apart, and prints p50/p99/max of the
/// acknowledgement-to-delivery time.
pub async fn run(
    url: &str,
    client: &reqwest::Client,
    pid: &str,
    streams: usize,
    messages: Vec<Vec<u8>>,
    pause: Duration,
) -> anyhow::Result<()> {
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let last = messages.len() as u64;
    let mut followers = Vec::with_capacity(streams);
    for _ in 0..streams {
        followers.push(tokio::spawn(follow(address.clone(), pid.to_string(), last)));
    }
    // Every stream is open once the server counts them (`su_live_reads`).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = client
            .get(format!("{url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        if metrics.contains(&format!("su_live_reads {streams}")) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the streams did not all open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{streams} streams open; posting {last} messages");
    let mut acknowledged = Vec::with_capacity(messages.len());
    for bytes in messages {
        let answer = client.post(url).body(bytes).send().await?;
        let at = Instant::now();
        anyhow::ensure!(
            answer.status().is_success(),
            "post answered {}",
            answer.status()
        );
        acknowledged.push(at);
        tokio::time::sleep(pause).await;
    }
    let mut delays = Vec::with_capacity(streams * acknowledged.len());
    for follower in followers {
        for (nonce, arrived) in follower.await?? {
            let Some(acked) = nonce
                .checked_sub(1)
                .and_then(|index| acknowledged.get(index as usize))
            else {
                continue;
            };
            delays.push(arrived.saturating_duration_since(*acked));
        }
    }
    delays.sort();
    anyhow::ensure!(
        delays.len() == streams * acknowledged.len(),
        "{} deliveries, expected {}",
        delays.len(),
        streams * acknowledged.len()
    );
    println!(
        "live: {streams} streams x {} writes: ack-to-delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        acknowledged.len(),
        super::percentile(&delays, 0.50),
        super::percentile(&delays, 0.99),
        super::percentile(&delays, 1.0),
    );
    Ok(())
}
