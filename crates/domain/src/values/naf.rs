//! NAF rév. 2 sous-classe codes (INSEE's activity nomenclature, "code APE").

use super::{ValueError, codes, string_value};
use crate::text::Text;

/// A NAF rév. 2 sous-classe in its canonical `NN.NNX` form, e.g. `43.22A`.
/// This type checks the shape only; whether the code exists is a question
/// for the reference table (`records::ReferenceData`), which the parser of
/// a row asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NafCode(String);

string_value!(NafCode);

impl NafCode {
    /// Accepts the forms found in exports: `43.22A`, `4322a`, `43 22A`,
    /// `43.22.A`, `43-22-A`, any case.
    pub fn parse(raw: &str) -> Result<NafCode, ValueError> {
        let compact: Vec<char> = raw
            .chars()
            .filter(|c| !(c.is_whitespace() || matches!(c, '.' | '-' | '_')))
            .collect();
        match compact.as_slice() {
            [a, b, c, d, l] if [a, b, c, d].iter().all(|x| x.is_ascii_digit()) && l.is_ascii_alphabetic() => {
                Ok(NafCode(format!("{a}{b}.{c}{d}{}", l.to_ascii_uppercase())))
            }
            _ => Err(ValueError::new(
                codes::INVALID_NAF,
                Text::new(
                    "un code NAF compte 4 chiffres et une lettre, écrits NN.NNX, par exemple 43.22A",
                    "a NAF code is 4 digits and a letter, written NN.NNX, e.g. 43.22A",
                ),
            )),
        }
    }

    /// The 2-digit division (`43` for `43.22A`).
    pub fn division(&self) -> &str {
        &self.0[..2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naf_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("43.22A", Ok("43.22A")),
            ("4322a", Ok("43.22A")),
            ("4322A", Ok("43.22A")),
            ("43 22A", Ok("43.22A")),
            ("43.22.A", Ok("43.22A")),
            ("43.22a", Ok("43.22A")),
            (" 01.11z ", Ok("01.11Z")),
            ("43-22-B", Ok("43.22B")),
            ("43.22", Err(codes::INVALID_NAF)),
            ("4322", Err(codes::INVALID_NAF)),
            ("43.2A", Err(codes::INVALID_NAF)),
            ("A3.22A", Err(codes::INVALID_NAF)),
            ("43.22AB", Err(codes::INVALID_NAF)),
            ("43.22É", Err(codes::INVALID_NAF)),
            ("", Err(codes::INVALID_NAF)),
        ];
        for (raw, want) in cases {
            let got = NafCode::parse(raw)
                .map(|c| c.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
    }
}
