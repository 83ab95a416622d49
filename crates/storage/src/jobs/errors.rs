//! An import's error rows: written with their batch, read back in row order.

use crate::Result;
use crate::schema::import_errors;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

/// One error row (row 0 = the whole file).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = import_errors)]
pub struct NewImportError {
    pub job_id: Uuid,
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub code: String,
    pub message: String,
    pub raw: Option<serde_json::Value>,
}

/// One error row of an import (row 0 = the whole file).
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = import_errors)]
// The OpenAPI document has always called it this.
#[schema(as = ErrorRowView)]
pub struct ImportErrorRow {
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub code: String,
    pub message: String,
    /// The original row, column name → text, in the file's order.
    #[schema(value_type = Option<Object>)]
    pub raw: Option<serde_json::Value>,
}

/// The first error rows of a job, in row order.
pub async fn errors_page(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    page: i64,
    per_page: i64,
) -> Result<(Vec<ImportErrorRow>, i64)> {
    let total: i64 = import_errors::table
        .filter(import_errors::job_id.eq(job_id))
        .count()
        .get_result(conn)
        .await?;
    let items = import_errors::table
        .filter(import_errors::job_id.eq(job_id))
        .order((import_errors::row.asc(), import_errors::id.asc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(ImportErrorRow::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}
