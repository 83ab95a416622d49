//! Hand-written statements that stay prepared on their connection.
//!
//! diesel-async keeps every statement its query builder writes in the connection's statement
//! cache: the first execution parses it (one round trip), the next ones only bind and execute
//! it (one round trip, no parse, and a cached plan). A `diesel::sql_query` is never cached,
//! because its text may be built at run time: every execution parses it again, two round trips
//! and a plan each time. The AI path's statements are CTEs and `UPDATE … FROM` that the query
//! builder cannot write, and their text comes from a small fixed set (a `const`, or one per
//! target type and kind), so [`prepared`] marks them cacheable; diesel then keys them by their
//! text and bind types. Never wrap a statement whose text grows with its input (an `IN` list,
//! a value formatted in): each distinct text would stay prepared for the connection's life.
//!
//! Behind a transaction-mode pooler the cached statements go through [`crate::unnamed`] like
//! the query builder's: re-parsed as the unnamed statement in each batch.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A raw statement (a `diesel::sql_query` with its binds) that diesel-async may keep
/// prepared; see the module documentation for when that is safe.
#[derive(Debug, Clone)]
#[must_use = "a statement does nothing until it is run"]
pub struct Prepared<Q>(Q);

/// Marks `query`, whose text is one of a small fixed set, as cacheable.
pub fn prepared<Q>(query: Q) -> Prepared<Q> {
    Prepared(query)
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    // `sql_query` says "unsafe to cache" because its text may be unbounded; the caller of
    // `prepared` vouches that it is not.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

// No static id: the cache then keys the statement by its SQL text and bind types, so two
// different texts never share an entry.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();

    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}
