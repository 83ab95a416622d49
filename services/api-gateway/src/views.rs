//! The JSON shapes scripts and the dashboard rely on (docs/spec.md §5).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

// The job and its error rows are built by the storage crate, once, for the
// API, the events stream and the webhooks alike; their schemas derive there.
pub use foxflow_storage::jobs::{ImportErrorRow, JobView};

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

// ---------------------------------------------------------------------------
// Shapes written elsewhere (error bodies, storage's batches and stats),
// described here for the OpenAPI document only. The schemathesis run checks
// every response against them, so a drift shows up as a failure. The job is
// the exception: one type, `JobView`, is both the JSON and its schema.
// ---------------------------------------------------------------------------

/// The standard error body: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`not_found`, `invalid_import_type`, …).
    pub code: String,
    pub message: String,
    /// Extra facts for some codes (e.g. `unknown_ids`); null otherwise.
    #[schema(value_type = Value)]
    pub details: serde_json::Value,
}

/// An AI generation batch and its tasks counted by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    pub id: Uuid,
    /// `entreprise`, `prolocalisation`, `categorie`, `sous_categorie` or `ville`.
    pub target: String,
    pub kinds: Vec<String>,
    pub force: bool,
    pub import_id: Option<Uuid>,
    /// How the targets were chosen (`{"ids": n}`, `{"import_id": …}` or `{"filter": …}`).
    #[schema(value_type = Option<Object>)]
    pub selection: Option<serde_json::Value>,
    /// `running` while any task is pending or processing, then `completed`.
    pub status: String,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    pub pending: i64,
    pub processing: i64,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A batch with its first failures (`GET /api/v1/ai/generations/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchDetailView {
    #[serde(flatten)]
    pub batch: BatchView,
    pub failures: Vec<FailedTaskView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailedTaskView {
    pub id: Uuid,
    pub target_id: i64,
    pub kind: String,
    pub last_error: Option<String>,
}

/// `GET /api/v1/imports/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub total: i64,
    /// Jobs per status; every status is present.
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    pub by_status: std::collections::BTreeMap<String, i64>,
    /// Jobs per import type; every type is present.
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    pub by_type: std::collections::BTreeMap<String, i64>,
    pub rows: RowTotalsView,
    /// Mean of the jobs' success rates (%), null before any processed row.
    pub average_success_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RowTotalsView {
    pub total: i64,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
}

/// One page of read-side records (entreprises, catégories, villes…): JSON
/// objects built by PostgreSQL; docs/api.md lists their fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// One read-side record (an entreprise with its pages, a page with its texts).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Record(pub serde_json::Value);

// By hand: the derive cannot describe a newtype over `Value` as a free-form object.
impl utoipa::PartialSchema for Record {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .description(Some(
                "A JSON object built by PostgreSQL; docs/ai.md lists its fields",
            ))
            .into()
    }
}

impl ToSchema for Record {}

/// `GET /api/v1/queues`: what the gateway last sampled from RabbitMQ.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuesView {
    /// How often the sample is refreshed, in seconds.
    pub sampled_every_s: u64,
    pub queues: Vec<QueueView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// The queue's name in RabbitMQ (namespaced).
    pub name: String,
    /// `imports` or `ai_generation`.
    pub kind: String,
    /// `work`, `retry` or `dead`.
    pub role: String,
    /// Messages waiting (ready, not delivered).
    pub ready: i64,
    pub consumers: i64,
}

/// The multipart form of `POST /api/v1/imports`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: CSV, XLSX or XLS; the extension and the content must agree.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// `entreprises`, `categories`, `sous_categories` or `villes`.
    pub import_type: String,
    /// `true` to validate and count without writing (default false).
    #[schema(nullable = false)]
    pub dry_run: Option<bool>,
    /// `true` to generate the texts of what the import touched (default false).
    #[schema(nullable = false)]
    pub generate_ai: Option<bool>,
}

/// A file download (the XLSX report).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, SchemaFormat, Type};
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}
