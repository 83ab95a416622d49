#![doc = include_str!("../README.md")]

use anyhow::Context;
use clap::{Parser, Subcommand};
use foxflow_config::{Config, DatabasePooler, Process};
use foxflow_messaging::Topology;
use foxflow_storage::auth::Role;

mod dlq;
mod import;
mod jobs;
mod maintenance;
mod naf;
mod outbox;

/// foxctl's pool: one connection, through the same pooler as the services (`DATABASE_POOLER`:
/// the cleanup CronJob reaches PostgreSQL through pgBouncer).
fn db_pool(config: &Config) -> Result<foxflow_storage::DbPool, foxflow_storage::StorageError> {
    let pooler = match config.database_pooler {
        DatabasePooler::None => foxflow_storage::Pooler::None,
        DatabasePooler::Transaction => foxflow_storage::Pooler::Transaction,
    };
    foxflow_storage::build_pool_via(config.database_url(), 1, "foxctl", pooler)
}

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
    /// Dead-letter (parking) queues.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Outbox rows the relay set aside (the broker refused them).
    Outbox {
        #[command(subcommand)]
        command: outbox::OutboxCommand,
    },
    /// NAF reference data.
    Naf {
        #[command(subcommand)]
        command: NafCommand,
    },
    /// Delete import jobs (with their error rows) older than IMPORT_LOG_RETENTION,
    /// file contents older than IMPORT_FILE_RETENTION, and abandoned uploads.
    Cleanup {
        /// Count what would be deleted; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Give sous-catégories named like `Activité 43.22A` their official NAF
    /// label, a unique slug and the description `NAF 43.22A : <label>`.
    FixSousCategorieNames {
        /// Print the changes; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Upload a file through the API and, with --wait, follow it to its end.
    /// Exit codes: 0 success (or accepted, without --wait), 1 API failure,
    /// 2 usage error, 3 partial, 4 error, 5 cancelled.
    Import(import::ImportArgs),
    /// Undo what an import changed, except what changed since (docs/imports.md,
    /// "Revert"): queues a revert job; exit codes as `import`'s.
    Revert(jobs::JobArgs),
    /// Stop an import that has not ended; exit codes as `import`'s.
    Cancel(jobs::JobArgs),
    /// The directory's data as the importer reads it: `export entreprises
    /// --format xlsx -o entreprises.xlsx`.
    Export(jobs::ExportArgs),
    /// Print the RabbitMQ topology the services declare, as definitions JSON.
    Topology {
        /// Namespace (defaults to FOX_NAMESPACE).
        #[arg(long)]
        namespace: Option<String>,
    },
}

#[derive(Subcommand)]
enum NafCommand {
    /// Load the 732 sous-classes from INSEE's XLS (default: the copy shipped
    /// in this binary) or the flat CSV; prints what changed.
    Load { file: Option<std::path::PathBuf> },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a user and print its first token, alone on stdout. An existing
    /// name is refused (exit 1) unless `--rotate` is given.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "staff")]
        role: String,
        /// For an existing user: revoke every token it holds, give it
        /// `--role`, and print its one new token (a new user is created).
        #[arg(long)]
        rotate: bool,
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
    // A client of the API: it needs none of the services' configuration.
    // The API's clients need no database configuration.
    let command = match cli.command {
        Command::Import(args) => match api_call(import::run(args)).await {},
        Command::Revert(args) => match api_call(jobs::run_job(jobs::JobAction::Revert, args)).await {},
        Command::Cancel(args) => match api_call(jobs::run_job(jobs::JobAction::Cancel, args)).await {},
        Command::Export(args) => match api_call(jobs::run_export(args)).await {},
        other => other,
    };
    let config = Config::from_env(Process::Cli)?;
    foxflow_telemetry::init_cli();
    match command {
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
            naf::fill_short_labels(&db_pool(&config)?).await?;
        }
        Command::Token { command } => {
            let pool = db_pool(&config)?;
            let mut conn = foxflow_storage::pool::conn(&pool).await?;
            match command {
                TokenCommand::Create { name, role, rotate } => {
                    let role: Role = role.parse().map_err(anyhow::Error::msg)?;
                    let token = if rotate {
                        let r = foxflow_storage::auth::rotate_token(&mut conn, &name, role).await?;
                        match r.previous_role {
                            None => eprintln!("created {name} ({})", role.as_str()),
                            Some(before) => eprintln!(
                                "revoked {} token(s) of {name}; role {} -> {}",
                                r.revoked,
                                before.as_str(),
                                role.as_str()
                            ),
                        }
                        r.token
                    } else {
                        match foxflow_storage::auth::create_token(&mut conn, &name, role).await {
                            Ok(token) => token,
                            Err(foxflow_storage::StorageError::Conflict(_)) => anyhow::bail!(
                                "user `{name}` already exists; nothing changed. \
                                 `foxctl token create --name {name} --role {} --rotate` revokes \
                                 its tokens and prints a new one",
                                role.as_str()
                            ),
                            Err(e) => return Err(e.into()),
                        }
                    };
                    println!("{token}");
                }
                TokenCommand::Revoke { name } => {
                    let n = foxflow_storage::auth::revoke_tokens(&mut conn, &name).await?;
                    eprintln!("revoked {n} token(s) of {name}");
                }
            }
        }
        Command::Dlq { command } => dlq::run(&config, command).await?,
        Command::Outbox { command } => outbox::run(&config, command).await?,
        Command::Naf {
            command: NafCommand::Load { file },
        } => {
            let entries = naf::read(file.as_deref())?;
            let pool = db_pool(&config)?;
            let mut conn = foxflow_storage::pool::conn(&pool).await?;
            let c = foxflow_storage::reference::upsert_naf(&mut conn, &entries).await?;
            eprintln!(
                "{} sous-classes read: {} created, {} updated, {} unchanged",
                entries.len(),
                c.created,
                c.updated,
                entries.len() as i64 - c.created - c.updated
            );
        }
        Command::Cleanup { dry_run } => maintenance::cleanup(&config, dry_run).await?,
        Command::FixSousCategorieNames { dry_run } => {
            maintenance::fix_sous_categorie_names(&config, dry_run).await?
        }
        Command::Import(_) | Command::Revert(_) | Command::Cancel(_) | Command::Export(_) => {
            unreachable!("handled before the configuration is read")
        }
        Command::Topology { namespace } => {
            let mut t = Topology::from_config(&config);
            if let Some(ns) = namespace {
                t.namespace = ns;
            }
            println!("{}", serde_json::to_string_pretty(&t.definitions())?);
        }
    }
    Ok(())
}

/// Runs one of the API's clients and exits with its code.
async fn api_call(call: impl std::future::Future<Output = i32>) -> std::convert::Infallible {
    foxflow_telemetry::init_cli();
    std::process::exit(call.await)
}
