//! `foxctl outbox list|retry`: the outbox rows the relay set aside because
//! the broker refused them (unroutable) or AMQP cannot carry them.

use foxflow_config::Config;
use foxflow_storage::outbox::{self, Requeue};

#[derive(clap::Subcommand)]
pub enum OutboxCommand {
    /// Show the rows set aside, oldest first, with the reason.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Hand rows set aside back to the relay, once their cause is fixed
    /// (e.g. the missing queue declared and bound). A row still refused is
    /// set aside again.
    Retry {
        /// The row to retry (repeatable).
        #[arg(long = "id", required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Every row set aside.
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(config: &Config, command: OutboxCommand) -> anyhow::Result<()> {
    let pool = crate::db_pool(config)?;
    let mut conn = foxflow_storage::pool::conn(&pool).await?;
    match command {
        OutboxCommand::List { limit, json } => {
            let rows = outbox::list_failed(&mut conn, limit).await?;
            for r in &rows {
                if json {
                    println!("{}", serde_json::to_string(r)?);
                } else {
                    println!(
                        "{}  {}  {}  set aside {}  after {} attempt(s)\n    {}",
                        r.id,
                        r.routing_key,
                        r.message_id,
                        r.failed_at.to_rfc3339(),
                        r.attempts,
                        r.last_error.as_deref().unwrap_or("(no reason recorded)")
                    );
                }
            }
            let total = outbox::counts(&mut conn).await?.failed;
            eprintln!("{} of {total} row(s) set aside shown", rows.len());
        }
        OutboxCommand::Retry { ids, all } => {
            let which = if all { Requeue::All } else { Requeue::Ids(&ids) };
            let n = outbox::requeue_failed(&mut conn, which).await?;
            eprintln!("{n} row(s) handed back to the relay");
            if let Requeue::Ids(ids) = which
                && n < ids.len()
            {
                eprintln!("the other id(s) are not set aside (already sent, retried, or unknown)");
            }
        }
    }
    Ok(())
}
