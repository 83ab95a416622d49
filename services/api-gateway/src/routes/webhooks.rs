//! Webhooks (admin only): register a URL for `import.completed` and
//! `ai_batch.completed`, list and delete hooks, and read a hook's
//! deliveries. Delivery itself runs in the import worker
//! (`foxflow-webhooks`); see docs/webhooks.md.
//!
//! A hook makes our servers send requests where its URL says, so a URL whose
//! host is (or resolves to) a non-public address is refused unless that
//! network is in `WEBHOOK_ALLOW_PRIVATE_NETWORKS`; the delivery loop checks
//! again on every attempt, since a name can be re-pointed after this check.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::Paging;
use crate::state::AppState;
use crate::views::ErrorBody;
use actix_web::http::{Uri, header};
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use foxflow_domain::webhooks::{WebhookEvent, WebhookUrl};
use foxflow_domain::{Text, text};
use foxflow_storage::auth::Role;
use foxflow_storage::webhooks::DeliveryStatus;
use foxflow_storage::{pool, webhooks};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

/// A caller-chosen secret must be at least this long (a guessable key
/// would make signatures worthless).
const MIN_SECRET_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 256;
/// How long registration waits for a name to resolve; a name that does not
/// resolve yet is accepted and checked at delivery.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Registers this module's routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_webhook)
        .service(list_webhooks)
        .service(delete_webhook)
        .service(list_deliveries);
}

/// `{url, events, secret?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: an absolute http(s) URL.
    pub url: String,
    /// One or more of `import.completed`, `ai_batch.completed`.
    pub events: Vec<String>,
    /// The HMAC key (16 to 256 printable characters); generated when absent.
    pub secret: Option<String>,
}

/// A registered hook. Its secret is shown only in the answer to its creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Only in the 201 answer: keep it, it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn new(hook: webhooks::Webhook, secret: Option<String>) -> Self {
        WebhookView {
            id: hook.id,
            url: hook.url,
            events: hook.events,
            created_at: hook.created_at,
            secret,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// One delivery of an event to a hook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Also sent as `X-Foxflow-Delivery`.
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    /// The JSON body POSTed.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// `POST /api/v1/webhooks`: 201 with the hook and its secret, shown once.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "create_webhook",
    tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Registered; the answer carries the signing secret, shown only this once",
         body = WebhookView, headers(("Location" = String, description = "The hook's deliveries"))),
        (status = 400, description = "Malformed JSON, or `target_not_allowed`: the URL's host is or resolves to \
         a loopback, private, link-local, multicast or otherwise non-public address (see WEBHOOK_ALLOW_PRIVATE_NETWORKS)",
         body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 422, description = "Not an http(s) URL, an unknown event, or a too short secret", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/webhooks")]
pub async fn create_webhook(
    body: web::Json<CreateWebhook>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let body = body.into_inner();
    let url = WebhookUrl::parse(&body.url)
        .map_err(|e| ApiError::unprocessable("invalid_url", crate::lang::detail("URL refusée", &e)))?;
    if body.events.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "invalid_events",
            message: Box::new(Text::new(
                "`events` doit lister au moins un événement",
                "`events` must list at least one event",
            )),
            details: Some(json!({ "known": known_events() })),
        });
    }
    let events = body
        .events
        .iter()
        .map(|e| e.parse::<WebhookEvent>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Unprocessable {
            code: "invalid_events",
            message: Box::new(crate::lang::detail("événement inconnu", &e)),
            details: Some(json!({ "known": known_events() })),
        })?;
    let secret = match body.secret {
        Some(s) => {
            let ok = (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&s.len())
                && s.chars().all(|c| c.is_ascii_graphic());
            if !ok {
                return Err(ApiError::unprocessable(
                    "invalid_secret",
                    text!(
                        "`secret` compte de {MIN_SECRET_LEN} à {MAX_SECRET_LEN} caractères ASCII imprimables \
                         sans espace ; omettez-le pour qu’il soit généré",
                        "`secret` must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} printable ASCII characters \
                         without spaces; leave it out to have one generated"
                    ),
                ));
            }
            s
        }
        None => webhooks::new_secret(),
    };
    check_target(&url, &state.config.webhook_allow_private_networks).await?;
    let mut conn = pool::conn(&state.pool).await?;
    let hook = webhooks::create(&mut conn, &url, &events, &secret, Some(caller.0.user_id)).await?;
    // The URL is not logged: a query string may carry a receiver-side key.
    tracing::info!(webhook = %hook.id, events = ?hook.events, "webhook registered");
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/webhooks/{}/deliveries", hook.id),
        ))
        .json(WebhookView::new(hook, Some(secret))))
}

