//! The one question a delivery asks before it waits for the rate gate.

/// Where a job or an AI task stands for a delivery that has not claimed it
/// yet: what the consumer needs to settle a copy before the rate gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Ended: nothing to do.
    Final,
    /// A live claim runs it (its lease is in the future, by the database's clock).
    Running,
    /// Pending, or processing with no live lease: may be claimed.
    Open,
}
