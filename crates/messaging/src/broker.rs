//! Connections to the broker: named, with a heartbeat, every exchange bounded in time.

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use std::time::Duration;

/// How long opening a connection (TCP + AMQP handshake) may take before we
/// give up and back off: a half-open peer must not hang a publisher that
/// holds outbox row locks.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat asked of the broker unless the URL sets `?heartbeat=`: a peer
/// that vanished without closing the socket (a node lost, a partition) is
/// noticed within two intervals instead of the broker's 60 s default.
pub const HEARTBEAT_SECS: u16 = 10;

/// Opens a connection named after the process (visible in the management
/// console). Recovery is ours, not lapin's: callers reconnect with
/// [`Backoff`] and declare the topology again, which is idempotent.
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|e: String| lapin::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    uri.query.heartbeat.get_or_insert(HEARTBEAT_SECS);
    let props = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    bounded("an AMQP connection", Connection::connect_uri(uri, props)).await
}

/// Runs one exchange with the broker (opening a channel, declaring the
/// topology, closing) for at most [`CONNECT_TIMEOUT`]. A request on a
/// connection whose socket died can stay unanswered for ever in lapin, and an
/// unbounded wait there is a consumer that never reconnects or a relay that
/// never publishes again.
pub async fn bounded<T>(
    what: &str,
    step: impl Future<Output = Result<T, lapin::Error>>,
) -> Result<T, lapin::Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, step).await {
        Ok(result) => result,
        Err(_) => Err(lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer for {what} within {}s", CONNECT_TIMEOUT.as_secs()),
        ))),
    }
}

/// Capped exponential backoff: 200 ms doubling up to 10 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const CAP: Duration = Duration::from_secs(10);

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::CAP);
        d
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}
