//! Company web sites.

use super::{ValueError, codes, is_plausible_host, string_value};
use crate::text::Text;

/// A plausible `http`/`https` URL of a public site.
///
/// A URL written without a scheme (`www.example.fr`, `example.fr/contact`)
/// gets `https://`: nearly every site serves HTTPS today, a browser would
/// try it first, and one form per site makes values comparable. An explicit
/// `http://` is kept as written, since the operator may know the site has no
/// certificate. The scheme and host are lower-cased; the path is kept as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebUrl(String);

string_value!(WebUrl);

/// The `site_web` column.
pub const MAX_URL_LEN: usize = 255;

impl WebUrl {
    pub fn parse(raw: &str) -> Result<WebUrl, ValueError> {
        let invalid = || {
            ValueError::new(
                codes::INVALID_URL,
                Text::new(
                    "un site web est une adresse http(s) comme https://www.exemple.fr ou www.exemple.fr",
                    "a web site is an http(s) address such as https://www.example.fr or www.example.fr",
                ),
            )
        };
        let t = raw.trim();
        if t.is_empty() || t.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (scheme, rest) = match t.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => ("https", rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => ("http", rest),
            // `ftp://`, `javascript:`, `mailto:` and the like are no site.
            Some(_) => return Err(invalid()),
            None if t.contains(':') && !t.contains('/') && !has_port(t) => return Err(invalid()),
            None => ("https", t),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        // User info (`user@host`) has no place in a published site and is
        // more often an e-mail typed into the wrong column.
        if authority.contains('@') {
            return Err(invalid());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                (h, Some(p))
            }
            Some(_) => return Err(invalid()),
            None => (authority, None),
        };
        let host = host.strip_suffix('.').unwrap_or(host).to_lowercase();
        // `www.example` is a site whose TLD was forgotten, not a TLD `example`.
        let www_without_tld = host.starts_with("www.") && host.matches('.').count() < 2;
        if !is_plausible_host(&host) || www_without_tld {
            return Err(invalid());
        }
        let url = match port {
            Some(p) => format!("{scheme}://{host}:{p}{path}"),
            None => format!("{scheme}://{host}{path}"),
        };
        let len = url.chars().count();
        if len > MAX_URL_LEN {
            return Err(ValueError::too_long(
                Text::new("une adresse web", "a web address"),
                len,
                MAX_URL_LEN,
            ));
        }
        Ok(WebUrl(url))
    }

    /// The host name, e.g. `www.example.fr`.
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
        let end = rest.find([':', '/', '?', '#']).unwrap_or(rest.len());
        &rest[..end]
    }
}

fn has_port(t: &str) -> bool {
    t.rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn url_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://www.example.fr", Ok("https://www.example.fr")),
            ("https://www.example.fr/", Ok("https://www.example.fr/")),
            (
                "http://example.fr/Contact?x=1#top",
                Ok("http://example.fr/Contact?x=1#top"),
            ),
            ("HTTPS://WWW.Example.FR/Page", Ok("https://www.example.fr/Page")),
            ("www.example.fr", Ok("https://www.example.fr")),
            ("example.fr/contact", Ok("https://example.fr/contact")),
            ("www.example.fr:8080/x", Ok("https://www.example.fr:8080/x")),
            ("https://boulangerie-épi.fr", Ok("https://boulangerie-épi.fr")),
            ("https://example.fr.", Ok("https://example.fr")),
            ("ftp://example.fr", Err(codes::INVALID_URL)),
            ("javascript:alert(1)", Err(codes::INVALID_URL)),
            ("mailto:contact@example.fr", Err(codes::INVALID_URL)),
            ("contact@example.fr", Err(codes::INVALID_URL)),
            ("https://user:pw@example.fr", Err(codes::INVALID_URL)),
            ("http://localhost", Err(codes::INVALID_URL)),
            ("http://192.168.1.1", Err(codes::INVALID_URL)),
            ("www.example", Err(codes::INVALID_URL)),
            ("www example.fr", Err(codes::INVALID_URL)),
            ("https://", Err(codes::INVALID_URL)),
            ("n/a", Err(codes::INVALID_URL)),
            ("", Err(codes::INVALID_URL)),
        ];
        for (raw, want) in cases {
            let got = WebUrl::parse(raw)
                .map(|u| u.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
        let long = format!("https://example.fr/{}", "a".repeat(300));
        assert_eq!(WebUrl::parse(&long).unwrap_err().code, codes::TOO_LONG);
        assert_eq!(
            WebUrl::parse("https://www.example.fr:8080/a").unwrap().host(),
            "www.example.fr"
        );
    }
}
