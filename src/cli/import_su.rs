//! `su import-su`: move in processes from a running SU over HTTP (issue 19), or top up
//! processes imported before (each continues after the store's last entry of it). One
//! pipeline run per process; progress, problem lines and the summary as `import-postgres`.

use super::import::{Progress, assigned_hashes, open_for_import, print_summary};
use crate::ans104::b64;
use crate::config::Config;
use crate::import::cursor::Totals;
use crate::import::pipeline::{self, Options, Reporter, Summary};
use crate::import::source::Source;
use crate::import::su::{self, ProcessNode, ProcessNodeError, SuClient, SuSource};
use crate::import::topup::{self, Start, TopUpError};
use crate::store::Store;
use crate::upstream::Gateway;
use anyhow::{Context, bail};
use argh::FromArgs;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Import processes from a running SU (ours or the reference) over HTTP into SU_DATA_DIR, or
/// top up processes imported before.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import-su")]
pub struct Args {
    /// the SU to read, e.g. https://su.example (GET /{process} and /processes/{process})
    #[argh(option)]
    pub from: String,
    /// a process to import or top up (repeat for more)
    #[argh(option)]
    pub process: Vec<String>,
    /// queue every imported item for upload to the bundler again
    #[argh(switch)]
    pub reupload: bool,
    /// write a synced checkpoint after this many entries (default 100000; also every 10 s)
    #[argh(option, default = "100_000")]
    pub checkpoint_entries: u64,
}

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    if args.process.is_empty() {
        bail!("name at least one process: --process ID");
    }
    let store = open_for_import(&config.store.data_dir)?;
    let gateway = match config.upstream.arweave_url {
        Some(_) => Some(Gateway::new(&config.upstream).context("building the gateway client")?),
        None => None,
    };
    let client = Arc::new(SuClient::new(&args.from, gateway).context("building the client")?);
    let source = check_signer(&store, &client)?;
    let options = Options {
        signatures: true,
        reupload: args.reupload,
        checkpoint_entries: args.checkpoint_entries.max(1),
        assigned: assigned_hashes(config)?,
        ..Options::default()
    };
    let started = Instant::now();
    let mut progress = Progress::new();
    let mut run = Run {
        store: &store,
        client: &client,
        options: &options,
        progress: &mut progress,
        totals: Totals::default(),
        signer: None,
    };
    let mut seen = Vec::new();
    let mut outcome = Ok(());
    for process in args.process {
        if seen.contains(&process) {
            continue;
        }
        outcome = run.one(&process);
        if outcome.is_err() {
            break;
        }
        seen.push(process);
    }
    // The source SU's wallet serves these processes next, whoever signed their newest
    // entries (a fixture of another SU, a rotated wallet): it is the store's signer, as the
    // check above expects of every later run.
    let signer = if run.signer.is_some() {
        store.put_signer_address(&source)?;
        Some(source)
    } else {
        None
    };
    let summary = Summary {
        totals: run.totals,
        already_done: false,
        signer,
    };
    progress.finish();
    outcome?;
    store.finish_import()?;
    print_summary(&summary, started)
}

/// A store already signed by one SU takes history only from that SU: its wallet signs what
/// comes next. Returns the source SU's address.
fn check_signer(store: &Store, client: &SuClient) -> anyhow::Result<crate::domain::Id> {
    let address = client
        .address()
        .with_context(|| format!("asking {} for its address", client.base()))?;
    let source = b64::decode_id(&address)
        .with_context(|| format!("{} names no valid address: {address:?}", client.base()))?;
    if let Some(signer) = store.signer_address()?
        && signer != source
    {
        bail!(
            "the store's signer is {}, but {} is the SU of {address}; import from that SU into \
             another data dir",
            b64::encode(&signer),
            client.base()
        );
    }
    Ok(source)
}

/// The state of a run over several processes.
struct Run<'a> {
    store: &'a Store,
    client: &'a Arc<SuClient>,
    options: &'a Options,
    progress: &'a mut Progress,
    totals: Totals,
    signer: Option<crate::domain::Id>,
}

impl Run<'_> {
    fn skip(&mut self, line: String) {
        self.totals.failures += 1;
        self.progress.problem(&line);
    }

    /// Imports or tops up one process.
    fn one(&mut self, process: &str) -> anyhow::Result<()> {
        let Some(id) = b64::decode_id(process) else {
            self.skip(format!("not imported: process {process}: not a valid id"));
            return Ok(());
        };
        let problems = Arc::new(Mutex::new(Vec::new()));
        let mut source = SuSource::new(self.client.clone(), process, problems.clone());
        let plan = match topup::plan(self.store, &id, su::KIND) {
            Ok(plan) => plan,
            Err(TopUpError::ScheduledHere(nonce)) => {
                self.skip(format!(
                    "not imported: process {process}: {}",
                    TopUpError::ScheduledHere(nonce)
                ));
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        if plan.start == Start::Fresh {
            match source.read_process_node() {
                Ok(ProcessNode::Assigned(_)) => {}
                Ok(ProcessNode::Legacy) => {
                    self.skip(format!(
                        "not imported: process {process}: a legacy process (era P1, without \
                         an assignment), whose SU wrapper no SU serves; import it from the \
                         reference's database, then top it up with import-su"
                    ));
                    return Ok(());
                }
                Err(ProcessNodeError::Su(error)) => {
                    return Err(error).with_context(|| format!("reading process {process}"));
                }
                Err(error) => {
                    self.skip(format!("not imported: process {process}: {error}"));
                    return Ok(());
                }
            }
        } else if !self.client.holds(process)? {
            self.skip(format!(
                "not imported: process {process}: {} does not hold it",
                self.client.base()
            ));
            return Ok(());
        }
        topup::write(self.store, &plan, &source.identity())?;
        let mut reporter = Running {
            progress: &mut *self.progress,
            before: self.totals,
        };
        let summary = pipeline::run(self.store, Box::new(source), self.options, &mut reporter)
            .with_context(|| format!("importing process {process}"))?;
        self.totals = add(&self.totals, &summary.totals);
        for line in problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            self.skip(line);
        }
        self.signer = summary.signer.or(self.signer);
        Ok(())
    }
}

/// The totals of two runs together.
fn add(before: &Totals, run: &Totals) -> Totals {
    Totals {
        processes: before.processes + run.processes,
        legacy_processes: before.legacy_processes + run.legacy_processes,
        entries: before.entries + run.entries,
        bytes: before.bytes + run.bytes,
        signatures: before.signatures + run.signatures,
        failures: before.failures + run.failures,
        anomalies: before.anomalies + run.anomalies,
        mismatches: before.mismatches + run.mismatches,
        uncovered: before.uncovered + run.uncovered,
    }
}

/// The progress of one process's run, shown with the totals of the runs before it.
struct Running<'a> {
    progress: &'a mut Progress,
    before: Totals,
}

impl Reporter for Running<'_> {
    fn problem(&mut self, line: &str) {
        self.progress.problem(line);
    }

    fn progress(&mut self, totals: &Totals, total_entries: Option<u64>) {
        self.progress
            .progress(&add(&self.before, totals), total_entries);
    }
}
