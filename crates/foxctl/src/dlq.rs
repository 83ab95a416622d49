//! `foxctl dlq list|replay|purge --queue imports|ai_generation`.

use foxflow_config::Config;
use foxflow_domain::messages::{Message, QueueKind};
use foxflow_messaging::Topology;
use foxflow_messaging::dlq::{self, Decision};
use foxflow_storage::{StorageError, jobs};

#[derive(clap::Subcommand)]
pub enum DlqCommand {
    /// Show parked messages with their reasons, leaving them parked.
    List {
        #[arg(long)]
        queue: QueueKind,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Hand parked messages back. An import is reset and queued again from
    /// its first row (as `POST /imports/{id}/retry` does); other messages
    /// are republished as they are.
    Replay {
        #[arg(long)]
        queue: QueueKind,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Drop every parked message of the queue.
    Purge {
        #[arg(long)]
        queue: QueueKind,
        /// Required: purging cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(config: &Config, command: DlqCommand) -> anyhow::Result<()> {
    let t = Topology::from_config(config);
    match command {
        DlqCommand::List { queue, limit, json } => {
            let parked = dlq::list(config.amqp_url(), &t, queue, limit).await?;
            for p in &parked {
                if json {
                    println!("{}", serde_json::to_string(p)?);
                } else {
                    println!(
                        "{}  attempt {}  {}\n    {}",
                        p.message_id.as_deref().unwrap_or("-"),
                        p.attempt,
                        p.reason.as_deref().unwrap_or("(no reason recorded)"),
                        p.body
                    );
                }
            }
            eprintln!("{} message(s) shown from {}", parked.len(), t.dead_queue(queue));
        }
        DlqCommand::Replay { queue, limit } => {
            let pool = crate::db_pool(config)?;
            let n = dlq::drain(config.amqp_url(), &t, queue, limit, |p| {
                let pool = pool.clone();
                async move {
                    let Ok(Message::ImportRequested { job_id, .. }) = Message::from_json(p.body.as_bytes())
                    else {
                        return Decision::Republish(p.body.into_bytes());
                    };
                    let mut conn = match foxflow_storage::pool::conn(&pool).await {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("job {job_id}: database unavailable ({e}); message republished as is");
                            return Decision::Republish(p.body.into_bytes());
                        }
                    };
                    // A cancelled job stays cancelled: replaying the dead
                    // letters must not undo an operator's decision.
                    if let Ok(Some(job)) = jobs::get_job(&mut conn, job_id).await
                        && job.status == foxflow_domain::JobStatus::Cancelled
                    {
                        eprintln!(
                            "job {job_id}: cancelled by an operator; message dropped (use retry to run it)"
                        );
                        return Decision::Handled;
                    }
                    match jobs::retry(&mut conn, job_id, None).await {
                        Ok(_) => {
                            eprintln!("job {job_id}: queued again");
                            Decision::Handled
                        }
                        Err(StorageError::Conflict(why)) => {
                            eprintln!("job {job_id}: not replayed: {why}; the message stays parked");
                            Decision::Keep
                        }
                        Err(StorageError::NotFound) => {
                            eprintln!("job {job_id}: no such job; message dropped");
                            Decision::Handled
                        }
                        Err(e) => {
                            eprintln!("job {job_id}: {e}; message republished as is");
                            Decision::Republish(p.body.into_bytes())
                        }
                    }
                }
            })
            .await?;
            eprintln!("{n} message(s) replayed from {}", t.dead_queue(queue));
        }
        DlqCommand::Purge { queue, yes } => {
            anyhow::ensure!(yes, "purging drops messages for good; add --yes to confirm");
            let n = dlq::purge(config.amqp_url(), &t, queue).await?;
            eprintln!("{n} message(s) purged from {}", t.dead_queue(queue));
        }
    }
    Ok(())
}
