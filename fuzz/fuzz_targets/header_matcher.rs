//! The header matcher: any header row, for every import type. Each column is either read for
//! exactly one field or ignored with a reason, and matching is insensitive to what
//! `normalize_header` folds away.
#![no_main]

use foxflow_domain::ImportType;
use foxflow_domain::headers::{Field, HeaderMapping, HeaderMatch, match_header, normalize_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let headers: Vec<String> = foxflow_fuzz::rows_of(&text)
        .into_iter()
        .next()
        .unwrap_or_default();
    for header in &headers {
        let key = normalize_header(header);
        assert!(
            key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{key:?}"
        );
        assert_eq!(normalize_header(&key), key, "normalising is idempotent");
    }
    for import_type in ImportType::ALL {
        let mapping = HeaderMapping::new(import_type, &headers);
        let mut read = vec![false; headers.len()];
        for field in Field::ALL {
            if let Some(i) = mapping.column(field) {
                assert!(i < headers.len());
                assert!(!read[i], "one column read for two fields");
                read[i] = true;
                assert_eq!(
                    match_header(import_type, &headers[i]),
                    Some(HeaderMatch::Field(field))
                );
                // The same header in another spelling means the same field.
                let shouted = headers[i].to_uppercase();
                if normalize_header(&shouted) == normalize_header(&headers[i]) {
                    assert_eq!(
                        match_header(import_type, &shouted),
                        Some(HeaderMatch::Field(field))
                    );
                }
            }
        }
        for ignored in mapping.ignored() {
            assert!(ignored.position < headers.len());
            assert!(!read[ignored.position], "a column both read and ignored");
            read[ignored.position] = true;
        }
        assert!(read.iter().all(|r| *r), "every column is accounted for");
    }
});
