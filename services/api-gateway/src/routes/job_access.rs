//! Which import jobs a caller may see: the rule the import routes and the
//! events stream share.

use crate::auth::Caller;
use crate::error::ApiError;
use foxflow_storage::AsyncPgConnection;
use foxflow_storage::jobs::{self, ImportJob};
use uuid::Uuid;

/// Loads a job the caller may see; another staff member's job is 404, not
/// 403, so ids do not leak.
pub async fn visible_job(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: &str,
) -> Result<ImportJob, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound("import"))?;
    let job = jobs::get_job(conn, id)
        .await?
        .ok_or(ApiError::NotFound("import"))?;
    match caller.owner_filter() {
        Some(owner) if job.owner_id != Some(owner) => Err(ApiError::NotFound("import")),
        _ => Ok(job),
    }
}
