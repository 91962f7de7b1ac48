//! `su reupload --process ID [--since MS]`: re-queue a process's items and Assignments that
//! GraphQL does not know, then wait until the bundler has accepted every one of them.

use crate::admin::client::{Admin, Delivery};
use crate::admin::{Request, Response};
use crate::config::Config;
use crate::outbox::RowStatus;
use anyhow::{Context, bail};
use argh::FromArgs;
use std::time::{Duration, Instant};

/// Re-upload a process's items and Assignments unknown to GraphQL, and wait for them.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reupload")]
pub struct Args {
    /// the process id
    #[argh(option)]
    pub process: String,
    /// only entries with a timestamp after this (Unix ms)
    #[argh(option)]
    pub since: Option<u64>,
    /// stop waiting after this many seconds (0: wait until every upload is accepted)
    #[argh(option, default = "0")]
    pub timeout: u64,
}

const POLL: Duration = Duration::from_millis(250);
const REPORT: Duration = Duration::from_secs(2);

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut admin = Admin::open(config, Delivery::On).await?;
        let through = if admin.is_remote() {
            "the running server"
        } else {
            "this process (store opened directly)"
        };
        let request = Request::Reupload {
            process: args.process.clone(),
            since: args.since,
        };
        let response = admin.call(request).await.context("admin request")?;
        let (candidates, known, keys, delivering) = match response {
            Response::Requeued {
                candidates,
                known,
                keys,
                delivering,
            } => (candidates, known, keys, delivering),
            Response::Error { message } => bail!("{message}"),
            other => bail!("unexpected answer: {other:?}"),
        };
        println!(
            "{candidates} items and assignments in range, {known} known to GraphQL, {} re-queued; delivering through {through}",
            keys.len()
        );
        if keys.is_empty() {
            admin.close().await;
            return Ok(());
        }
        if !delivering {
            admin.close().await;
            println!("UPLOAD_NODE_URL is unset: the rows stay queued until `su serve` runs with a bundler");
            return Ok(());
        }
        let outcome = wait(&mut admin, &keys, args.timeout).await;
        admin.close().await;
        let remaining = outcome?;
        let delivered = keys.len() - remaining;
        println!("reupload finished: {delivered} of {} accepted by the bundler, {remaining} still queued", keys.len());
        if remaining > 0 {
            bail!("{remaining} uploads were not accepted in time; they stay queued");
        }
        Ok(())
    })
}

/// Polls until every row is gone or the timeout passes; returns how many remain.
async fn wait(admin: &mut Admin, keys: &[String], timeout: u64) -> anyhow::Result<usize> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let response = admin
            .call(Request::OutboxStatus {
                keys: keys.to_vec(),
            })
            .await?;
        let statuses = match response {
            Response::Status { statuses } => statuses,
            Response::Error { message } => bail!("{message}"),
            other => bail!("unexpected answer: {other:?}"),
        };
        let remaining = statuses
            .iter()
            .filter(|status| **status != RowStatus::Gone)
            .count();
        let timed_out = timeout > 0 && started.elapsed() >= Duration::from_secs(timeout);
        if remaining == 0 || timed_out || last_report.elapsed() >= REPORT {
            let last_error = statuses.iter().find_map(|status| match status {
                RowStatus::Queued {
                    last_error: Some(error),
                    ..
                } => Some(error.as_str()),
                _ => None,
            });
            println!(
                "{:.1} s: {} of {} accepted, {remaining} waiting{}",
                started.elapsed().as_secs_f64(),
                keys.len() - remaining,
                keys.len(),
                last_error.map_or(String::new(), |error| format!(" (last error: {error})")),
            );
            last_report = Instant::now();
        }
        if remaining == 0 || timed_out {
            return Ok(remaining);
        }
        tokio::time::sleep(POLL).await;
    }
}
