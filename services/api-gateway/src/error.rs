//! The one place errors become HTTP answers:
//! `{"error": {"code", "message", "details"}}` with the right status.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use foxflow_domain::{Lang, Text, text};
use foxflow_storage::StorageError;
use serde_json::{Value, json};

/// A clamd that restarts spends tens of seconds loading its signatures before it answers.
const SCANNER_RETRY_AFTER_S: u64 = 30;

/// Every message is in French and English ([`Text`]); the answer is in the
/// request's language (`crate::lang`), French by default. `Display` is the
/// English one, for logs.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{}", .0.en)]
    Forbidden(Text),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", message.en)]
    // Boxed: a `Result<_, ApiError>` stays small (clippy::result_large_err).
    BadRequest { code: &'static str, message: Box<Text> },
    #[error("{}", message.en)]
    Unprocessable {
        code: &'static str,
        message: Box<Text>,
        details: Option<Value>,
    },
    #[error("the file exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("{}", .0.en)]
    UnsupportedMediaType(Text),
    #[error("{}", .0.en)]
    Conflict(Text),
    #[error("too many requests; retry in {retry_after_s} s")]
    TooManyRequests { retry_after_s: u64 },
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
    /// clamd gave no verdict and uploads fail closed (`CLAMD_FAIL_OPEN` unset).
    #[error("the virus scanner is unavailable; the file was not stored, retry later")]
    ScannerUnavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable => "unavailable",
            ApiError::ScannerUnavailable => "scanner_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn bad_request(code: &'static str, message: Text) -> Self {
        ApiError::BadRequest {
            code,
            message: Box::new(message),
        }
    }

    pub fn unprocessable(code: &'static str, message: Text) -> Self {
        ApiError::Unprocessable {
            code,
            message: Box::new(message),
            details: None,
        }
    }

    /// What the client reads, in both languages.
    pub fn message(&self) -> Text {
        match self {
            ApiError::Unauthorized => Text::new(
                "un jeton d’accès (bearer) valide est requis",
                "a valid bearer token is required",
            ),
            ApiError::Forbidden(m) | ApiError::UnsupportedMediaType(m) | ApiError::Conflict(m) => m.clone(),
            ApiError::NotFound(what) => {
                let fr = match *what {
                    "import" => "import introuvable",
                    "batch" => "lot introuvable",
                    "entreprise" => "entreprise introuvable",
                    "export" => "export introuvable",
                    "prolocalisation" => "prolocalisation introuvable",
                    "webhook" => "webhook introuvable",
                    "route" => "route introuvable",
                    _ => "ressource introuvable",
                };
                Text::new(fr, format!("{what} not found"))
            }
            ApiError::BadRequest { message, .. } | ApiError::Unprocessable { message, .. } => {
                (**message).clone()
            }
            ApiError::PayloadTooLarge { limit } => text!(
                "le fichier dépasse la limite de {limit} octets",
                "the file exceeds the limit of {limit} bytes"
            ),
            ApiError::TooManyRequests { retry_after_s } => text!(
                "trop de requêtes ; réessayez dans {retry_after_s} s",
                "too many requests; retry in {retry_after_s} s"
            ),
            ApiError::Unavailable => Text::new(
                "le service est momentanément indisponible ; réessayez dans un instant",
                "the service is temporarily unavailable; retry shortly",
            ),
            ApiError::ScannerUnavailable => Text::new(
                "l’antivirus est indisponible ; le fichier n’a pas été enregistré, réessayez plus tard",
                "the virus scanner is unavailable; the file was not stored, retry later",
            ),
            ApiError::Internal(_) => Text::new("erreur interne", "internal error"),
        }
    }

    /// The answer in `lang`: `{"error": {"code", "message", "details"}}`
    /// with its status and headers.
    pub fn render(&self, lang: Lang) -> HttpResponse {
        let message = self.message();
        let details = match self {
            ApiError::Unprocessable { details, .. } => details.clone().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            ApiError::TooManyRequests { retry_after_s } => {
                resp.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
            }
            ApiError::Unauthorized => {
                resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::Unavailable => {
                resp.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::ScannerUnavailable => {
                resp.insert_header((header::RETRY_AFTER, SCANNER_RETRY_AFTER_S.to_string()));
            }
            _ => {}
        }
        resp.insert_header((header::CONTENT_LANGUAGE, lang.as_str()));
        resp.json(json!({"error": {"code": self.code(), "message": message.get(lang), "details": details}}))
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ApiError::NotFound("resource"),
            // Storage's conflicts are worded in English only; both languages carry them.
            StorageError::Conflict(m) => ApiError::Conflict(m),
            e if e.is_transient() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            e => ApiError::Internal(e.into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::ScannerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// French, the default; `crate::lang::localize_errors` re-renders it for
    /// a request in English.
    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(e) = self {
            // Logged once, here, with its whole chain; the client gets no detail.
            tracing::error!(error = ?e, "internal error");
        }
        self.render(Lang::Fr)
    }
}
