//! Webhooks' vocabulary: the events a hook can subscribe to and the URL it
//! is delivered to, each parsed once.

use std::fmt;
use std::str::FromStr;

/// What a webhook is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    /// An import job reached `success`, `partial` or `error`.
    ImportCompleted,
    /// The last task of an AI generation batch ended.
    AiBatchCompleted,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 2] = [WebhookEvent::ImportCompleted, WebhookEvent::AiBatchCompleted];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::ImportCompleted => "import.completed",
            WebhookEvent::AiBatchCompleted => "ai_batch.completed",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown webhook event `{0}` (expected import.completed or ai_batch.completed)")]
pub struct UnknownEvent(pub String);

impl FromStr for WebhookEvent {
    type Err = UnknownEvent;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebhookEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEvent(s.to_owned()))
    }
}

/// An absolute `http` or `https` URL with a host, at most 2,048 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook URL: {0}")]
pub struct InvalidUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(s: &str) -> Result<Self, InvalidUrl> {
        let s = s.trim();
        if s.len() > Self::MAX_LEN {
            return Err(InvalidUrl(format!("longer than {} bytes", Self::MAX_LEN)));
        }
        let url = url::Url::parse(s).map_err(|e| InvalidUrl(format!("`{s}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidUrl(format!(
                "`{s}`: the scheme must be http or https, not `{}`",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidUrl(format!("`{s}` has no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials in the URL would be stored and listed in clear.
            return Err(InvalidUrl(
                "credentials in the URL are not accepted; use the signature".into(),
            ));
        }
        Ok(WebhookUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        for e in WebhookEvent::ALL {
            assert_eq!(e.as_str().parse::<WebhookEvent>(), Ok(e));
        }
        assert!("import.done".parse::<WebhookEvent>().is_err());
    }

    #[test]
    fn urls() {
        assert!(WebhookUrl::parse("https://hooks.example.com/foxflow").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/x?y=1").is_ok());
        for bad in [
            "ftp://x/y",
            "not a url",
            "javascript:alert(1)",
            "http://u:p@h/",
            "/relative",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
