//! This crate only holds the end-to-end tests: `tests/e2e/` (one test binary
//! for the scenarios, so the services are linked once) and `tests/soak.rs`
//! (the chaos soak of issue 15, its own binary so it runs alone, beside the
//! scenarios rather than competing with them for the two cores).
