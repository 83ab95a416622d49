//! Generated texts: what a provider writes from (a target's facts and its current text),
//! and what it wrote, stored with its provenance in `ai_generations` and, when the validator
//! accepted it, in the target's column.

use super::batches::complete_batch_if_done;
use super::status::{TaskStatus, Validation};
use super::targets::table_of;
use super::tasks::TaskRow;
use crate::prepared::prepared;
use crate::{Result, StorageError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::ai_text::{
    CategorieFacts, Draft, Facts, FaqEntry, PageFacts, SousCategorieFacts, TargetType, TextKind, VilleFacts,
};
use serde::Serialize;

/// A target's facts and its current text of one kind.
#[derive(Debug, Clone)]
pub struct Subject {
    pub facts: Facts,
    pub current: Option<Draft>,
    /// When the current text was generated, if known.
    pub generated_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct PageRow {
    #[diesel(sql_type = Text)]
    entreprise: String,
    #[diesel(sql_type = Nullable<Text>)]
    nom_commercial: Option<String>,
    #[diesel(sql_type = Text)]
    siren: String,
    #[diesel(sql_type = Nullable<Text>)]
    adresse: Option<String>,
    #[diesel(sql_type = Text)]
    activite: String,
    #[diesel(sql_type = Nullable<Text>)]
    categorie: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    naf_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    naf_libelle: Option<String>,
    #[diesel(sql_type = Text)]
    ville: String,
    #[diesel(sql_type = Text)]
    code_postal: String,
    #[diesel(sql_type = Nullable<Text>)]
    departement: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    region: Option<String>,
    #[diesel(sql_type = Integer)]
    nb_avis: i32,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    note_moyenne: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    current_text: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    current_faq: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    generated_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct DescribedRow {
    #[diesel(sql_type = Text)]
    nom: String,
    #[diesel(sql_type = Nullable<Text>)]
    parent: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    mots_cles: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    names: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    code_postal: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    departement: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    region: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    population: Option<i64>,
    #[diesel(sql_type = BigInt)]
    nb_pages: i64,
    #[diesel(sql_type = Nullable<Text>)]
    current_text: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    generated_at: Option<DateTime<Utc>>,
}

/// The last accepted generation of this kind for this target (`$2` the kind, `$3` the
/// target type, `$4` the rejected validation).
const LAST_GENERATED: &str = "(SELECT max(g.created_at) FROM ai_generations g
    WHERE g.target_type = $3 AND g.target_id = x.id AND g.kind = $2 AND g.validation <> $4)";

/// The text in place, as a draft. A FAQ stored in another shape is kept as
/// text: it fails the validator, so the policy regenerates it.
fn current_draft(kind: TextKind, faq: Option<serde_json::Value>, text: Option<String>) -> Option<Draft> {
    match (kind, faq, text) {
        (TextKind::Faq, Some(json), _) => Some(
            serde_json::from_value::<Vec<FaqEntry>>(json.clone())
                .map(Draft::Faq)
                .unwrap_or_else(|_| Draft::Text(json.to_string())),
        ),
        (_, _, Some(text)) => Some(Draft::Text(text)),
        _ => None,
    }
}

/// A subject's row by `sql`, whose binds are the target's id ($1), the
/// kind ($2), the target type ($3) and the validation that does not count
/// as generated ($4); `sql` is one of a bounded set, so it stays prepared.
async fn subject_row<R>(
    conn: &mut AsyncPgConnection,
    sql: String,
    target: TargetType,
    id: i64,
    kind: TextKind,
) -> Result<Option<R>>
where
    R: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    Ok(prepared(
        diesel::sql_query(sql)
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(kind.as_str())
            .bind::<Text, _>(target.as_str())
            .bind::<Text, _>(Validation::Rejected),
    )
    .get_result(conn)
    .await
    .optional()?)
}

/// Loads what a provider writes from, and the text in place; `None` when
/// the target no longer exists.
pub async fn load_subject(
    conn: &mut AsyncPgConnection,
    target: TargetType,
    id: i64,
    kind: TextKind,
) -> Result<Option<Subject>> {
    let column = kind.column();
    if target == TargetType::Prolocalisation {
        let (text_col, faq_col) = if kind == TextKind::Faq {
            ("NULL::text".to_owned(), "x.faq".to_owned())
        } else {
            (format!("x.{column}::text"), "NULL::jsonb".to_owned())
        };
        let sql = format!(
            "SELECT e.nom::text AS entreprise, e.nom_commercial::text, e.siren::text, e.adresse::text,
                    s.nom::text AS activite, c.nom::text AS categorie, e.naf_code, e.naf_libelle,
                    v.nom::text AS ville, COALESCE(e.code_postal, v.code_postal_principal)::text AS code_postal,
                    v.departement::text, v.region::text, x.nb_avis, x.note_moyenne::float8 AS note_moyenne,
                    {text_col} AS current_text, {faq_col} AS current_faq,
                    COALESCE({LAST_GENERATED}, x.date_derniere_generation_ia) AS generated_at
               FROM prolocalisations x
               JOIN entreprises e ON e.id = x.entreprise_id
               JOIN sous_categories s ON s.id = x.sous_categorie_id
               JOIN categories c ON c.id = s.categorie_id
               JOIN villes v ON v.id = x.ville_id
              WHERE x.id = $1"
        );
        // One text per kind: a bounded set, kept prepared.
        let row: Option<PageRow> = subject_row(conn, sql, target, id, kind).await?;
        return Ok(row.map(|r| {
            let current = current_draft(kind, r.current_faq, r.current_text);
            Subject {
                facts: Facts::Prolocalisation(PageFacts {
                    entreprise: r.entreprise,
                    nom_commercial: r.nom_commercial,
                    siren: r.siren,
                    adresse: r.adresse,
                    activite: r.activite,
                    categorie: r.categorie,
                    naf_code: r.naf_code,
                    naf_libelle: r.naf_libelle,
                    ville: r.ville,
                    code_postal: r.code_postal,
                    departement: r.departement,
                    region: r.region,
                    nb_avis: r.nb_avis,
                    note_moyenne: r.note_moyenne,
                }),
                current,
                generated_at: r.generated_at,
            }
        }));
    }
    let select = match target {
        TargetType::Categorie => "SELECT x.nom::text AS nom, NULL::text AS parent, x.description, NULL::text AS mots_cles,
                    ARRAY(SELECT s.nom::text FROM sous_categories s WHERE s.categorie_id = x.id ORDER BY s.ordre, s.nom LIMIT 6) AS names,
                    NULL::text AS code_postal, NULL::text AS departement, NULL::text AS region,
                    NULL::int8 AS population, 0::int8 AS nb_pages
               FROM categories x",
        TargetType::SousCategorie => "SELECT x.nom::text AS nom, c.nom::text AS parent, x.description, x.mots_cles,
                    ARRAY(SELECT n.libelle FROM naf_sous_categories ns JOIN naf_codes n ON n.code = ns.naf_code
                           WHERE ns.sous_categorie_id = x.id ORDER BY n.code LIMIT 4) AS names,
                    NULL::text AS code_postal, NULL::text AS departement, NULL::text AS region,
                    NULL::int8 AS population, 0::int8 AS nb_pages
               FROM sous_categories x JOIN categories c ON c.id = x.categorie_id",
        TargetType::Ville => "SELECT x.nom::text AS nom, NULL::text AS parent, NULL::text AS description, NULL::text AS mots_cles,
                    ARRAY[]::text[] AS names, x.code_postal_principal::text AS code_postal,
                    x.departement::text, x.region::text, x.population,
                    (SELECT count(*) FROM prolocalisations p WHERE p.ville_id = x.id AND p.is_active) AS nb_pages
               FROM villes x",
        TargetType::Prolocalisation => unreachable!("handled above"),
    };
    let sql = format!(
        "SELECT q.*, x.{column}::text AS current_text, {LAST_GENERATED} AS generated_at
           FROM ({select} WHERE x.id = $1) q, {} x WHERE x.id = $1",
        table_of(target)
    );
    // One text per target type and kind: a bounded set, kept prepared.
    let row: Option<DescribedRow> = subject_row(conn, sql, target, id, kind).await?;
    Ok(row.map(|r| {
        let facts = match target {
            TargetType::Categorie => Facts::Categorie(CategorieFacts {
                nom: r.nom,
                description: r.description,
                sous_categories: r.names,
            }),
            TargetType::SousCategorie => Facts::SousCategorie(SousCategorieFacts {
                nom: r.nom,
                categorie: r.parent.unwrap_or_default(),
                description: r.description,
                mots_cles: r.mots_cles,
                naf_libelles: r.names,
            }),
            _ => Facts::Ville(VilleFacts {
                nom: r.nom,
                code_postal: r.code_postal.unwrap_or_default(),
                departement: r.departement,
                region: r.region,
                population: r.population,
                nb_pages: r.nb_pages,
            }),
        };
        Subject {
            facts,
            current: r.current_text.map(Draft::Text),
            generated_at: r.generated_at,
        }
    }))
}

/// One answer of a provider, with its provenance, for `ai_generations`.
#[derive(Debug, Clone)]
pub struct GenerationRecord {
    pub task: TaskRow,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub tokens_in: Option<i32>,
    pub tokens_out: Option<i32>,
    pub latency_ms: i32,
    /// What the validator made of the draft; only a rejected one leaves the target as it was.
    pub validation: Validation,
    /// What the validator found (fixed rules, or the reasons for rejection).
    pub notes: Option<String>,
    /// The text as checked (after the repair pass when there was one).
    pub draft: Draft,
    /// Why it was generated (`missing`, `forced`, …), for the task.
    pub reason: String,
}

/// How the task of a generation ends: `succeeded` with an accepted text,
/// `failed` with the validator's reasons otherwise.
fn task_end(validation: Validation, notes: Option<&str>) -> (TaskStatus, Option<String>) {
    if validation.is_accepted() {
        (TaskStatus::Succeeded, None)
    } else {
        (
            TaskStatus::Failed,
            Some(format!(
                "the text failed validation: {}",
                notes.unwrap_or("no detail")
            )),
        )
    }
}

#[derive(QueryableByName)]
struct Stored {
    /// The task was open and is now final, with its history row (and text).
    #[diesel(sql_type = Bool)]
    stored: bool,
    /// The task was open when the statement began.
    #[diesel(sql_type = Bool)]
    was_open: bool,
    /// An accepted text's target row exists (and is locked); false for a rejected text.
    #[diesel(sql_type = Bool)]
    target_found: bool,
}

/// The store as one statement, for one target table and text column (`dated` adds the
/// page's `date_derniere_generation_ia`). `target` locks the row the text goes to before
/// anything is written, so it cannot vanish between the task's ending and the text: an
/// accepted text is written with its task and history row, or (its target gone) nothing
/// is. `$13` says whether the text was accepted; a rejected one locks and writes no target.
/// Data-modifying CTEs run to completion whether or not the final `SELECT` reads them.
fn store_sql(table: &str, column: &str, dated: &str) -> String {
    format!(
        "WITH target AS (
             SELECT id FROM {table} WHERE id = $3 AND $13 FOR UPDATE
         ), task AS (
             UPDATE ai_tasks SET status = $14, last_error = $15, reason = $16, completed_at = now()
              WHERE id = $1 AND status = ANY($17) AND (NOT $13 OR EXISTS (SELECT 1 FROM target))
             RETURNING id
         ), generation AS (
             INSERT INTO ai_generations (task_id, target_type, target_id, kind, content, provider, model,
                    prompt_version, tokens_in, tokens_out, latency_ms, validation, validation_notes)
             SELECT task.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $18 FROM task
         ), written AS (
             UPDATE {table} x SET {column} = $19, updated_at = now(){dated}
               FROM task, target WHERE x.id = target.id
         )
         SELECT EXISTS (SELECT 1 FROM task) AS stored,
                EXISTS (SELECT 1 FROM ai_tasks WHERE id = $1 AND status = ANY($17)) AS was_open,
                EXISTS (SELECT 1 FROM target) AS target_found"
    )
}

