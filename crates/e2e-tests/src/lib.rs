//! This crate only holds the end-to-end tests, in `tests/e2e/` (one test
//! binary, so the services are linked once).
