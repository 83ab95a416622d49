//! Receiving an upload. The file part is streamed to a temporary file, the size limit enforced
//! and the type sniffed as bytes arrive; then the rest of the form is checked, clamd scans the
//! file when `CLAMD_ADDR` is set (crate::scan), and only then is the file stored in chunks. So a
//! refused upload (too large, wrong type, bad form, infected, scanner down) stores nothing.

use crate::error::ApiError;
use crate::state::AppState;
use actix_multipart::Multipart;
use actix_web::{HttpRequest, web};
use foxflow_domain::{ImportOptions, ImportType};
use foxflow_domain::{Text, text};
use foxflow_storage::{StorageError, files, jobs, pool};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

/// A stored file and the form fields that came with it.
pub struct Upload {
    pub file_id: Uuid,
    pub file_name: String,
    pub size: i64,
    pub sha256_hex: String,
    pub import_type: ImportType,
    pub options: ImportOptions,
}

/// Form fields per upload, the file included.
const MAX_FIELDS: usize = 16;
/// Bytes of any field but the file, unknown fields included: nothing but
/// the file may make the server read more than 16 × 1 KiB.
const MAX_TEXT_FIELD: usize = 1024;
/// Longest wait for the next bytes of the body. Actix's own timeout covers
/// the headers only: without this a client sending a byte a minute holds a
/// connection (and a half-written temporary file) for ever.
const UPLOAD_IDLE_LIMIT: Duration = Duration::from_secs(20);
/// A whole upload, however steadily it trickles: 10 MiB (the default
/// `MAX_IMPORT_FILE_BYTES`) in 10 minutes is 17 KiB/s.
const UPLOAD_TIME_LIMIT: Duration = Duration::from_secs(600);
/// Writes to the temporary file are gathered to this size: multipart parts
/// arrive in a few KiB at a time, and each tokio file write is a trip to the
/// blocking pool.
const SPOOL_BUFFER: usize = 256 * 1024;

/// The file part, received whole into an anonymous temporary file (removed
/// by the OS when closed, even if the process dies).
struct Spooled {
    file: tokio::fs::File,
    file_name: String,
    size: u64,
    sha256: Vec<u8>,
}

pub async fn receive(req: &HttpRequest, payload: web::Payload, state: &AppState) -> Result<Upload, ApiError> {
    let is_multipart = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::UnsupportedMediaType(Text::new(
            "envoyez le fichier en multipart/form-data avec les champs `file` et `import_type`",
            "send the file as multipart/form-data with fields `file` and `import_type`",
        )));
    }
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut spooled: Option<Spooled> = None;
    let mut import_type: Option<String> = None;
    let mut options = ImportOptions::default();
    let mut fields = 0usize;
    let deadline = tokio::time::Instant::now() + UPLOAD_TIME_LIMIT;

    while let Some(mut field) = next(&mut multipart, deadline).await? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(ApiError::bad_request(
                "too_many_fields",
                Text::new("trop de champs dans le formulaire", "too many form fields"),
            ));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if spooled.is_some() {
                return Err(ApiError::bad_request(
                    "several_files",
                    Text::new(
                        "envoyez exactement un champ `file`",
                        "send exactly one `file` field",
                    ),
                ));
            }
            let file_name = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .map(sanitize_file_name)
                .unwrap_or_default();
            let limit = state.config.max_import_file_bytes;
            spooled = Some(spool(&mut field, file_name, limit, deadline).await?);
            continue;
        }
        // Every other field is short text; unknown ones are read under the
        // same cap, then ignored.
        let mut text = Vec::new();
        while let Some(bytes) = next(&mut field, deadline).await? {
            text.extend_from_slice(&bytes);
            if text.len() > MAX_TEXT_FIELD {
                return Err(ApiError::bad_request(
                    "field_too_long",
                    text!("le champ `{name}` est trop long", "field `{name}` is too long"),
                ));
            }
        }
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        match name.as_str() {
            "import_type" => import_type = Some(text),
            "dry_run" => options.dry_run = parse_flag(&name, &text)?,
            "generate_ai" => options.generate_ai = parse_flag(&name, &text)?,
            _ => {}
        }
    }

    let mut spooled = spooled.ok_or_else(|| {
        ApiError::bad_request(
            "missing_file",
            Text::new(
                "le formulaire n’a pas de champ `file`",
                "the form has no `file` field",
            ),
        )
    })?;
    let import_type = import_type
        .as_deref()
        .ok_or_else(|| {
            ApiError::unprocessable(
                "missing_import_type",
                Text::new(
                    "le formulaire n’a pas de champ `import_type`",
                    "the form has no `import_type` field",
                ),
            )
        })?
        .parse::<ImportType>()
        .map_err(|e| ApiError::unprocessable("invalid_import_type", unknown_import_type(&e)))?;
    // Last of the checks, being the dearest: a form refused for a cheaper
    // reason costs clamd nothing.
    if let Some(scanner) = &state.scanner {
        scanner.check(&mut spooled.file, &spooled.file_name).await?;
    }
    let file_id = store(state, &mut spooled).await?;
    Ok(Upload {
        file_id,
        file_name: spooled.file_name,
        size: spooled.size as i64,
        sha256_hex: hex::encode(&spooled.sha256),
        import_type,
        options,
    })
}

