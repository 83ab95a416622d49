//! French postal codes.

use super::{ValueError, codes, string_value};
use crate::normalize::excel_digits;
use crate::text::Text;

/// A French postal code: 5 digits, `01000`–`95999` in metropolitan France
/// and `97xxx`/`98xxx` overseas (and Monaco's `98000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodePostal(String);

string_value!(CodePostal);

impl CodePostal {
    /// Restores the leading zero Excel strips from codes stored as numbers
    /// (`1500` → `01500`, also `1500.0`); spaces between digits are ignored.
    /// Codes starting `00`, `96` or `99` are refused: none exists (`99xxx`
    /// is INSEE's "abroad" marker, not an address).
    pub fn parse(raw: &str) -> Result<CodePostal, ValueError> {
        let invalid = || {
            ValueError::new(
                codes::INVALID_POSTAL_CODE,
                Text::new(
                    "un code postal compte 5 chiffres, par exemple 75001 ou 01500 (97xxx/98xxx outre-mer)",
                    "a postal code is 5 digits, e.g. 75001 or 01500 (97xxx/98xxx overseas)",
                ),
            )
        };
        let digits = excel_digits(raw).ok_or_else(invalid)?.value;
        let code = match digits.len() {
            4 => format!("0{digits}"),
            5 => digits,
            _ => return Err(invalid()),
        };
        if code.starts_with("00") || code.starts_with("96") || code.starts_with("99") {
            return Err(invalid());
        }
        Ok(CodePostal(code))
    }

    /// The département the code belongs to, as stored in `villes.departement`:
    /// two digits, `2A`/`2B` for Corsica (`200xx`–`201xx` is Corse-du-Sud,
    /// the rest of `20xxx` Haute-Corse) and three digits overseas (`974`).
    /// A few towns have a code from a neighbouring département; an explicit
    /// `departement` column overrides this.
    pub fn departement(&self) -> &str {
        let code = self.0.as_str();
        if code.starts_with("97") || code.starts_with("98") {
            &code[..3]
        } else if code.starts_with("20") {
            if code < "20200" { "2A" } else { "2B" }
        } else {
            &code[..2]
        }
    }

    /// Overseas (`97xxx`, `98xxx`).
    pub fn is_overseas(&self) -> bool {
        self.0.starts_with("97") || self.0.starts_with("98")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn postal_code_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("75001", Ok("75001")),
            ("01500", Ok("01500")),
            ("1500", Ok("01500")),
            ("1500.0", Ok("01500")),
            (" 1500 ", Ok("01500")),
            ("75 001", Ok("75001")),
            ("97411", Ok("97411")),
            ("98800", Ok("98800")),
            ("98000", Ok("98000")),
            ("20000", Ok("20000")),
            ("123456", Err(codes::INVALID_POSTAL_CODE)),
            ("150", Err(codes::INVALID_POSTAL_CODE)),
            ("00123", Err(codes::INVALID_POSTAL_CODE)),
            ("123", Err(codes::INVALID_POSTAL_CODE)),
            ("99999", Err(codes::INVALID_POSTAL_CODE)),
            ("96000", Err(codes::INVALID_POSTAL_CODE)),
            ("750O1", Err(codes::INVALID_POSTAL_CODE)),
            ("1500.5", Err(codes::INVALID_POSTAL_CODE)),
            ("", Err(codes::INVALID_POSTAL_CODE)),
        ];
        for (raw, want) in cases {
            let got = CodePostal::parse(raw)
                .map(|c| c.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
    }

    #[test]
    fn departement_cases() {
        let cases = [
            ("01500", "01"),
            ("75001", "75"),
            ("20000", "2A"),
            ("20167", "2A"),
            ("20199", "2A"),
            ("20200", "2B"),
            ("20600", "2B"),
            ("97411", "974"),
            ("97100", "971"),
            ("98800", "988"),
        ];
        for (cp, dep) in cases {
            assert_eq!(CodePostal::parse(cp).unwrap().departement(), dep, "{cp}");
        }
        assert!(CodePostal::parse("97411").unwrap().is_overseas());
        assert!(!CodePostal::parse("01500").unwrap().is_overseas());
    }
}
