//! `su import-postgres` and `su import-rocksdb`: move in from a reference SU's store (issue
//! 19). Progress on stderr (a bar on a terminal, plain lines otherwise), one line per problem
//! on stdout, and a summary at the end.

use crate::ans104::b64;
use crate::config::Config;
use crate::import::assigned::{AssignedHashes, GatewayHashes};
use crate::import::cursor::Totals;
use crate::import::pipeline::{self, Options, Reporter, Summary};
use crate::import::postgres::PostgresSource;
use crate::import::rocksdb::RocksDbSource;
use crate::import::source::Source;
use crate::store::{OpenMode, Store};
use crate::upstream::Gateway;
use anyhow::{Context, bail};
use argh::FromArgs;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Declares an import subcommand's arguments: its own fields, then the flags every import
/// shares (argh cannot flatten a struct into another), and `options` to read them.
macro_rules! import_args {
    (
        $(#[$attr:meta])*
        pub struct $name:ident { $($fields:tt)* }
    ) => {
        $(#[$attr])*
        pub struct $name {
            // Passed as tokens: argh recognises `Option<T>` by its spelling, which a `ty`
            // fragment hides. The own fields end with a comma.
            $($fields)*
            /// do not verify signatures (hash-chain links are still checked)
            #[argh(switch)]
            pub skip_signatures: bool,
            /// queue every imported item for upload to the bundler again
            #[argh(switch)]
            pub reupload: bool,
            /// write a synced checkpoint after this many entries (default 100000; also every
            /// 10 s)
            #[argh(option, default = "100_000")]
            pub checkpoint_entries: u64,
        }

        impl $name {
            /// How the pipeline runs, from the shared flags and the configuration.
            fn options(&self, config: &Config) -> anyhow::Result<Options> {
                Ok(Options {
                    signatures: !self.skip_signatures,
                    reupload: self.reupload,
                    checkpoint_entries: self.checkpoint_entries.max(1),
                    assigned: assigned_hashes(config)?,
                    ..Options::default()
                })
            }
        }
    };
}

import_args! {
    /// Import a reference SU's Postgres store (and its USE_DISK byte store) into SU_DATA_DIR.
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "import-postgres")]
    pub struct PostgresArgs {
        /// the reference's database, e.g. postgres://user@host/su (default: DATABASE_URL)
        #[argh(option)]
        pub database_url: Option<String>,
        /// the reference's USE_DISK byte store (its SU_DATA_DIR), read before the bundle column
        #[argh(option)]
        pub disk_dir: Option<PathBuf>,
    }
}

import_args! {
    /// Import a reference SU's RocksDB-only store (USE_LOCAL_STORE) into SU_DATA_DIR.
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "import-rocksdb")]
    pub struct RocksDbArgs {
        /// the reference's file database (its SU_FILE_DB_DIR): the wrappers
        #[argh(option)]
        pub file_db: PathBuf,
        /// the reference's index database (its SU_INDEX_DB_DIR): processes, order, dedupe
        #[argh(option)]
        pub index_db: PathBuf,
    }
}

pub fn run_postgres(config: &Config, args: PostgresArgs) -> anyhow::Result<()> {
    let url = args
        .database_url
        .clone()
        .or_else(|| config.import.database_url.clone())
        .context("no database: pass --database-url or set DATABASE_URL")?;
    let store = open_for_import(&config.store.data_dir)?;
    let source = PostgresSource::connect(&url, args.disk_dir.as_deref())
        .context("connecting to the reference's database")?;
    run(&store, Box::new(source), &args.options(config)?)
}

pub fn run_rocksdb(config: &Config, args: RocksDbArgs) -> anyhow::Result<()> {
    let store = open_for_import(&config.store.data_dir)?;
    let source = RocksDbSource::open(&args.file_db, &args.index_db)
        .context("opening the reference's RocksDB store")?;
    run(&store, Box::new(source), &args.options(config)?)
}

/// Where assigned transactions' dedupe hashes come from: the gateway, when one is configured
/// (`ARWEAVE_URL` / `GATEWAY_URL`, GraphQL at `GRAPHQL_URL`).
pub(crate) fn assigned_hashes(config: &Config) -> anyhow::Result<Option<Arc<dyn AssignedHashes>>> {
    if config.upstream.arweave_url.is_none() {
        return Ok(None);
    }
    let gateway = Gateway::new(&config.upstream).context("building the gateway client")?;
    let hashes = GatewayHashes::new(gateway).context("starting the gateway client")?;
    Ok(Some(Arc::new(hashes)))
}

/// Opens the store read-write; RocksDB's lock refuses a store that a running `su serve` (or
/// another import) holds.
pub fn open_for_import(data_dir: &Path) -> anyhow::Result<Store> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    match Store::open(data_dir, OpenMode::Import) {
        Ok(store) => Ok(store),
        Err(error) if error.to_string().contains("lock") => bail!(
            "the store at {} is in use by another process (a running `su serve`, `su sync` or \
             import holds its lock); stop it first: an import runs beside nothing ({error})",
            data_dir.display()
        ),
        Err(error) => {
            Err(error).with_context(|| format!("opening the store at {}", data_dir.display()))
        }
    }
}

fn run(store: &Store, source: Box<dyn Source>, options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut reporter = Progress::new();
    let summary = pipeline::run(store, source, options, &mut reporter);
    reporter.finish();
    let summary = summary?;
    store.finish_import()?;
    print_summary(&summary, started)
}

/// Prints the summary of a run that began at `started`; fails when something did not verify.
pub(crate) fn print_summary(summary: &Summary, started: Instant) -> anyhow::Result<()> {
    let totals = &summary.totals;
    if summary.already_done {
        println!("the import into this store is complete already; nothing to do");
    }
    println!(
        "imported {} processes ({} legacy), {} entries, {} bytes, {} signatures verified in {:.1}s",
        totals.processes,
        totals.legacy_processes,
        totals.entries,
        totals.bytes,
        totals.signatures,
        started.elapsed().as_secs_f64()
    );
    println!(
        "legacy anomalies kept: {}; column mismatches: {}; not imported (do not verify): {}; \
         assignment-only entries without a dedupe hash (not covered): {}",
        totals.anomalies, totals.mismatches, totals.failures, totals.uncovered
    );
    if let Some(signer) = summary.signer {
        println!(
            "store signer: {} (serve it with the reference SU's wallet)",
            b64::encode(&signer)
        );
    }
    if totals.failures > 0 {
        bail!(
            "{} entries or processes do not verify and were not imported (listed above)",
            totals.failures
        );
    }
    Ok(())
}

/// Progress: an indicatif bar with rate and ETA on a terminal, a plain line every 5 s
/// otherwise.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub(crate) fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} entries {per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for Progress {
    fn problem(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    #[allow(clippy::print_stderr)] // progress lines go to stderr
    fn progress(&mut self, totals: &Totals, total: Option<u64>) {
        let done = totals.entries + totals.legacy_processes + totals.failures;
        match &self.bar {
            Some(bar) => {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(done);
            }
            None => {
                if self.last_line.elapsed() < Duration::from_secs(5) {
                    return;
                }
                self.last_line = Instant::now();
                let seconds = self.started.elapsed().as_secs_f64().max(0.001);
                let of = total.map_or_else(String::new, |total| format!(" of {total}"));
                eprintln!(
                    "import: {done}{of} entries, {} processes, {:.0} entries/s",
                    totals.processes,
                    done as f64 / seconds
                );
            }
        }
    }
}
