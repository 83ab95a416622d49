//! Which targets a batch covers: given ids checked, what an import touched, or a filter.

use super::status::Validation;
use crate::Result;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::ai_text::TargetType;
use serde::Serialize;
use uuid::Uuid;

/// The table a target type's rows live in.
pub(super) fn table_of(target: TargetType) -> &'static str {
    match target {
        TargetType::Prolocalisation => "prolocalisations",
        TargetType::Categorie => "categories",
        TargetType::SousCategorie => "sous_categories",
        TargetType::Ville => "villes",
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Of `ids`, those that exist, in order.
pub async fn existing_ids(conn: &mut AsyncPgConnection, target: TargetType, ids: &[i64]) -> Result<Vec<i64>> {
    let sql = format!(
        "SELECT id FROM {} WHERE id = ANY($1) ORDER BY id",
        table_of(target)
    );
    Ok(diesel::sql_query(sql)
        .bind::<Array<BigInt>, _>(ids)
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// The targets of type `target` that import `job_id` created or updated,
/// from `import_touched`. Pages are also reached through their entreprise:
/// a touched `entreprise` row stands for all of its pages.
pub async fn touched_ids(conn: &mut AsyncPgConnection, job_id: Uuid, target: TargetType) -> Result<Vec<i64>> {
    let sql = match target {
        TargetType::Prolocalisation => {
            "SELECT p.id FROM import_touched t JOIN prolocalisations p ON p.id = t.target_id
              WHERE t.job_id = $1 AND t.target_type = 'prolocalisation'
             UNION
             SELECT p.id FROM import_touched t JOIN prolocalisations p ON p.entreprise_id = t.target_id
              WHERE t.job_id = $1 AND t.target_type = 'entreprise'
             ORDER BY 1"
                .to_owned()
        }
        other => format!(
            "SELECT x.id FROM import_touched t JOIN {} x ON x.id = t.target_id
              WHERE t.job_id = $1 AND t.target_type = '{}' ORDER BY 1",
            table_of(other),
            other.as_str()
        ),
    };
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(job_id)
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// The filter form of a batch: every target of a type, narrowed down.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFilter {
    /// Pages of one town.
    pub ville_id: Option<i64>,
    /// Pages of one sous-catégorie.
    pub sous_categorie_id: Option<i64>,
    /// Pages or sous-catégories of one catégorie.
    pub categorie_id: Option<i64>,
    /// Pages or towns of one département (`69`, `2A`, `974`).
    pub departement: Option<String>,
    /// Only targets whose texts were never generated.
    #[serde(default)]
    pub never_generated: bool,
}

/// The ids a filter selects, at most `limit` (+1, so the caller can tell
/// "too many" from "exactly the limit").
pub async fn filter_ids(
    conn: &mut AsyncPgConnection,
    target: TargetType,
    filter: &TargetFilter,
    limit: i64,
) -> Result<Vec<i64>> {
    let never = "($5 = false OR NOT EXISTS (SELECT 1 FROM ai_generations g WHERE g.target_type = $6 AND g.target_id = x.id AND g.validation <> $8))";
    let sql = match target {
        TargetType::Prolocalisation => format!(
            "SELECT x.id FROM prolocalisations x
              JOIN sous_categories s ON s.id = x.sous_categorie_id
              JOIN villes v ON v.id = x.ville_id
              WHERE x.is_active
                AND ($1::int8 IS NULL OR x.ville_id = $1)
                AND ($2::int8 IS NULL OR x.sous_categorie_id = $2)
                AND ($3::int8 IS NULL OR s.categorie_id = $3)
                AND ($4::text IS NULL OR v.departement = $4)
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
        TargetType::Ville => format!(
            "SELECT x.id FROM villes x
              WHERE ($1::int8 IS NULL OR x.id = $1)
                AND ($2::int8 IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p WHERE p.ville_id = x.id AND p.sous_categorie_id = $2))
                AND ($3::int8 IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p JOIN sous_categories s ON s.id = p.sous_categorie_id WHERE p.ville_id = x.id AND s.categorie_id = $3))
                AND ($4::text IS NULL OR x.departement = $4)
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
        TargetType::SousCategorie => format!(
            "SELECT x.id FROM sous_categories x
              WHERE ($1::int8 IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p WHERE p.sous_categorie_id = x.id AND p.ville_id = $1))
                AND ($2::int8 IS NULL OR x.id = $2)
                AND ($3::int8 IS NULL OR x.categorie_id = $3)
                AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p JOIN villes v ON v.id = p.ville_id WHERE p.sous_categorie_id = x.id AND v.departement = $4))
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
        TargetType::Categorie => format!(
            "SELECT x.id FROM categories x
              WHERE ($1::int8 IS NULL OR EXISTS (SELECT 1 FROM sous_categories s JOIN prolocalisations p ON p.sous_categorie_id = s.id WHERE s.categorie_id = x.id AND p.ville_id = $1))
                AND ($2::int8 IS NULL OR EXISTS (SELECT 1 FROM sous_categories s WHERE s.categorie_id = x.id AND s.id = $2))
                AND ($3::int8 IS NULL OR x.id = $3)
                AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM sous_categories s JOIN prolocalisations p ON p.sous_categorie_id = s.id JOIN villes v ON v.id = p.ville_id WHERE s.categorie_id = x.id AND v.departement = $4))
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
    };
    Ok(diesel::sql_query(sql)
        .bind::<Nullable<BigInt>, _>(filter.ville_id)
        .bind::<Nullable<BigInt>, _>(filter.sous_categorie_id)
        .bind::<Nullable<BigInt>, _>(filter.categorie_id)
        .bind::<Nullable<Text>, _>(filter.departement.as_deref())
        .bind::<Bool, _>(filter.never_generated)
        .bind::<Text, _>(target.as_str())
        .bind::<BigInt, _>(limit.saturating_add(1))
        .bind::<Text, _>(Validation::Rejected)
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_type_has_its_table() {
        let tables: Vec<_> = TargetType::ALL.into_iter().map(table_of).collect();
        assert_eq!(
            tables,
            ["prolocalisations", "categories", "sous_categories", "villes"]
        );
    }

    #[test]
    fn a_filter_names_only_known_fields() {
        let f: TargetFilter = serde_json::from_value(serde_json::json!({"departement": "2A"})).unwrap();
        assert_eq!(f.departement.as_deref(), Some("2A"));
        assert!(!f.never_generated, "defaults to every target");
        assert!(serde_json::from_value::<TargetFilter>(serde_json::json!({"town": 1})).is_err());
    }
}
