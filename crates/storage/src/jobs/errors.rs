//! An import's error and warning rows: written with their batch, read back
//! in row order, one severity at a time.

use crate::Result;
use crate::schema::import_errors;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::Lang;
use serde::Serialize;
use uuid::Uuid;

/// Whether a stored line refused its row (`error`) or only reports a lossy
/// change to an imported row (`warning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One error or warning line (row 0 = the whole file).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = import_errors)]
pub struct NewImportError {
    pub job_id: Uuid,
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub code: String,
    /// French (the default language, docs/api.md "Languages").
    pub message: String,
    /// English; `None` only for rows written before messages had two languages.
    pub message_en: Option<String>,
    pub raw: Option<serde_json::Value>,
    /// [`Severity::as_str`].
    pub severity: &'static str,
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
    /// In the request's language (docs/api.md "Languages"): French by
    /// default, English with `Accept-Language: en`.
    pub message: String,
    /// The English message, read with the row; see [`ImportErrorRow::in_lang`].
    #[serde(skip)]
    #[schema(ignore)]
    pub message_en: Option<String>,
    /// The original row, column name → text, in the file's order.
    #[schema(value_type = Option<Object>)]
    pub raw: Option<serde_json::Value>,
}

impl ImportErrorRow {
    /// The row with its message in `lang`. A row written before messages had
    /// two languages has one message, used for both.
    pub fn in_lang(mut self, lang: Lang) -> Self {
        if lang == Lang::En
            && let Some(en) = self.message_en.take()
        {
            self.message = en;
        }
        self
    }
}

/// A page of a job's error (or warning) lines, in row order, with their total.
pub async fn errors_page(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    severity: Severity,
    page: i64,
    per_page: i64,
) -> Result<(Vec<ImportErrorRow>, i64)> {
    let total: i64 = import_errors::table
        .filter(import_errors::job_id.eq(job_id))
        .filter(import_errors::severity.eq(severity.as_str()))
        .count()
        .get_result(conn)
        .await?;
    let items = import_errors::table
        .filter(import_errors::job_id.eq(job_id))
        .filter(import_errors::severity.eq(severity.as_str()))
        .order((import_errors::row.asc(), import_errors::id.asc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(ImportErrorRow::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

/// Where a page of [`errors_after`] ended: the next page starts after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCursor {
    row: i64,
    id: i64,
}

/// Up to `limit` error rows after `cursor`, in row order: a keyset page, so
/// reading all of a job's errors costs the same per page whatever their
/// number (the report streams them page by page).
pub async fn errors_after(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    severity: Severity,
    cursor: Option<ErrorCursor>,
    limit: i64,
) -> Result<(Vec<ImportErrorRow>, Option<ErrorCursor>)> {
    let mut q = import_errors::table
        .filter(import_errors::job_id.eq(job_id))
        .filter(import_errors::severity.eq(severity.as_str()))
        .into_boxed();
    if let Some(c) = cursor {
        q = q.filter(
            import_errors::row
                .gt(c.row)
                .or(import_errors::row.eq(c.row).and(import_errors::id.gt(c.id))),
        );
    }
    let rows: Vec<(i64, ImportErrorRow)> = q
        .order((import_errors::row.asc(), import_errors::id.asc()))
        .limit(limit)
        .select((import_errors::id, ImportErrorRow::as_select()))
        .load(conn)
        .await?;
    let next = rows.last().map(|(id, e)| ErrorCursor { row: e.row, id: *id });
    Ok((rows.into_iter().map(|(_, e)| e).collect(), next))
}

/// The original columns the error (or warning) rows carry (`raw`'s keys),
/// in the order they first appear: the report's column headers, read without
/// loading the rows.
pub async fn error_columns(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    severity: Severity,
) -> Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Text)]
        k: String,
    }
    let keys: Vec<Key> = diesel::sql_query(
        "SELECT t.k FROM import_errors e, json_object_keys(e.raw) WITH ORDINALITY AS t(k, n)
          WHERE e.job_id = $1 AND e.severity = $2 AND json_typeof(e.raw) = 'object'
          GROUP BY t.k ORDER BY min(e.row), min(t.n), t.k",
    )
    .bind::<diesel::sql_types::Uuid, _>(job_id)
    .bind::<diesel::sql_types::Text, _>(severity.as_str())
    .load(conn)
    .await?;
    Ok(keys.into_iter().map(|k| k.k).collect())
}
