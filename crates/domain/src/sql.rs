//! The job enums as PostgreSQL `text` (`import_jobs.status`, `import_jobs.import_type`), for
//! diesel: written with their `as_str()`, read back with their `FromStr`, so each spelling lives
//! once, in `job.rs`.
//!
//! Written by hand beside the enums rather than derived on them: `job.rs` stays free of
//! diesel, and only a crate that turns the `diesel` feature on (foxflow-storage) compiles this.
//! A value this build does not know is a deserialization error, never a default: a job read as
//! `error` when it is not would be retried, announced or reported wrongly.

use crate::job::{ImportType, JobStatus};
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use std::str::FromStr;

/// Parses a text column's bytes; the error names the value, for the log line that reports it.
fn from_text<T>(bytes: &[u8]) -> deserialize::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(std::str::from_utf8(bytes)?.parse::<T>()?)
}

/// Everything diesel asks of a type used as a `text` value: in `Queryable` /
/// `QueryableByName` fields (`FromSql` + `Queryable`), in `.eq()`, `.eq_any()` and `.set()`
/// (`AsExpression`, bound as the `&'static str` it is) and in `sql_query(…).bind::<Text, _>()`
/// (`ToSql`).
macro_rules! text_enum {
    ($t:ty) => {
        impl ToSql<Text, Pg> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $t {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                from_text(value.as_bytes())
            }
        }

        impl Queryable<Text, Pg> for $t {
            type Row = Self;

            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }

        impl AsExpression<Text> for $t {
            type Expression = <&'static str as AsExpression<Text>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<Text>::as_expression(self.as_str())
            }
        }

        impl AsExpression<Text> for &$t {
            type Expression = <&'static str as AsExpression<Text>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<Text>::as_expression(self.as_str())
            }
        }
    };
}

text_enum!(JobStatus);
text_enum!(ImportType);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_itself() {
        for s in JobStatus::ALL {
            assert_eq!(from_text::<JobStatus>(s.as_str().as_bytes()).unwrap(), s);
        }
        for t in ImportType::ALL {
            assert_eq!(from_text::<ImportType>(t.as_str().as_bytes()).unwrap(), t);
        }
    }

    #[test]
    fn an_unknown_value_is_an_error_not_a_default() {
        let err = from_text::<JobStatus>(b"archived").unwrap_err();
        assert!(err.to_string().contains("archived"), "{err}");
        assert!(from_text::<ImportType>(b"companies").is_err());
        assert!(from_text::<JobStatus>(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn binds_the_spelling_of_as_str() {
        let q = diesel::select(AsExpression::<Text>::as_expression(JobStatus::Partial));
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(sql.contains(r#"binds: ["partial"]"#), "{sql}");
        let q = diesel::select(AsExpression::<Text>::as_expression(&ImportType::SousCategories));
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(sql.contains(r#"binds: ["sous_categories"]"#), "{sql}");
    }
}
