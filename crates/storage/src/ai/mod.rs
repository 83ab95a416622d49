//! AI generation batches, tasks and the history of generated texts (docs/spec.md §8).
//!
//! A batch is one request ("these pages, these kinds"); a task is one
//! (target, kind) and travels as one `ai_generation_requested` message. The
//! batch, its tasks and their outbox rows are written in the caller's
//! transaction, in three set-based statements whatever the batch size. A
//! task's final status is written in the same transaction as its effect (the
//! text, the history row), so a redelivered message finds it final and stops.
//!
//! The submodules follow a task's life: `targets` picks what to generate,
//! `batches` writes a batch and reads its progress (and closes it),
//! `tasks` claims and ends one task, `generations` loads what a provider
//! writes from and stores what it wrote. `status` holds the two enums they
//! share with the database. Everything is re-exported here:
//! `foxflow_storage::ai::claim_task` is the path callers use.

mod batches;
mod generations;
mod quota;
mod status;
mod targets;
mod tasks;

pub use batches::{
    BatchProgress, BatchRow, CreatedBatch, FailedTask, NewBatch, batch_progress, complete_batch_if_done,
    create_batch, create_batch_for_import, failed_tasks, list_batches,
};
pub use generations::{
    GenerationRecord, Provenance, Subject, latest_provenance, load_subject, store_generation,
};
pub use quota::{OverQuota, create_batch_within_quota};
pub use status::{TaskStatus, Validation};
pub use targets::{TargetFilter, existing_ids, filter_ids, touched_ids};
pub use tasks::{
    TaskClaim, TaskRow, claim_task, finish_claimed_task, finish_task, release_task, task_run_state,
};
