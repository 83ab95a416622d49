//! Telephone numbers.

use super::{ValueError, codes, string_value};
use crate::normalize::excel_digits;
use crate::text::Text;

/// A telephone number in E.164 form: `+33` and the 9 national digits for a
/// French number (`+33123456789`), whatever way it was written.
///
/// Overseas départements have their own country codes although they share
/// the French 10-digit plan: `0262 12 34 56` (La Réunion) is `+262262123456`,
/// not `+33262…`, which would not ring. Numbers already written with another
/// country code (`+32 2 …`) are kept in E.164 as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

string_value!(Phone);

/// National prefixes (after the trunk `0`) of the overseas départements,
/// with the country code they are dialled with from abroad (ARCEP plan).
const OVERSEAS: &[(&str, &str)] = &[
    ("262", "262"),
    ("263", "262"),
    ("269", "262"),
    ("639", "262"),
    ("692", "262"),
    ("693", "262"),
    ("590", "590"),
    ("690", "590"),
    ("691", "590"),
    ("594", "594"),
    ("694", "594"),
    ("596", "596"),
    ("696", "596"),
    ("697", "596"),
];

impl Phone {
    /// Accepts `01 23 45 67 89`, `01.23.45.67.89`, `01-23-45-67-89`,
    /// `+33 1 23 45 67 89`, `+33 (0)1 23 45 67 89`, `0033 1 …`, `33123456789`
    /// and Excel's number forms, including the leading zero it strips
    /// (`123456789` → `+33123456789`).
    pub fn parse(raw: &str) -> Result<Phone, ValueError> {
        let invalid = || {
            ValueError::new(
                codes::INVALID_PHONE,
                Text::new(
                    "un numéro de téléphone est un numéro français comme 01 23 45 67 89 ou \
                     +33 1 23 45 67 89, ou un numéro international commençant par +",
                    "a phone number is a French number such as 01 23 45 67 89 or +33 1 23 45 67 89, \
                     or an international one starting with +",
                ),
            )
        };
        let t = raw.trim();
        // Excel's `123456789.0` or `1.23456789E8`; a dotted `01.23.45.67.89`
        // has several dots and is not taken for a decimal.
        let excel = if t.matches(['.', ',']).count() == 1 || t.contains(['e', 'E']) {
            excel_digits(t).map(|n| n.value)
        } else {
            None
        };
        let t = excel.as_deref().unwrap_or(t);
        let plus = t.starts_with('+');
        let body = if plus { &t[1..] } else { t };
        if !body
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace() || ".-/()".contains(c))
        {
            return Err(invalid());
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        let international = if plus {
            Some(digits.as_str())
        } else {
            digits.strip_prefix("00")
        };
        let national = match international {
            Some(intl) => match intl.strip_prefix("33") {
                // `+33 (0)1…` carries the trunk zero that must go.
                Some(n) if n.len() == 10 && n.starts_with('0') => n[1..].to_owned(),
                Some(n) if n.len() == 9 => n.to_owned(),
                Some(_) => return Err(invalid()),
                None if (8..=15).contains(&intl.len()) && !intl.starts_with('0') => {
                    return Ok(Phone(format!("+{intl}")));
                }
                None => return Err(invalid()),
            },
            None => match digits.len() {
                10 if digits.starts_with('0') => digits[1..].to_owned(),
                // Excel stored the number and dropped its leading zero.
                9 => digits,
                // Excel stored `+33…` as a number and dropped the `+`.
                11 if digits.starts_with("33") => digits[2..].to_owned(),
                _ => return Err(invalid()),
            },
        };
        if national.len() != 9 || national.starts_with('0') {
            return Err(invalid());
        }
        let country = OVERSEAS
            .iter()
            .find(|(prefix, _)| national.starts_with(prefix))
            .map_or("33", |(_, cc)| cc);
        Ok(Phone(format!("+{country}{national}")))
    }

    /// The French national form for display, `01 23 45 67 89`; `None` for a
    /// number outside the French plan.
    pub fn national(&self) -> Option<String> {
        let digits = &self.0[1..];
        let national = match digits.strip_prefix("33") {
            Some(n) => n,
            None => OVERSEAS
                .iter()
                .find_map(|(prefix, cc)| digits.strip_prefix(cc).filter(|n| n.starts_with(prefix)))?,
        };
        if national.len() != 9 {
            return None;
        }
        let d = format!("0{national}");
        Some(format!(
            "{} {} {} {} {}",
            &d[0..2],
            &d[2..4],
            &d[4..6],
            &d[6..8],
            &d[8..10]
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn phone_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("01 23 45 67 89", Ok("+33123456789")),
            ("0123456789", Ok("+33123456789")),
            ("01.23.45.67.89", Ok("+33123456789")),
            ("01-23-45-67-89", Ok("+33123456789")),
            ("+33 1 23 45 67 89", Ok("+33123456789")),
            ("+33 (0)1 23 45 67 89", Ok("+33123456789")),
            ("+33123456789", Ok("+33123456789")),
            ("0033 1 23 45 67 89", Ok("+33123456789")),
            ("33123456789", Ok("+33123456789")),
            ("123456789", Ok("+33123456789")),
            ("123456789.0", Ok("+33123456789")),
            ("1.23456789E8", Ok("+33123456789")),
            ("06 12 34 56 78", Ok("+33612345678")),
            ("612345678", Ok("+33612345678")),
            ("\u{a0}09 70 00 00 00\u{a0}", Ok("+33970000000")),
            ("0262 12 34 56", Ok("+262262123456")),
            ("0692 12 34 56", Ok("+262692123456")),
            ("+262 692 12 34 56", Ok("+262692123456")),
            ("+33 692 12 34 56", Ok("+262692123456")),
            ("0590 12 34 56", Ok("+590590123456")),
            ("0696 12 34 56", Ok("+596696123456")),
            ("0594 12 34 56", Ok("+594594123456")),
            ("+32 2 123 45 67", Ok("+3221234567")),
            ("0032 2 123 45 67", Ok("+3221234567")),
            ("01 23 45 67", Err(codes::INVALID_PHONE)),
            ("01 23 45 67 89 10", Err(codes::INVALID_PHONE)),
            ("00 00 00 00 00", Err(codes::INVALID_PHONE)),
            ("+33 0 23 45 67 89", Err(codes::INVALID_PHONE)),
            ("+33 1 23 45", Err(codes::INVALID_PHONE)),
            ("01 23 45 67 89 / 06 12 34 56 78", Err(codes::INVALID_PHONE)),
            ("tel: 0123456789", Err(codes::INVALID_PHONE)),
            ("+", Err(codes::INVALID_PHONE)),
            ("", Err(codes::INVALID_PHONE)),
            ("12.5", Err(codes::INVALID_PHONE)),
        ];
        for (raw, want) in cases {
            let got = Phone::parse(raw)
                .map(|p| p.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
    }

    #[test]
    fn national_form() {
        let national = |s: &str| Phone::parse(s).unwrap().national();
        assert_eq!(national("+33123456789").as_deref(), Some("01 23 45 67 89"));
        assert_eq!(national("0262 12 34 56").as_deref(), Some("02 62 12 34 56"));
        assert_eq!(national("+32 2 123 45 67"), None);
    }
}
