#![doc = include_str!("../README.md")]

pub mod openai;
pub mod prompt;
pub mod template;

use foxflow_config::{AiProviderKind, Config};
use foxflow_domain::ai_text::{Draft, Facts, TextKind};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// A draft with what it took to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub draft: Draft,
    /// The model that answered (as the server reports it when it does).
    pub model: String,
    /// Which prompt template, and which version of it, produced the draft.
    pub prompt_version: String,
    pub tokens_in: Option<i32>,
    pub tokens_out: Option<i32>,
}

/// Why a provider returned no draft. [`ProviderError::is_transient`] says
/// which failures are worth a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("cannot reach the provider: {0}")]
    Connect(String),
    /// HTTP 429: the whole queue should slow down for `retry_after`.
    #[error("the provider is rate limiting us (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, or 408: the provider failed this time.
    #[error("the provider failed with HTTP {0}")]
    Server(u16),
    /// Any other 4xx: the request itself is wrong (key, model, parameters);
    /// retrying will not help.
    #[error("the provider refused the request with HTTP {status}: {message}")]
    Rejected { status: u16, message: String },
    /// The answer arrived but is not the JSON document the prompt asks for.
    #[error("unusable answer: {0}")]
    BadAnswer(String),
}

impl ProviderError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Timeout
                | ProviderError::Connect(_)
                | ProviderError::RateLimited { .. }
                | ProviderError::Server(_)
        )
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ProviderError::Timeout => "timeout",
            ProviderError::Connect(_) => "connect",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Server(_) => "server",
            ProviderError::Rejected { .. } => "rejected",
            ProviderError::BadAnswer(_) => "bad_answer",
        }
    }
}

/// Something that writes a draft of one kind of text from a target's facts.
pub trait Provider: Send + Sync + 'static {
    /// `template` or `openai`, stored as provenance.
    fn name(&self) -> &'static str;

    fn generate<'a>(
        &'a self,
        kind: TextKind,
        facts: &'a Facts,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>>;
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the AI provider: {0}")]
pub struct SetupError(pub String);

/// The provider `AI_PROVIDER` names, set up from the configuration.
pub fn from_config(config: &Config) -> Result<Arc<dyn Provider>, SetupError> {
    match config.ai_provider {
        AiProviderKind::Template => Ok(Arc::new(template::TemplateProvider)),
        AiProviderKind::OpenAi => {
            let settings = openai::OpenAiSettings {
                base_url: config
                    .openai_base_url
                    .clone()
                    .ok_or_else(|| SetupError("OPENAI_BASE_URL is not set".into()))?,
                api_key: config.openai_api_key.clone(),
                model: config
                    .openai_model
                    .clone()
                    .ok_or_else(|| SetupError("OPENAI_MODEL is not set".into()))?,
                connect_timeout: config.openai_connect_timeout,
                timeout: config.openai_timeout,
            };
            Ok(Arc::new(openai::OpenAiProvider::new(settings)?))
        }
    }
}