/// Stores one answer: its history row always; for an accepted text also the
/// target's column (and the page's `date_derniere_generation_ia`) and the
/// task `succeeded`; for a rejected one the task `failed` with the reasons.
/// One statement, so the task's final status and its effect go together.
/// Returns false (and writes nothing) when the task was already final;
/// `NotFound` (and writes nothing) when an accepted text's target is gone.
pub async fn store_generation(conn: &mut AsyncPgConnection, rec: &GenerationRecord) -> Result<bool> {
    let accepted = rec.validation.is_accepted();
    let (status, error) = task_end(rec.validation, rec.notes.as_deref());
    let dated = if rec.task.target == TargetType::Prolocalisation {
        ", date_derniere_generation_ia = now()"
    } else {
        ""
    };
    // One text per target type and kind: a bounded set, kept prepared.
    let sql = store_sql(table_of(rec.task.target), rec.task.kind.column(), dated);
    let content = rec.draft.to_content();
    let statement = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(rec.task.id)
        .bind::<Text, _>(rec.task.target.as_str())
        .bind::<BigInt, _>(rec.task.target_id)
        .bind::<Text, _>(rec.task.kind.as_str())
        .bind::<Text, _>(content)
        .bind::<Text, _>(&rec.provider)
        .bind::<Text, _>(&rec.model)
        .bind::<Text, _>(&rec.prompt_version)
        .bind::<Nullable<Integer>, _>(rec.tokens_in)
        .bind::<Nullable<Integer>, _>(rec.tokens_out)
        .bind::<Integer, _>(rec.latency_ms)
        .bind::<Text, _>(rec.validation)
        .bind::<Bool, _>(accepted)
        .bind::<Text, _>(status)
        .bind::<Nullable<Text>, _>(error)
        .bind::<Text, _>(&rec.reason)
        .bind::<Array<Text>, _>(&TaskStatus::OPEN[..])
        .bind::<Nullable<Text>, _>(rec.notes.as_deref());
    let outcome: Stored = match &rec.draft {
        Draft::Faq(entries) => {
            let faq = serde_json::to_value(entries).expect("FAQ entries always serialise");
            prepared(statement.bind::<Jsonb, _>(faq)).get_result(conn).await?
        }
        Draft::Text(text) => prepared(statement.bind::<Text, _>(text)).get_result(conn).await?,
    };
    if !outcome.stored {
        // Open but not stored: an accepted text's target is gone. (Not stored with the
        // target there: another claim ended the task meanwhile.)
        return if outcome.was_open && accepted && !outcome.target_found {
            Err(StorageError::NotFound)
        } else {
            Ok(false)
        };
    }
    complete_batch_if_done(conn, rec.task.batch_id).await?;
    Ok(true)
}

