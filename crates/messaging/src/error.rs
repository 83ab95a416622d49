//! What can go wrong talking to the broker.

/// Broker failures. All of them are transient from the caller's point of
/// view except a topology mismatch, which needs an operator, and
/// [`MessagingError::Unroutable`]: the broker works, the message has no queue
/// to go to until someone binds one.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("broker unavailable: {0}")]
    Unavailable(#[from] lapin::Error),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("the message could not be routed to any queue on `{exchange}` with key `{routing_key}`")]
    Unroutable { exchange: String, routing_key: String },
    #[error("the channel is not in confirm mode; the message is not confirmed")]
    NotConfirmed,
    #[error("the broker did not confirm within {0:?}")]
    Timeout(std::time::Duration),
}