/// Streams the file part into a temporary file, hashing it, refusing it as
/// soon as it passes `limit` or its first bytes contradict its extension.
async fn spool(
    field: &mut actix_multipart::Field,
    file_name: String,
    limit: u64,
    deadline: tokio::time::Instant,
) -> Result<Spooled, ApiError> {
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(spool_failed)?;
    let mut out = tokio::io::BufWriter::with_capacity(SPOOL_BUFFER, tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut sniffed = false;
    while let Some(bytes) = next(field, deadline).await? {
        size += bytes.len() as u64;
        if size > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        hasher.update(&bytes);
        if !sniffed {
            let take = (SNIFF_BYTES - head.len()).min(bytes.len());
            head.extend_from_slice(&bytes[..take]);
            if head.len() >= SNIFF_BYTES {
                sniff(&head, &file_name)?;
                sniffed = true;
            }
        }
        out.write_all(&bytes).await.map_err(spool_failed)?;
    }
    if !sniffed {
        sniff(&head, &file_name)?;
    }
    out.flush().await.map_err(spool_failed)?;
    Ok(Spooled {
        file: out.into_inner(),
        file_name,
        size,
        sha256: hasher.finalize().to_vec(),
    })
}

/// Copies the spooled file into chunked storage under a new id. A failure
/// deletes whatever was written, so no half file stays behind.
async fn store(state: &AppState, spooled: &mut Spooled) -> Result<Uuid, ApiError> {
    let file_id = Uuid::now_v7();
    let written = async {
        let mut conn = pool::conn(&state.pool).await?;
        write_chunks(&mut conn, file_id, spooled).await
    }
    .await;
    if written.is_err()
        && let Ok(mut conn) = pool::conn(&state.pool).await
    {
        let _ = files::delete_file(&mut conn, file_id).await;
    }
    written.map(|()| file_id)
}

async fn write_chunks(
    conn: &mut foxflow_storage::AsyncPgConnection,
    file_id: Uuid,
    spooled: &mut Spooled,
) -> Result<(), ApiError> {
    spooled.file.rewind().await.map_err(spool_failed)?;
    let mut buf = vec![0u8; files::CHUNK_BYTES];
    let mut left = spooled.size;
    let mut seq = 0i32;
    loop {
        let len = left.min(files::CHUNK_BYTES as u64) as usize;
        spooled
            .file
            .read_exact(&mut buf[..len])
            .await
            .map_err(spool_failed)?;
        left -= len as u64;
        // The last (or only, maybe empty) chunk carries the file's size and
        // hash, which complete the file in the same write.
        let finish = (left == 0).then_some((spooled.size as i64, spooled.sha256.as_slice()));
        files::write_chunk(conn, file_id, seq, &buf[..len], finish).await?;
        if left == 0 {
            return Ok(());
        }
        seq += 1;
    }
}

/// The temporary file could not be written or read back (a full `/tmp`, in
/// Kubernetes the api-gateway's `tmp` emptyDir): ours to fix, not the client's.
fn spool_failed(e: std::io::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("spooling an upload to a temporary file"))
}