/// The latest provenance of each kind for one target, newest first.
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct Provenance {
    pub kind: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub tokens_in: Option<i32>,
    pub tokens_out: Option<i32>,
    pub latency_ms: i32,
    pub validation: Validation,
    pub validation_notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn latest_provenance(
    conn: &mut AsyncPgConnection,
    target: TargetType,
    id: i64,
) -> Result<Vec<Provenance>> {
    use crate::schema::ai_generations as g;
    Ok(g::table
        .filter(g::target_type.eq(target.as_str()))
        .filter(g::target_id.eq(id))
        .filter(g::validation.ne(Validation::Rejected))
        .distinct_on(g::kind)
        .order((g::kind.asc(), g::created_at.desc()))
        .select((
            g::kind,
            g::provider,
            g::model,
            g::prompt_version,
            g::tokens_in,
            g::tokens_out,
            g::latency_ms,
            g::validation,
            g::validation_notes,
            g::created_at,
        ))
        .load(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_faq_is_a_faq_draft_unless_its_shape_is_wrong() {
        let faq = serde_json::json!([{"question": "Horaires ?", "reponse": "De 9 h à 18 h."}]);
        assert!(matches!(
            current_draft(TextKind::Faq, Some(faq), None),
            Some(Draft::Faq(entries)) if entries.len() == 1
        ));
        // Kept as text, so the validator rejects it and the policy regenerates it.
        let odd = serde_json::json!({"q": "?"});
        assert_eq!(
            current_draft(TextKind::Faq, Some(odd.clone()), None),
            Some(Draft::Text(odd.to_string()))
        );
        assert_eq!(current_draft(TextKind::Faq, None, None), None);
        assert_eq!(
            current_draft(TextKind::Description, None, Some("Texte.".into())),
            Some(Draft::Text("Texte.".into()))
        );
    }

    #[test]
    fn a_rejected_text_fails_its_task_with_the_reasons() {
        assert_eq!(task_end(Validation::Valid, None), (TaskStatus::Succeeded, None));
        assert_eq!(
            task_end(Validation::Repaired, Some("fixed: length")),
            (TaskStatus::Succeeded, None)
        );
        assert_eq!(
            task_end(Validation::Rejected, Some("too short")),
            (
                TaskStatus::Failed,
                Some("the text failed validation: too short".to_owned())
            )
        );
        assert_eq!(
            task_end(Validation::Rejected, None).1.as_deref(),
            Some("the text failed validation: no detail")
        );
    }
}
