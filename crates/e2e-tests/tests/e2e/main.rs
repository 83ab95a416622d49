//! End-to-end: uploads over HTTP, through RabbitMQ, into PostgreSQL.

mod ai;
mod faults;
mod formats;
mod foundation;
mod ops;
mod rate_limits;
mod uploads;
