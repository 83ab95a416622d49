//! Set-based writes of imported entities.
//!
//! A batch is bound as one array per column and UNNESTed: into a temporary
//! table for catégories, sous-catégories and villes, straight into the merge
//! for entreprises, the large one (`entreprises.rs` says why). Then it is
//! merged in two statements: an `INSERT … ON CONFLICT DO NOTHING` that
//! creates the new keys, and an `UPDATE … WHERE (stored) IS DISTINCT FROM
//! (merged)` that touches only rows whose values change. The database counts
//! the outcomes; rows neither created nor updated are unchanged. A NULL in the
//! batch means "absent or empty in the file": `COALESCE(new, stored)` keeps
//! the stored value (docs/spec.md §4.4). Keys must be unique within one call.

use crate::Result;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

mod categories;
mod entreprises;
mod villes;

pub use categories::{CategorieRow, ParentCache, SousCategorieRow, merge_categories, merge_sous_categories};
pub use entreprises::{EntrepriseRow, link_pages, merge_entreprises, merge_plan, pages_of};
pub use villes::{VilleRow, merge_villes};

/// How many rows of a batch were created and updated; the rest are unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    pub created: i64,
    pub updated: i64,
}

/// The ids a data-modifying statement returned, aggregated into one row.
#[derive(diesel::QueryableByName)]
pub(crate) struct Ids {
    #[diesel(sql_type = diesel::sql_types::Array<BigInt>)]
    pub(crate) ids: Vec<i64>,
}

/// A merge's outcome: the ids it created and the ids it updated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    pub created: Vec<i64>,
    pub updated: Vec<i64>,
}

impl Merged {
    pub fn counts(&self) -> MergeCounts {
        MergeCounts {
            created: self.created.len() as i64,
            updated: self.updated.len() as i64,
        }
    }

    pub fn touched(&self) -> impl Iterator<Item = i64> + '_ {
        self.created.iter().chain(&self.updated).copied()
    }
}

/// The expression choosing a free slug for a new row of `table`: the base
/// slug itself for the first new row that wants it if no row has it yet,
/// otherwise `base-N` with N above every suffix already in use, numbered in
/// file order (`ord`) among the new rows sharing the base. Deterministic and
/// never an error (docs/spec.md §4.2). Expects columns `base` and `rn` in scope.
///
/// Suffixes are compared as `numeric`, not `int`: a file may give any slug,
/// and one stored `plombier-99999999999` must not make every later clash on
/// `plombier` fail its import (issue 16). N is above every stored suffix, so
/// its text is no stored slug's. When `base-N` would pass the column's 120
/// characters (a long base, or a stored suffix of a hundred digits), the base
/// is cut to make room, as `Slug::with_suffix` does.
pub(crate) fn free_slug_sql(table: &str) -> String {
    format!(
        "CASE WHEN rn = 1 AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.slug = base) THEN base
         ELSE (SELECT CASE WHEN length(base) + length(sfx) <= {max} THEN base
                           ELSE rtrim(left(base, {max} - length(sfx)), '-') END || sfx
               FROM (SELECT '-' || (
                   GREATEST(1, (SELECT max(substring(t.slug FROM '-([0-9]+)$')::numeric) FROM {table} t
                                WHERE t.slug LIKE base || '-%' AND t.slug ~ ('^' || base || '-[0-9]+$')))
                   + rn - CASE WHEN EXISTS (SELECT 1 FROM {table} t WHERE t.slug = base) THEN 0 ELSE 1 END
                   )::text AS sfx) AS s)
         END",
        max = foxflow_domain::values::MAX_SLUG_LEN,
    )
}

/// The NAF reference table as (code, libellé) pairs.
pub async fn naf_labels(conn: &mut AsyncPgConnection) -> Result<Vec<(String, String)>> {
    use crate::schema::naf_codes;
    use diesel::QueryDsl;
    Ok(naf_codes::table
        .select((naf_codes::code, naf_codes::libelle))
        .load(conn)
        .await?)
}
