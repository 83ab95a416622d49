//! Contact e-mail addresses.

use super::{ValueError, codes, is_plausible_host, string_value};
use crate::text::Text;

/// A plausible e-mail address, stored in lower case.
///
/// Lower-casing the local part is technically lossy (RFC 5321 lets a server
/// tell `Jean@` from `jean@`), but no mail host in practice does, and one
/// spelling per address keeps comparisons and deduplication simple.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

string_value!(Email);

/// RFC 5321's limit on a forward path; also the `email_contact` column.
pub const MAX_EMAIL_LEN: usize = 254;

impl Email {
    /// Accepts `mailto:` links. One address per cell: a list is refused
    /// rather than guessing which one the operator meant.
    pub fn parse(raw: &str) -> Result<Email, ValueError> {
        let invalid = || {
            ValueError::new(
                codes::INVALID_EMAIL,
                Text::new(
                    "une adresse e-mail s’écrit nom@domaine.fr (une seule adresse, sans espace)",
                    "an e-mail address looks like name@domain.fr (one address, no spaces)",
                ),
            )
        };
        let t = raw.trim();
        let t = match t.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("mailto:") => &t[7..],
            _ => t,
        };
        let email = t.to_lowercase();
        let len = email.chars().count();
        if len > MAX_EMAIL_LEN {
            return Err(ValueError::too_long(
                Text::new("une adresse e-mail", "an e-mail address"),
                len,
                MAX_EMAIL_LEN,
            ));
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        if !local_ok || !is_plausible_host(domain) {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn email_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("contact@example.fr", Ok("contact@example.fr")),
            (" Contact@Example.FR ", Ok("contact@example.fr")),
            ("mailto:jean.dupont@orange.fr", Ok("jean.dupont@orange.fr")),
            ("MAILTO:info@sarl-dupont.com", Ok("info@sarl-dupont.com")),
            (
                "prenom.nom+devis@sub.domaine.co.uk",
                Ok("prenom.nom+devis@sub.domaine.co.uk"),
            ),
            ("contact@boulangerie-épi.fr", Ok("contact@boulangerie-épi.fr")),
            ("contact", Err(codes::INVALID_EMAIL)),
            ("contact@", Err(codes::INVALID_EMAIL)),
            ("@example.fr", Err(codes::INVALID_EMAIL)),
            ("contact@example", Err(codes::INVALID_EMAIL)),
            ("a@b@example.fr", Err(codes::INVALID_EMAIL)),
            ("jean dupont@example.fr", Err(codes::INVALID_EMAIL)),
            ("a@example.fr; b@example.fr", Err(codes::INVALID_EMAIL)),
            (".jean@example.fr", Err(codes::INVALID_EMAIL)),
            ("jean..d@example.fr", Err(codes::INVALID_EMAIL)),
            ("jean@exa_mple.fr", Err(codes::INVALID_EMAIL)),
            ("", Err(codes::INVALID_EMAIL)),
        ];
        for (raw, want) in cases {
            let got = Email::parse(raw)
                .map(|e| e.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
        let long = format!("{}@example.fr", "a".repeat(250));
        assert_eq!(Email::parse(&long).unwrap_err().code, codes::TOO_LONG);
        assert_eq!(Email::parse("x@example.fr").unwrap().domain(), "example.fr");
    }
}
