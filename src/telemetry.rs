//! Logging (tracing) and metrics (Prometheus registry): installed once, from `main`.

use crate::http::App;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the tracing subscriber with the given filter; JSON lines when asked.
pub fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
}

/// Installs the Prometheus recorder; `None` if one is already installed.
pub fn init_metrics() -> Option<PrometheusHandle> {
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    let recorder = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .expect("bucket list is not empty")
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    Some(handle)
}

/// Gauges that are read on demand at scrape time.
pub fn record_gauges(app: &App) {
    if let Some(sequencer) = app.mode.sequencer() {
        let available = sequencer.health().is_available();
        metrics::gauge!("su_writes_available").set(if available { 1.0 } else { 0.0 });
        for (shard, depth) in sequencer.queue_depths().into_iter().enumerate() {
            metrics::gauge!("su_sequencer_queue_depth", "shard" => shard.to_string())
                .set(depth as f64);
        }
    }
    metrics::gauge!("su_store_live_sst_bytes")
        .set(app.store.property_sum("rocksdb.live-sst-files-size") as f64);
    metrics::gauge!("su_store_memtable_bytes")
        .set(app.store.property_sum("rocksdb.cur-size-all-mem-tables") as f64);
    metrics::gauge!("su_store_live_blob_bytes")
        .set(app.store.property_sum("rocksdb.live-blob-file-size") as f64);
    metrics::gauge!("su_block_height").set(app.block_height.get() as f64);
    metrics::gauge!("su_live_reads").set(app.live.permits.in_use() as f64);
    metrics::gauge!("su_live_watched_processes").set(app.live.notifier.watched() as f64);
    if let Some(age) = app.block_height.age_secs() {
        metrics::gauge!("su_block_height_age_seconds").set(age as f64);
    }
}
