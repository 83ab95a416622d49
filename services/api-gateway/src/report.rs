//! The XLSX report of one import (docs/spec.md §4.6): a summary sheet and an errors
//! sheet (row, column, value, code, message, then the original row).

use crate::views::JobView;
use foxflow_storage::jobs::ImportErrorRow;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

/// Text a spreadsheet would run as a formula if typed in a cell. Written as
/// a string it is inert already; the quote prefix keeps it inert when the
/// cell is edited in Excel too.
fn is_formula_like(s: &str) -> bool {
    matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'))
}

fn write_text(ws: &mut Worksheet, row: u32, col: u16, text: &str, quoted: &Format) -> Result<(), XlsxError> {
    if is_formula_like(text) {
        ws.write_string_with_format(row, col, text, quoted)?;
    } else {
        ws.write_string(row, col, text)?;
    }
    Ok(())
}

/// Builds the workbook. `errors` come in row order; the original row's
/// columns follow the file's header order (kept in each error's `raw`).
pub fn build(job: &JobView, errors: &[ImportErrorRow]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let quoted = Format::new().set_quote_prefix();

    let summary = wb.add_worksheet().set_name("Résumé")?;
    let fields: Vec<(&str, String)> = vec![
        ("Import", job.id.to_string()),
        ("Fichier", job.file_name.clone()),
        ("Type", job.import_type.to_string()),
        ("Statut", job.status.to_string()),
        (
            "Simulation (dry run)",
            if job.dry_run { "oui" } else { "non" }.into(),
        ),
        ("Lignes", job.total_rows.to_string()),
        ("Créées", job.created_rows.to_string()),
        ("Mises à jour", job.updated_rows.to_string()),
        ("Inchangées", job.unchanged_rows.to_string()),
        ("En erreur", job.error_rows.to_string()),
        (
            "Taux de succès (%)",
            job.success_rate.map(|r| r.to_string()).unwrap_or_default(),
        ),
        ("Colonnes ignorées", job.unknown_columns.join(", ")),
        ("Créé le", job.created_at.to_rfc3339()),
        (
            "Terminé le",
            job.completed_at.map(|d| d.to_rfc3339()).unwrap_or_default(),
        ),
        ("Dernière erreur", job.last_error.clone().unwrap_or_default()),
    ];
    for (i, (k, v)) in fields.iter().enumerate() {
        summary.write_string_with_format(i as u32, 0, *k, &bold)?;
        write_text(summary, i as u32, 1, v, &quoted)?;
    }
    summary.set_column_width(0, 24)?;
    summary.set_column_width(1, 60)?;

    let sheet = wb.add_worksheet().set_name("Erreurs")?;
    // The original columns, in the order the file had them.
    let mut original: Vec<String> = Vec::new();
    for e in errors {
        if let Some(serde_json::Value::Object(map)) = &e.raw {
            for k in map.keys() {
                if !original.contains(k) {
                    original.push(k.clone());
                }
            }
        }
    }
    let fixed = ["Ligne", "Colonne", "Valeur", "Code", "Message"];
    for (c, h) in fixed.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, h) in original.iter().enumerate() {
        write_text(sheet, 0, (fixed.len() + i) as u16, h, &quoted)?;
    }
    for (i, e) in errors.iter().enumerate() {
        let r = (i + 1) as u32;
        sheet.write_number(r, 0, e.row as f64)?;
        write_text(sheet, r, 1, e.column.as_deref().unwrap_or(""), &quoted)?;
        write_text(sheet, r, 2, e.value.as_deref().unwrap_or(""), &quoted)?;
        write_text(sheet, r, 3, &e.code, &quoted)?;
        write_text(sheet, r, 4, &e.message, &quoted)?;
        if let Some(serde_json::Value::Object(map)) = &e.raw {
            for (j, h) in original.iter().enumerate() {
                if let Some(serde_json::Value::String(v)) = map.get(h) {
                    write_text(sheet, r, (fixed.len() + j) as u16, v, &quoted)?;
                }
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::is_formula_like;

    #[test]
    fn formula_triggers() {
        for s in ["=1+1", "+33", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(is_formula_like(s), "{s:?}");
        }
        for s in ["Paris", "", "1=1", " =x"] {
            assert!(!is_formula_like(s), "{s:?}");
        }
    }
}
