//! End-to-end: uploads over HTTP, through RabbitMQ, into PostgreSQL.

mod foundation;
