//! Storage's own status enums as PostgreSQL `text`, spelled once: each enum has `ALL` and
//! `as_str()`, derives `AsExpression` / `FromSqlRow` with `sql_type = Text`, and gets the rest
//! from [`text_enum!`]. (The domain's job enums get the same from `foxflow-domain`'s `sql`
//! module, behind its `diesel` feature.)

/// A text value this build does not know: a row written by a newer build, or by hand. Reading
/// it fails the query instead of turning it into some default status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// `Display`, `FromStr` (from `ALL`), `ToSql<Text, Pg>` and `FromSql<Text, Pg>` for an enum
/// with `ALL` and `as_str()`. `$what` names the column in errors.
macro_rules! text_enum {
    ($t:ty, $what:literal) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::sql_text::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::sql_text::UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                    })
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $t {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $t {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                Ok(std::str::from_utf8(value.as_bytes())?.parse::<$t>()?)
            }
        }
    };
}

pub(crate) use text_enum;
