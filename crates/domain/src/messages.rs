//! The bodies that travel through RabbitMQ. Each carries a `type` and a
//! `version` so a worker can refuse (and park) what it does not understand.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every message body is one of these, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Run (or resume) one import job.
    ImportRequested { version: u32, job_id: Uuid },
    /// Generate one kind of text for one target.
    AiGenerationRequested { version: u32, task_id: Uuid },
}

pub const MESSAGE_VERSION: u32 = 1;

impl Message {
    pub fn import_requested(job_id: Uuid) -> Self {
        Message::ImportRequested {
            version: MESSAGE_VERSION,
            job_id,
        }
    }

    pub fn ai_generation_requested(task_id: Uuid) -> Self {
        Message::AiGenerationRequested {
            version: MESSAGE_VERSION,
            task_id,
        }
    }

    /// The routing key on `{ns}.jobs`, which is also the work queue's suffix.
    pub fn routing_key(&self) -> &'static str {
        match self {
            Message::ImportRequested { .. } => QueueKind::Imports.as_str(),
            Message::AiGenerationRequested { .. } => QueueKind::AiGeneration.as_str(),
        }
    }

    pub fn version(&self) -> u32 {
        match self {
            Message::ImportRequested { version, .. } | Message::AiGenerationRequested { version, .. } => {
                *version
            }
        }
    }

    /// Parses a body strictly: unknown `type`, a missing field or a version
    /// this build does not speak is an error, never a guess.
    pub fn from_json(body: &[u8]) -> Result<Message, MessageError> {
        let msg: Message =
            serde_json::from_slice(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if msg.version() != MESSAGE_VERSION {
            return Err(MessageError::UnsupportedVersion(msg.version()));
        }
        Ok(msg)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages always serialise")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unsupported message version {0}")]
    UnsupportedVersion(u32),
}

/// The two work queues (docs/spec.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    Imports,
    AiGeneration,
}

impl QueueKind {
    pub const ALL: [QueueKind; 2] = [QueueKind::Imports, QueueKind::AiGeneration];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Imports => "imports",
            QueueKind::AiGeneration => "ai_generation",
        }
    }
}

impl std::str::FromStr for QueueKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueKind::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| format!("unknown queue `{s}` (expected imports or ai_generation)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let id = Uuid::new_v4();
        let m = Message::import_requested(id);
        assert_eq!(Message::from_json(&m.to_json()), Ok(m));
        assert!(matches!(
            Message::from_json(b"{nope"),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            Message::from_json(br#"{"type":"launch_rockets","version":1}"#),
            Err(MessageError::Malformed(_))
        ));
        let v2 = format!(r#"{{"type":"import_requested","version":2,"job_id":"{id}"}}"#);
        assert_eq!(
            Message::from_json(v2.as_bytes()),
            Err(MessageError::UnsupportedVersion(2))
        );
    }
}