/// Refuses a URL whose host is, or resolves to, an address outside the
/// public internet and the operator's allowlist. Every address a name
/// resolves to must pass: the client may pick any of them.
async fn check_target(url: &WebhookUrl, networks: &foxflow_config::WebhookNetworks) -> Result<(), ApiError> {
    let refused = || {
        ApiError::bad_request(
            "target_not_allowed",
            Text::new(
                "l’hôte de l’URL est, ou se résout en, une adresse de bouclage, privée, lien-local, multicast \
                 ou autrement non publique ; les webhooks ne sont livrés qu’à des adresses publiques, sauf si \
                 l’exploitant autorise le réseau (WEBHOOK_ALLOW_PRIVATE_NETWORKS)",
                "the URL's host is or resolves to a loopback, private, link-local, multicast or otherwise \
                 non-public address; webhooks are delivered to public addresses only unless the operator \
                 allows the network (WEBHOOK_ALLOW_PRIVATE_NETWORKS)",
            ),
        )
    };
    let uri: Uri = url.as_str().parse().map_err(|_| {
        ApiError::unprocessable(
            "invalid_url",
            Text::new("l’URL n’a pas d’hôte utilisable", "the URL has no usable host"),
        )
    })?;
    let host = uri.host().ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_url",
            Text::new("l’URL n’a pas d’hôte", "the URL has no host"),
        )
    })?;
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return if networks.permits(ip) {
            Ok(())
        } else {
            Err(refused())
        };
    }
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    });
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.iter().all(|a| networks.permits(a.ip())) {
                Ok(())
            } else {
                Err(refused())
            }
        }
        // Not resolvable now: the receiver may not exist yet. Delivery checks
        // whatever it resolves to then.
        Ok(Err(_)) | Err(_) => Ok(()),
    }
}

fn known_events() -> Vec<&'static str> {
    WebhookEvent::ALL.iter().map(|e| e.as_str()).collect()
}

/// `GET /api/v1/webhooks`: every hook, oldest first, without secrets.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The registered hooks (secrets are never listed)", body = WebhookList),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/webhooks")]
pub async fn list_webhooks(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let mut conn = pool::conn(&state.pool).await?;
    let items = webhooks::list(&mut conn)
        .await?
        .into_iter()
        .map(|h| WebhookView::new(h, None))
        .collect();
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

/// `DELETE /api/v1/webhooks/{id}`: 204; its pending deliveries are dropped.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The hook's id")),
    responses(
        (status = 204, description = "Deleted, with its delivery history"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = hook_id(&path)?;
    let mut conn = pool::conn(&state.pool).await?;
    match webhooks::delete(&mut conn, id).await {
        Ok(()) => {
            tracing::info!(webhook = %id, "webhook deleted");
            Ok(HttpResponse::NoContent().finish())
        }
        Err(foxflow_storage::StorageError::NotFound) => Err(ApiError::NotFound("webhook")),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/webhooks/{id}/deliveries`: newest first, paginated.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The hook's id"), Paging),
    responses(
        (status = 200, description = "The hook's deliveries with their attempts and last outcome", body = DeliveryPage),
        (status = 400, description = "A bad page number", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    path: web::Path<String>,
    paging: web::Query<Paging>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = hook_id(&path)?;
    let (page, per_page) = paging.bounds();
    let mut conn = pool::conn(&state.pool).await?;
    webhooks::get(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let (rows, total) = webhooks::deliveries(&mut conn, id, page, per_page).await?;
    let items = rows
        .into_iter()
        .map(|d| DeliveryView {
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            id: d.id,
            webhook_id: d.webhook_id,
            event: d.event,
            payload: d.payload,
            status: d.status.to_string(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryPage {
        items,
        total,
        page,
        per_page,
    }))
}

/// A malformed id names no hook.
fn hook_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("webhook"))
}
