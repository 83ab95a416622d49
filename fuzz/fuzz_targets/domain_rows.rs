//! Whole rows through `ColumnMap` for every import type (header row = first line), the NAF
//! reference readers, and the AI text validator and repair pass, on any text.
#![no_main]

use std::collections::BTreeMap;

use foxflow_domain::ImportType;
use foxflow_domain::ai_text::{self, Draft, TextKind};
use foxflow_domain::naf_reference;
use foxflow_domain::records::ColumnMap;
use foxflow_domain::values::NafCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let rows = foxflow_fuzz::rows_of(&text);
    let mut reference = BTreeMap::new();
    for (code, label) in [
        ("43.22A", "Travaux d'installation d'eau et de gaz"),
        ("62.01Z", "Programmation"),
    ] {
        if let Ok(code) = NafCode::parse(code) {
            reference.insert(code, label.to_owned());
        }
    }
    if let Some((headers, body)) = rows.split_first() {
        for import_type in ImportType::ALL {
            let Ok(map) = ColumnMap::new(import_type, headers) else {
                continue;
            };
            for row in body {
                let _ = ColumnMap::is_blank_row(row);
                if let Err(errors) = map.parse_row_detailed(row, &reference) {
                    assert!(!errors.is_empty(), "a refused row says why");
                    for e in errors {
                        assert!(!e.code.is_empty() && !e.message.fr.is_empty() && !e.message.en.is_empty());
                    }
                }
            }
        }
        let _ = naf_reference::from_flat_rows(headers, body.to_vec());
    }
    let _ = naf_reference::from_insee_rows(rows.clone());

    for kind in TextKind::ALL {
        let spec = kind.spec();
        let _ = ai_text::check_text(&spec, &text, None);
        let repaired = ai_text::repair_text(&spec, &text);
        let _ = ai_text::review(kind, Draft::Text(text.to_string()));
        let _ = ai_text::capitalize_first(&repaired);
        let _ = repaired;
    }
    if let Ok(draft) = serde_json::from_slice::<Draft>(data) {
        let _ = ai_text::review(TextKind::Faq, draft);
    }
    let max = usize::from(data.first().copied().unwrap_or(0));
    let cut = ai_text::truncate_to(&text, max, &['.', '!', '?']);
    assert!(
        cut.chars().count() <= max,
        "truncate_to({max}) gave {} chars",
        cut.chars().count()
    );
});
