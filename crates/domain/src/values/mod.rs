//! Domain values (docs/spec.md §4.3): each is a newtype with a private field, built
//! only through `parse` (or `TryFrom`/`FromStr`, which call it), so a value
//! that exists is a value that is valid. Nothing downstream re-checks a raw
//! `String`. Every type serialises as its canonical string and deserialises
//! through `parse`, which is idempotent on that canonical string.

mod email;
mod naf;
mod phone;
mod postal;
mod siren;
mod slug;
mod url;

pub use email::{Email, MAX_EMAIL_LEN};
pub use naf::NafCode;
pub use phone::Phone;
pub use postal::CodePostal;
pub use siren::{Siren, Siret};
pub use slug::{MAX_SLUG_LEN, Slug};
pub use url::{MAX_URL_LEN, WebUrl};

use crate::text::Text;

/// Why a value was refused. `code` is stable (the import report, the API and
/// tests match on it); `message` is for the operator and says what was
/// expected, in French (the default) and English (docs/api.md "Languages").
/// Messages do not repeat the value unless they need to: the report shows it
/// next to them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub code: &'static str,
    pub message: Text,
}

impl ValueError {
    pub fn new(code: &'static str, message: Text) -> Self {
        ValueError { code, message }
    }

    /// `what` names the value in both languages (`une adresse e-mail`,
    /// `an e-mail address`).
    pub(crate) fn too_long(what: Text, len: usize, max: usize) -> Self {
        let Text { fr, en } = what;
        ValueError::new(
            codes::TOO_LONG,
            crate::text!(
                "{fr} compte {len} caractères ; {max} au plus sont acceptés (une valeur n’est jamais tronquée)",
                "{en} is {len} characters long; at most {max} are allowed (values are never truncated)"
            ),
        )
    }
}

/// The stable error codes of this crate, for callers that match on them.
pub mod codes {
    pub const REQUIRED: &str = "required";
    pub const TOO_LONG: &str = "too_long";
    pub const INVALID_SIREN: &str = "invalid_siren";
    pub const SIREN_CHECKSUM: &str = "siren_checksum";
    pub const INVALID_SIRET: &str = "invalid_siret";
    pub const SIRET_CHECKSUM: &str = "siret_checksum";
    pub const SIRET_SIREN_MISMATCH: &str = "siret_siren_mismatch";
    pub const INVALID_NAF: &str = "invalid_naf";
    pub const UNKNOWN_NAF: &str = "unknown_naf";
    pub const INVALID_POSTAL_CODE: &str = "invalid_postal_code";
    pub const POSTAL_CODE_MISMATCH: &str = "postal_code_mismatch";
    pub const INVALID_DEPARTEMENT: &str = "invalid_departement";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const INVALID_URL: &str = "invalid_url";
    pub const INVALID_PHONE: &str = "invalid_phone";
    pub const INVALID_SLUG: &str = "invalid_slug";
    pub const INVALID_BOOLEAN: &str = "invalid_boolean";
    pub const INVALID_NUMBER: &str = "invalid_number";
    pub const OUT_OF_RANGE: &str = "out_of_range";
    /// Warning: Excel wrote the number in scientific notation with fewer
    /// significant digits than the result has, so trailing digits may be lost.
    pub const EXCEL_PRECISION: &str = "excel_precision";
    /// Warning: a slug longer than the column was cut at a word boundary.
    pub const SLUG_TRUNCATED: &str = "slug_truncated";
    /// Sirene: `etatAdministratifEtablissement` is neither `A` nor `F`.
    pub const INVALID_ETAT_ADMINISTRATIF: &str = "invalid_etat_administratif";
    /// Warning (Sirene): a NAF code written in an older nomenclature
    /// (NAFRev1, NAP…) is not imported.
    pub const NAF_OTHER_NOMENCLATURE: &str = "naf_other_nomenclature";
    /// File level: a required column is missing.
    pub const MISSING_COLUMN: &str = "missing_column";
}

/// The accessors, conversions and serde impls every string-backed value
/// shares. Serde goes through `parse` so a value read back from JSON is
/// checked like one read from a spreadsheet.
macro_rules! string_value {
    ($t:ident) => {
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::values::ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $t {
            type Error = $crate::values::ValueError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $t {
            type Error = $crate::values::ValueError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_value;

/// A plausible DNS host name, shared by e-mail domains and URLs: at least two
/// labels of letters, digits and inner hyphens, ending in an alphabetic
/// top-level domain (or an IDN `xn--` one). IP literals and `localhost` are
/// refused: no business publishes those as its site or mail domain.
pub(crate) fn is_plausible_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().count() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld = labels[labels.len() - 1];
    let tld_ok = (tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic))
        || (tld.starts_with("xn--") && label_ok(tld));
    labels.iter().all(|l| label_ok(l)) && tld_ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "example.fr",
            "www.mairie-lyon.fr",
            "a.b.co",
            "café.fr",
            "x.xn--p1ai",
        ] {
            assert!(is_plausible_host(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "192.168.0.1",
            "-a.fr",
            "a-.fr",
            "a..fr",
            "a.f",
            "a.fr1",
            "a_b.fr",
        ] {
            assert!(!is_plausible_host(bad), "{bad}");
        }
    }

    /// Every value serialises as its canonical string and reads back equal.
    #[test]
    fn serde_round_trip() {
        let siren = Siren::parse("732829320").unwrap();
        let json = serde_json::to_string(&siren).unwrap();
        assert_eq!(json, "\"732829320\"");
        assert_eq!(serde_json::from_str::<Siren>(&json).unwrap(), siren);
        assert!(serde_json::from_str::<Siren>("\"732829321\"").is_err());
        let cp: CodePostal = serde_json::from_str("\"1500\"").unwrap();
        assert_eq!(serde_json::to_string(&cp).unwrap(), "\"01500\"");
    }

    /// `parse` is idempotent on each type's canonical form, which is what
    /// makes deserialising stored values safe.
    #[test]
    fn parse_is_idempotent() {
        fn check<T, F>(inputs: &[&str], parse: F)
        where
            T: AsRef<str> + PartialEq + std::fmt::Debug,
            F: Fn(&str) -> Result<T, ValueError>,
        {
            for raw in inputs {
                let v = parse(raw).unwrap();
                assert_eq!(parse(v.as_ref()).unwrap(), v, "{raw}");
            }
        }
        check(&["732 829 320", "7.3282932E8"], Siren::parse);
        check(&["732 829 320 00074"], Siret::parse);
        check(&["4322a", "43 22A"], NafCode::parse);
        check(&["1500", "97411"], CodePostal::parse);
        check(&["Contact@Example.FR"], Email::parse);
        check(&["www.Example.fr/Page"], WebUrl::parse);
        check(
            &["01 23 45 67 89", "0262 12 34 56", "+32 2 123 45 67"],
            Phone::parse,
        );
        check(&["Artisanat d’art"], Slug::parse);
    }
}