/// [`jobs::create_job`], safe against requests racing with one
/// `Idempotency-Key`: each looks the key up, finds nothing and inserts; the
/// unique index on (owner, key) holds every insert but the first until it
/// commits, then fails them. A loser asks once more, now finds the first job
/// and answers it with `created == false`, so the caller deletes the loser's
/// copy of the file right away, as for any replay.
pub async fn create_job(
    conn: &mut foxflow_storage::AsyncPgConnection,
    new: jobs::NewJob,
    traceparent: Option<String>,
) -> Result<(jobs::ImportJob, bool), StorageError> {
    match jobs::create_job(conn, new.clone(), traceparent.clone()).await {
        Err(e) if new.idempotency_key.is_some() && is_idempotency_race(&e) => {
            jobs::create_job(conn, new, traceparent).await
        }
        other => other,
    }
}

fn is_idempotency_race(e: &StorageError) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        StorageError::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.constraint_name() == Some("import_jobs_idempotency_idx")
    )
}

/// Bytes looked at to tell a CSV from an XLSX or an XLS.
const SNIFF_BYTES: usize = 8192;

/// The extension and the content must agree (docs/spec.md §12): decided on the
/// first bytes, before the rest of the file is stored.
fn sniff(head: &[u8], file_name: &str) -> Result<(), ApiError> {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    foxflow_sheets::detect_format(head, file_name)
        .map(|_| ())
        .map_err(|e| {
            ApiError::UnsupportedMediaType(
                e.message()
                    .prefixed(&format!("`{file_name}` : "), &format!("`{file_name}`: ")),
            )
        })
}

/// `invalid_import_type`'s message: the type given and the four accepted.
pub(crate) fn unknown_import_type(e: &foxflow_domain::job::UnknownImportType) -> Text {
    let given = &e.0;
    text!(
        "type d’import inconnu `{given}` (types acceptés : entreprises, categories, sous_categories ou villes)",
        "unknown import type `{given}` (expected entreprises, categories, sous_categories or villes)"
    )
}

/// The next part, or the next bytes of a part, within the idle and total
/// time limits of an upload.
async fn next<S, T>(stream: &mut S, deadline: tokio::time::Instant) -> Result<Option<T>, ApiError>
where
    S: futures::Stream<Item = Result<T, actix_multipart::MultipartError>> + Unpin,
{
    let wait = UPLOAD_IDLE_LIMIT.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
    match tokio::time::timeout(wait, stream.try_next()).await {
        Ok(item) => item.map_err(bad_multipart),
        Err(_) => Err(ApiError::bad_request(
            "upload_timeout",
            text!(
                "l’envoi était trop lent : aucun octet pendant {idle} s, ou plus de {all} s en tout",
                "the upload was too slow: no bytes for {idle} s, or over {all} s in all",
                idle = UPLOAD_IDLE_LIMIT.as_secs(),
                all = UPLOAD_TIME_LIMIT.as_secs()
            ),
        )),
    }
}

fn bad_multipart(e: actix_multipart::MultipartError) -> ApiError {
    ApiError::bad_request(
        "invalid_multipart",
        text!(
            "le corps multipart est illisible : {e}",
            "the multipart body cannot be read: {e}"
        ),
    )
}

fn parse_flag(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" | "off" => Ok(false),
        "true" | "1" | "yes" | "on" => Ok(true),
        _ => Err(ApiError::unprocessable(
            "invalid_flag",
            text!(
                "`{name}` vaut true ou false, pas `{v}`",
                "`{name}` must be true or false, not `{v}`"
            ),
        )),
    }
}

/// Keeps the last path component and printable characters only: the name is
/// shown to people, never used as a path.
pub fn sanitize_file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "upload".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_never_paths() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("C:\\Users\\x\\villes.csv"), "villes.csv");
        assert_eq!(sanitize_file_name("..\u{0}.csv"), "csv");
        assert_eq!(sanitize_file_name(""), "upload");
    }
}
