//! Any OpenAI-compatible chat-completions server: OpenAI, Mistral, vLLM,
//! Ollama, the llama.cpp server.
//!
//! `POST {base}/v1/chat/completions` with a bearer key, a system and a user
//! message from the versioned prompts, and `response_format: json_object`.
//! The answer's content must be exactly `{"texte": "…"}` (or `{"faq":
//! [{"question", "reponse"}…]}` for a FAQ): unknown fields, missing fields or
//! prose around the JSON make a [`ProviderError::BadAnswer`]. Only one
//! Markdown code fence around the object is tolerated, because several
//! local servers add one even in JSON mode.

use crate::prompt::{self, Prompt};
use crate::{Generation, Provider, ProviderError, SetupError};
use foxflow_domain::ai_text::{Draft, Facts, FaqEntry, TextKind};
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// How to reach the server.
#[derive(Clone)]
pub struct OpenAiSettings {
    /// With or without the trailing `/v1`: `https://api.openai.com`,
    /// `https://api.mistral.ai/v1` and `http://127.0.0.1:11434/v1` all work.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set (local servers need none).
    pub api_key: Option<SecretString>,
    pub model: String,
    pub connect_timeout: Duration,
    /// The whole call, from sending the request to the last byte of the answer.
    pub timeout: Duration,
}

pub struct OpenAiProvider {
    client: reqwest::Client,
    endpoint: String,
    api_key: Option<SecretString>,
    model: String,
}

/// `{base}/v1/chat/completions`, whether or not `base` already ends in `/v1`.
pub fn endpoint(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/chat/completions")
}

impl OpenAiProvider {
    pub fn new(settings: OpenAiSettings) -> Result<Self, SetupError> {
        let endpoint = endpoint(&settings.base_url);
        reqwest::Url::parse(&endpoint)
            .map_err(|e| SetupError(format!("OPENAI_BASE_URL `{}`: {e}", settings.base_url)))?;
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("foxflow-ai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError(e.to_string()))?;
        Ok(OpenAiProvider {
            client,
            endpoint,
            api_key: settings.api_key,
            model: settings.model,
        })
    }

    async fn call(&self, kind: TextKind, facts: &Facts) -> Result<Generation, ProviderError> {
        let Prompt {
            system,
            user,
            version,
        } = prompt::render(kind, facts);
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": 0.4,
            "response_format": {"type": "json_object"},
        });
        let mut request = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let text = response.text().await.unwrap_or_default();
            return Err(status_error(status, retry_after, &text));
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        let answer: ChatResponse = serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::BadAnswer(format!("not a chat-completions response: {e}")))?;
        let choice = answer
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::BadAnswer("the response has no choices".into()))?;
        if choice.finish_reason.as_deref() == Some("length") {
            return Err(ProviderError::BadAnswer(
                "the answer was cut off at the token limit".into(),
            ));
        }
        let content = choice
            .message
            .content
            .ok_or_else(|| ProviderError::BadAnswer("the answer has no content".into()))?;
        let draft = parse_content(kind, &content)?;
        let usage = answer.usage.unwrap_or_default();
        Ok(Generation {
            draft,
            model: answer
                .model
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| self.model.clone()),
            prompt_version: version,
            tokens_in: usage.prompt_tokens.and_then(|t| i32::try_from(t).ok()),
            tokens_out: usage.completion_tokens.and_then(|t| i32::try_from(t).ok()),
        })
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn generate<'a>(
        &'a self,
        kind: TextKind,
        facts: &'a Facts,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>> {
        self.call(kind, facts).boxed()
    }
}

fn transport_error(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout
    } else {
        // Refused or reset connections, truncated bodies: transient too.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ProviderError::Connect(message)
    }
}

fn status_error(status: StatusCode, retry_after: Option<Duration>, body: &str) -> ProviderError {
    match status.as_u16() {
        429 => ProviderError::RateLimited { retry_after },
        408 => ProviderError::Server(408),
        s if status.is_server_error() => ProviderError::Server(s),
        s => ProviderError::Rejected {
            status: s,
            message: error_message(body),
        },
    }
}

/// The server's own explanation (`{"error": {"message": …}}` in the OpenAI
/// format), cut short: it goes into logs and task errors.
fn error_message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| body.to_owned());
    let short: String = message.chars().take(200).collect();
    if short.is_empty() {
        "no detail".into()
    } else {
        short
    }
}

/// `Retry-After` in seconds or as an HTTP date, or OpenAI's
/// `retry-after-ms`; `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct ChatResponse {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Usage {
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextAnswer {
    texte: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqAnswer {
    faq: Vec<FaqEntry>,
}

/// The answer's content, parsed strictly into the draft `kind` expects.
pub fn parse_content(kind: TextKind, content: &str) -> Result<Draft, ProviderError> {
    let json = strip_fence(content.trim());
    let bad = |e: serde_json::Error| {
        let preview: String = content.chars().take(120).collect();
        ProviderError::BadAnswer(format!("expected {}: {e} (got `{preview}`)", shape(kind)))
    };
    match kind {
        TextKind::Faq => serde_json::from_str::<FaqAnswer>(json)
            .map(|a| Draft::Faq(a.faq))
            .map_err(bad),
        _ => serde_json::from_str::<TextAnswer>(json)
            .map(|a| Draft::Text(a.texte))
            .map_err(bad),
    }
}

fn shape(kind: TextKind) -> &'static str {
    match kind {
        TextKind::Faq => r#"{"faq": [{"question": …, "reponse": …}]}"#,
        _ => r#"{"texte": …}"#,
    }
}

