//! `foxctl`: Foxflow's admin CLI (SPEC §13).

use anyhow::Context;
use clap::{Parser, Subcommand};
use foxflow_config::{Config, Process};
use foxflow_messaging::Topology;
use foxflow_storage::auth::Role;

#[derive(Parser)]
#[command(name = "foxctl", version, about = "Foxflow administration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database when missing and apply pending migrations.
    Migrate,
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the RabbitMQ topology the services declare, as definitions JSON.
    Topology {
        /// Namespace (defaults to FOX_NAMESPACE).
        #[arg(long)]
        namespace: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a user (or reuse it) and print a new token, alone on stdout.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "staff")]
        role: String,
    },
    /// Revoke every token of a user.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env(Process::Cli)?;
    foxflow_telemetry::init_for_tests();
    match cli.command {
        Command::Migrate => {
            let url = config.database_url();
            let created = foxflow_storage::migrate::ensure_database(url)
                .await
                .with_context(|| {
                    format!(
                        "cannot reach PostgreSQL at {}",
                        foxflow_storage::migrate::redact(url)
                    )
                })?;
            if created {
                eprintln!("created database");
            }
            let applied = foxflow_storage::migrate::run_migrations(url).await?;
            if applied.is_empty() {
                eprintln!("database is up to date");
            }
            for m in applied {
                eprintln!("applied {m}");
            }
        }
        Command::Token { command } => {
            let pool = foxflow_storage::build_pool(config.database_url(), 1, "foxctl")?;
            let mut conn = foxflow_storage::pool::conn(&pool).await?;
            match command {
                TokenCommand::Create { name, role } => {
                    let role: Role = role.parse().map_err(anyhow::Error::msg)?;
                    let token = foxflow_storage::auth::create_token(&mut conn, &name, role).await?;
                    println!("{token}");
                }
                TokenCommand::Revoke { name } => {
                    let n = foxflow_storage::auth::revoke_tokens(&mut conn, &name).await?;
                    eprintln!("revoked {n} token(s) of {name}");
                }
            }
        }
        Command::Topology { namespace } => {
            let ns = namespace.unwrap_or(config.namespace.clone());
            let t = Topology::new(&ns, config.import_retry_delay, config.ai_retry_delay);
            println!("{}", serde_json::to_string_pretty(&t.definitions())?);
        }
    }
    Ok(())
}
