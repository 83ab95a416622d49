//! Every value parser and normaliser of `foxflow-domain` on any text. Besides "never panics":
//! parsing is idempotent on the canonical string (a stored value reads back as itself), and
//! the normalisers produce what their documentation promises.
#![no_main]

use foxflow_domain::headers::normalize_header;
use foxflow_domain::messages::Message;
use foxflow_domain::normalize::{clean_multiline, clean_text, excel_digits, fold_accents, parse_bool};
use foxflow_domain::values::{CodePostal, Email, MAX_SLUG_LEN, NafCode, Phone, Siren, Siret, Slug, WebUrl};
use foxflow_domain::{ImportType, JobStatus};
use libfuzzer_sys::fuzz_target;

macro_rules! canonical {
    ($t:ty, $raw:expr) => {
        if let Ok(v) = <$t>::parse($raw) {
            assert_eq!(
                <$t>::parse(v.as_str()).as_ref(),
                Ok(&v),
                "{} is not stable",
                stringify!($t)
            );
            Some(v)
        } else {
            None
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let _ = Message::from_json(data);
    let text = String::from_utf8_lossy(data);
    let raw = text.as_ref();

    canonical!(Siren, raw);
    if let Some(siret) = canonical!(Siret, raw) {
        let siren = siret.siren();
        assert!(siret.as_str().starts_with(siren.as_str()));
        assert_eq!(Siren::parse(siren.as_str()).as_ref(), Ok(&siren));
        let _ = siret.nic();
    }
    if let Some(naf) = canonical!(NafCode, raw) {
        let _ = naf.division();
    }
    if let Some(cp) = canonical!(CodePostal, raw) {
        // The département is the code's prefix (two digits, three overseas), except Corsica's
        // 20xxx, which INSEE splits into 2A and 2B.
        let dep = cp.departement();
        match dep {
            "2A" | "2B" => assert!(cp.as_str().starts_with("20"), "{cp:?} → {dep}"),
            _ => {
                assert!(cp.as_str().starts_with(dep), "{cp:?} → {dep}");
                assert_eq!(dep.len(), if cp.is_overseas() { 3 } else { 2 }, "{cp:?} → {dep}");
            }
        }
    }
    if let Some(phone) = canonical!(Phone, raw) {
        let _ = phone.national();
    }
    if let Some(email) = canonical!(Email, raw) {
        assert!(email.as_str().ends_with(email.domain()));
    }
    if let Some(url) = canonical!(WebUrl, raw) {
        let _ = url.host();
    }
    canonical!(Slug, raw);
    if let Ok(slug) = Slug::from_name(raw) {
        let slug = slug.value;
        assert_eq!(
            Slug::parse(slug.as_str()).as_ref(),
            Ok(&slug),
            "a generated slug is valid"
        );
        let n = data.first().copied().map_or(2, u32::from);
        let suffixed = slug.with_suffix(n);
        assert!(suffixed.as_str().chars().count() <= MAX_SLUG_LEN, "{suffixed:?}");
        assert_eq!(Slug::parse(suffixed.as_str()).as_ref(), Ok(&suffixed));
    }

    let single = clean_text(raw);
    let v = single.value.as_ref();
    assert_eq!(v, v.trim(), "clean_text trims");
    assert!(!v.contains("  "), "clean_text collapses spaces: {v:?}");
    assert!(
        v.chars()
            .all(|c| c == ' ' || !(c.is_whitespace() || c.is_control())),
        "clean_text leaves one kind of space and no control character: {v:?}"
    );
    assert_eq!(single.altered, v != raw);
    let multi = clean_multiline(raw);
    let m = multi.value.as_ref();
    assert!(!m.contains('\r') && !m.contains('\0'), "{m:?}");
    assert!(!m.contains("\n\n\n"), "at most one blank line: {m:?}");

    if let Some(digits) = excel_digits(raw) {
        assert!(!digits.value.is_empty() && digits.value.bytes().all(|b| b.is_ascii_digit()));
    }
    let _ = parse_bool(raw);
    let _ = fold_accents(raw);
    let _ = normalize_header(raw);
    let _ = raw.parse::<ImportType>();
    let _ = raw.parse::<JobStatus>();
});
