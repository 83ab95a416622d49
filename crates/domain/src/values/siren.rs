//! SIREN (company) and SIRET (establishment) numbers.

use super::{ValueError, codes, string_value};
use crate::normalize::excel_digits;
use crate::text::Text;

/// A company's 9-digit SIREN, Luhn-valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Siren(String);

/// An establishment's 14-digit SIRET: the SIREN followed by a 5-digit NIC.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Siret(String);

string_value!(Siren);
string_value!(Siret);

/// La Poste's SIRETs were numbered before the Luhn key was applied to them;
/// INSEE's rule for this one SIREN is that the digit sum is a multiple of 5.
const LA_POSTE_SIREN: &str = "356000000";
/// La Poste's head office is the one La Poste SIRET that follows Luhn and not
/// the multiple-of-5 rule (the exception python-stdnum also makes).
const LA_POSTE_HEAD_OFFICE: &str = "35600000000048";

impl Siren {
    /// Accepts the digits with spaces between groups (`732 829 320`) and the
    /// forms Excel gives a number (`732829320.0`, `7.3282932E8`).
    pub fn parse(raw: &str) -> Result<Siren, ValueError> {
        let digits = digits_of(raw, 9).ok_or_else(|| {
            ValueError::new(
                codes::INVALID_SIREN,
                Text::new(
                    "un SIREN compte exactement 9 chiffres, par exemple 732829320",
                    "a SIREN must be exactly 9 digits, e.g. 732829320",
                ),
            )
        })?;
        if !luhn_valid(&digits) {
            return Err(ValueError::new(
                codes::SIREN_CHECKSUM,
                Text::new(
                    "ce SIREN ne passe pas le contrôle de sa clé (Luhn) : un chiffre est sans doute mal saisi",
                    "this SIREN fails its check digit (Luhn): a digit is probably mistyped",
                ),
            ));
        }
        Ok(Siren(digits))
    }
}

impl Siret {
    /// Same input forms as [`Siren::parse`], with 14 digits.
    pub fn parse(raw: &str) -> Result<Siret, ValueError> {
        let digits = digits_of(raw, 14).ok_or_else(|| {
            ValueError::new(
                codes::INVALID_SIRET,
                Text::new(
                    "un SIRET compte exactement 14 chiffres, par exemple 73282932000074",
                    "a SIRET must be exactly 14 digits, e.g. 73282932000074",
                ),
            )
        })?;
        let valid = if digits.starts_with(LA_POSTE_SIREN) && digits != LA_POSTE_HEAD_OFFICE {
            digit_sum(&digits).is_multiple_of(5)
        } else {
            // The SIREN part carries its own key; checking it too keeps
            // `siren()` infallible.
            luhn_valid(&digits) && luhn_valid(&digits[..9])
        };
        if !valid {
            return Err(ValueError::new(
                codes::SIRET_CHECKSUM,
                Text::new(
                    "ce SIRET ne passe pas le contrôle de sa clé (Luhn) : un chiffre est sans doute mal saisi",
                    "this SIRET fails its check digit (Luhn): a digit is probably mistyped",
                ),
            ));
        }
        Ok(Siret(digits))
    }

    /// The company this establishment belongs to (its first 9 digits).
    pub fn siren(&self) -> Siren {
        Siren(self.0[..9].to_owned())
    }

    /// The establishment's 5-digit NIC.
    pub fn nic(&self) -> &str {
        &self.0[9..]
    }
}

fn digits_of(raw: &str, len: usize) -> Option<String> {
    let digits = excel_digits(raw)?.value;
    (digits.len() == len).then_some(digits)
}

fn digit_sum(digits: &str) -> u32 {
    digits.bytes().map(|b| u32::from(b - b'0')).sum()
}

/// Luhn over ASCII digits: from the right, every second digit is doubled
/// (minus 9 when that exceeds 9); the total must be a multiple of 10.
fn luhn_valid(digits: &str) -> bool {
    let total: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    total.is_multiple_of(10)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn siren_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("732829320", Ok("732829320")),
            ("552100554", Ok("552100554")),
            ("356000000", Ok("356000000")),
            (" 732 829 320 ", Ok("732829320")),
            ("732\u{a0}829\u{a0}320", Ok("732829320")),
            ("732829320.0", Ok("732829320")),
            ("7.3282932E8", Ok("732829320")),
            ("7,3282932E+08", Ok("732829320")),
            ("732829321", Err(codes::SIREN_CHECKSUM)),
            ("552100555", Err(codes::SIREN_CHECKSUM)),
            ("73282932", Err(codes::INVALID_SIREN)),
            ("7328293200", Err(codes::INVALID_SIREN)),
            ("73282932A", Err(codes::INVALID_SIREN)),
            ("", Err(codes::INVALID_SIREN)),
            ("732829320.5", Err(codes::INVALID_SIREN)),
        ];
        for (raw, want) in cases {
            let got = Siren::parse(raw)
                .map(|s| s.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
    }

    #[test]
    fn siret_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("73282932000074", Ok("73282932000074")),
            ("55210055400013", Ok("55210055400013")),
            ("732 829 320 00074", Ok("73282932000074")),
            ("73282932000074.0", Ok("73282932000074")),
            ("7.3282932000074E13", Ok("73282932000074")),
            ("7,3282932000074E+13", Ok("73282932000074")),
            ("73282932000075", Err(codes::SIRET_CHECKSUM)),
            ("7328293200007", Err(codes::INVALID_SIRET)),
            ("732829320000741", Err(codes::INVALID_SIRET)),
            ("7328293200007X", Err(codes::INVALID_SIRET)),
            // Luhn-valid over 14 digits but its SIREN part is not.
            ("73282932100007", Err(codes::SIRET_CHECKSUM)),
            // La Poste: the head office follows Luhn (digit sum 26)…
            ("35600000000048", Ok("35600000000048")),
            // …its other establishments need a digit sum multiple of 5,
            // whatever Luhn says: 3+5+6+1 = 15 (Luhn fails) is valid,
            ("35600000000001", Ok("35600000000001")),
            ("35600000049837", Ok("35600000049837")),
            // 3+5+6+1+4 = 19 is not, although it passes Luhn.
            ("35600000000014", Err(codes::SIRET_CHECKSUM)),
            ("35600000000002", Err(codes::SIRET_CHECKSUM)),
        ];
        for (raw, want) in cases {
            let got = Siret::parse(raw)
                .map(|s| s.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
    }

    #[test]
    fn siret_parts() {
        let s = Siret::parse("73282932000074").unwrap();
        assert_eq!(s.siren(), Siren::parse("732829320").unwrap());
        assert_eq!(s.nic(), "00074");
        assert_eq!(
            Siret::parse("35600000000001").unwrap().siren().as_str(),
            LA_POSTE_SIREN
        );
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("732829320"));
        assert!(luhn_valid("0"));
        assert!(!luhn_valid("732829321"));
    }
}