fn strip_fence(s: &str) -> &str {
    let Some(rest) = s.strip_prefix("```") else {
        return s;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.trim().strip_suffix("```").map(str::trim).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use foxflow_domain::ai_text::PageFacts;
    use wiremock::matchers::{bearer_token, body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn endpoint_accepts_a_base_with_or_without_v1() {
        for base in [
            "http://127.0.0.1:11434",
            "http://127.0.0.1:11434/",
            "http://127.0.0.1:11434/v1",
            "http://127.0.0.1:11434/v1/",
        ] {
            assert_eq!(endpoint(base), "http://127.0.0.1:11434/v1/chat/completions");
        }
    }

    #[test]
    fn answers_are_parsed_strictly() {
        assert_eq!(
            parse_content(TextKind::MetaDescription, r#"{"texte": "Bonjour."}"#),
            Ok(Draft::Text("Bonjour.".into()))
        );
        assert_eq!(
            parse_content(
                TextKind::MetaDescription,
                "```json\n{\"texte\": \"Bonjour.\"}\n```"
            ),
            Ok(Draft::Text("Bonjour.".into()))
        );
        for bad in [
            "Bonjour.",
            r#"{"text": "Bonjour."}"#,
            r#"{"texte": "Bonjour.", "note": 3}"#,
            r#"Voici : {"texte": "Bonjour."}"#,
            r#"{"texte": 3}"#,
        ] {
            assert!(
                matches!(
                    parse_content(TextKind::MetaDescription, bad),
                    Err(ProviderError::BadAnswer(_))
                ),
                "{bad}"
            );
        }
        let faq = r#"{"faq": [{"question": "Où ?", "reponse": "Ici."}]}"#;
        assert!(matches!(parse_content(TextKind::Faq, faq), Ok(Draft::Faq(e)) if e.len() == 1));
        assert!(parse_content(TextKind::Faq, r#"{"faq": [{"question": "Où ?"}]}"#).is_err());
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    fn facts() -> Facts {
        Facts::Prolocalisation(PageFacts {
            entreprise: "Dupont Plomberie".into(),
            siren: "732829320".into(),
            activite: "Plombier".into(),
            ville: "Lyon".into(),
            code_postal: "69003".into(),
            ..Default::default()
        })
    }

    fn provider(server: &MockServer, timeout: Duration) -> OpenAiProvider {
        OpenAiProvider::new(OpenAiSettings {
            base_url: format!("{}/v1", server.uri()),
            api_key: Some("sk-test".to_owned().into()),
            model: "test-model".into(),
            connect_timeout: Duration::from_secs(2),
            timeout,
        })
        .unwrap()
    }

    fn completion(content: &str) -> serde_json::Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "test-model-0613",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375}
        })
    }

    #[tokio::test]
    async fn speaks_the_chat_completions_wire_format() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(bearer_token("sk-test"))
            .and(body_partial_json(
                json!({"model": "test-model", "response_format": {"type": "json_object"}}),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(completion(r#"{"texte": "Dupont Plomberie à Lyon."}"#)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let g = provider(&server, Duration::from_secs(5))
            .generate(TextKind::MetaDescription, &facts())
            .await
            .unwrap();
        assert_eq!(g.draft, Draft::Text("Dupont Plomberie à Lyon.".into()));
        assert_eq!(g.model, "test-model-0613");
        assert_eq!(g.prompt_version, "v1/meta_description");
        assert_eq!((g.tokens_in, g.tokens_out), (Some(321), Some(54)));
    }

    #[tokio::test]
    async fn errors_are_typed() {
        let server = MockServer::start().await;
        let cases = [
            (
                ResponseTemplate::new(429).insert_header("Retry-After", "12"),
                ProviderError::RateLimited {
                    retry_after: Some(Duration::from_secs(12)),
                },
            ),
            (ResponseTemplate::new(503), ProviderError::Server(503)),
            (
                ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "Incorrect API key"}})),
                ProviderError::Rejected {
                    status: 401,
                    message: "Incorrect API key".into(),
                },
            ),
        ];
        for (response, expected) in cases {
            server.reset().await;
            Mock::given(method("POST"))
                .respond_with(response)
                .mount(&server)
                .await;
            let err = provider(&server, Duration::from_secs(5))
                .generate(TextKind::MetaDescription, &facts())
                .await
                .unwrap_err();
            assert_eq!(err, expected);
        }
        server.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion("Voici votre texte.")))
            .mount(&server)
            .await;
        let err = provider(&server, Duration::from_secs(5))
            .generate(TextKind::MetaDescription, &facts())
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::BadAnswer(_)), "{err:?}");
        server.reset().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(completion(r#"{"texte": "Trop tard."}"#))
                    .set_delay(Duration::from_secs(2)),
            )
            .mount(&server)
            .await;
        let err = provider(&server, Duration::from_millis(300))
            .generate(TextKind::MetaDescription, &facts())
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::Timeout);
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transient_error() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = OpenAiProvider::new(OpenAiSettings {
            base_url: format!("http://127.0.0.1:{port}"),
            api_key: None,
            model: "m".into(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        })
        .unwrap();
        let err = p.generate(TextKind::MetaDescription, &facts()).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
}
