//! `su outbox list|retry|drop`: inspect and steer the upload queue, through a running
//! server's admin socket or on the stopped store.

use crate::admin::client::{Admin, Delivery};
use crate::admin::{Request, Response};
use crate::config::Config;
use anyhow::{Context, bail};
use argh::FromArgs;

/// Inspect or steer the upload outbox.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "outbox")]
pub struct Args {
    #[argh(subcommand)]
    pub command: OutboxCommand,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum OutboxCommand {
    List(ListArgs),
    Retry(RetryArgs),
    Drop(DropArgs),
}

/// List queued rows: key, sequence, slot, item id, age, attempts and last error.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListArgs {
    /// rows to show (default 100)
    #[argh(option, default = "100")]
    pub limit: usize,
    /// print the raw JSON response
    #[argh(switch)]
    pub json: bool,
}

/// End the backoff of every waiting row now (or of the rows of one item id).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "retry")]
pub struct RetryArgs {
    /// only the rows uploading this item id (put `--` before an id that begins with `-`)
    #[argh(positional)]
    pub id: Option<String>,
}

/// Delete the rows of an item id, or one row by its hex key (the upload is abandoned).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "drop")]
pub struct DropArgs {
    /// item id (base64url; put `--` before one that begins with `-`) or hex row key
    #[argh(positional)]
    pub target: String,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn print_rows(response: &Response) {
    let Response::Rows { total, rows, live } = response else {
        return;
    };
    let source = if *live {
        "running server"
    } else {
        "stopped store"
    };
    println!("{total} rows queued ({source}); showing {}", rows.len());
    println!("key\tsequence\tslot\tid\tage_s\tattempts\tlast_error");
    let now = now_ms();
    for row in rows {
        let number = |value: Option<u64>| value.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{}\t{}\t{}\t{}\t{:.1}\t{}\t{}",
            row.key,
            number(row.sequence),
            number(row.slot.map(u64::from)),
            row.id,
            now.saturating_sub(row.enqueued_ms) as f64 / 1000.0,
            row.attempts,
            row.last_error.as_deref().unwrap_or("-"),
        );
    }
}

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut admin = Admin::open(config, Delivery::Off).await?;
        let (request, json) = match args.command {
            OutboxCommand::List(list) => (Request::OutboxList { limit: list.limit }, list.json),
            OutboxCommand::Retry(retry) => (Request::OutboxRetry { id: retry.id }, false),
            OutboxCommand::Drop(drop) => (
                Request::OutboxDrop {
                    target: drop.target,
                },
                false,
            ),
        };
        let response = admin.call(request).await.context("admin request")?;
        admin.close().await;
        if json {
            println!("{}", serde_json::to_string(&response)?);
            return Ok(());
        }
        match &response {
            Response::Rows { .. } => print_rows(&response),
            Response::Retried { keys, live: true } => {
                println!("backoff reset for {} rows; they are sent now", keys.len())
            }
            Response::Retried { live: false, .. } => println!(
                "no server is running: backoff is not kept on disk, and every row is tried as soon as `su serve` starts"
            ),
            Response::Dropped { rows } => println!("dropped {rows} rows"),
            Response::Error { message } => bail!("{message}"),
            other => bail!("unexpected answer: {other:?}"),
        }
        Ok(())
    })
}
