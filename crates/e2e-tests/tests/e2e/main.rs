//! End-to-end: uploads over HTTP, through RabbitMQ, into PostgreSQL.
// Helpers outside `#[test]` functions unwrap too: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod abuse;
mod abuse_api;
mod ai;
mod ai_duplicates;
mod cancel;
mod cli;
mod dashboard;
mod dry_run;
mod exports;
mod faults;
mod final_state;
mod formats;
mod foundation;
mod french;
mod hostile;
mod ops;
mod outbox;
mod pg_connections;
mod pgbouncer;
mod plans;
mod rate_limits;
mod revert;
mod secrets;
mod sirene;
mod uploads;
mod virus_scan;
mod warnings;
mod webhooks;
