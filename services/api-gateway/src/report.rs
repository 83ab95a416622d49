//! The XLSX report of one import (docs/spec.md §4.6): a summary sheet, an errors
//! sheet and a warnings sheet (row, column, value, code, message, then the
//! original row), and the changes it made (a dry run: would make). French
//! from its sheet names to its messages, or English (docs/api.md
//! "Languages"); codes are the same in both.

use crate::views::JobView;
use foxflow_domain::Lang;
use foxflow_storage::jobs::{ChangeView, ImportErrorRow, Severity};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use std::borrow::Cow;
use std::io::Write;

/// Text a spreadsheet would run as a formula if typed in a cell. Written as
/// a string it is inert already; the quote prefix keeps it inert when the
/// cell is edited in Excel too.
pub(crate) fn is_formula_like(s: &str) -> bool {
    matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'))
}

/// Excel refuses a cell longer than this many characters.
const EXCEL_CELL_CHARS: usize = 32_767;

/// Writes text as text, inert, and never longer than a cell can hold: a
/// longer value is cut and marked, so any stored content makes a report.
pub(crate) fn write_text(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    text: &str,
    quoted: &Format,
) -> Result<(), XlsxError> {
    let text = fit_cell(text);
    if is_formula_like(&text) {
        ws.write_string_with_format(row, col, text.as_ref(), quoted)?;
    } else {
        ws.write_string(row, col, text.as_ref())?;
    }
    Ok(())
}

fn fit_cell(text: &str) -> Cow<'_, str> {
    // Cut content stays marked in French: the mark is part of the value.
    const MARK: &str = "… (coupé)";
    match text.char_indices().nth(EXCEL_CELL_CHARS) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = EXCEL_CELL_CHARS - MARK.chars().count();
            let (cut, _) = text.char_indices().nth(keep).expect("longer than the cell");
            Cow::Owned(format!("{}{MARK}", &text[..cut]))
        }
    }
}

/// A report being written: the errors and warnings sheets are in
/// constant-memory mode (rows go to a temporary file as they are added, in
/// order), so memory stays flat whatever the number of rows; the small
/// summary sheet is written last, when the number of rows listed is known.
pub struct Report {
    wb: Workbook,
    errors: Listing,
    warnings: Listing,
    /// The next row of the changes sheet.
    next_change: u32,
    quoted: Format,
    lang: Lang,
}

/// The report's words in French and English.
fn words(lang: Lang, fr: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

/// The changes sheet's columns.
const CHANGE_COLUMNS: [&str; 5] = ["Table", "Clé", "Action", "Champ", "Avant → après"];
const CHANGE_COLUMNS_EN: [&str; 5] = ["Table", "Key", "Action", "Field", "Before → after"];

/// One sheet of error or warning lines.
struct Listing {
    sheet: &'static str,
    /// The original row's columns, after [`FIXED`].
    columns: Vec<String>,
    next_row: u32,
}

impl Listing {
    fn listed(&self) -> i64 {
        i64::from(self.next_row - 1)
    }
}

/// The fixed columns of the errors and warnings sheets, before the original row's.
const FIXED: [&str; 5] = ["Ligne", "Colonne", "Valeur", "Code", "Message"];
const FIXED_EN: [&str; 5] = ["Row", "Column", "Value", "Code", "Message"];

impl Report {
    /// Starts the errors and warnings sheets; the columns are the original
    /// rows' columns of each, in the file's order
    /// (`foxflow_storage::jobs::error_columns`).
    pub fn new(
        error_columns: Vec<String>,
        warning_columns: Vec<String>,
        lang: Lang,
    ) -> Result<Report, XlsxError> {
        let mut wb = Workbook::new();
        let quoted = Format::new().set_quote_prefix();
        // The summary comes first in the workbook, written at the end.
        wb.add_worksheet().set_name(words(lang, "Résumé", "Summary"))?;
        let errors = Listing::start(
            &mut wb,
            words(lang, "Erreurs", "Errors"),
            error_columns,
            &quoted,
            lang,
        )?;
        let warnings = Listing::start(
            &mut wb,
            words(lang, "Avertissements", "Warnings"),
            warning_columns,
            &quoted,
            lang,
        )?;
        let bold = Format::new().set_bold();
        let changes =
            wb.add_worksheet_with_constant_memory()?
                .set_name(words(lang, "Modifications", "Changes"))?;
        changes.set_freeze_panes(1, 0)?;
        let change_columns = match lang {
            Lang::Fr => CHANGE_COLUMNS,
            Lang::En => CHANGE_COLUMNS_EN,
        };
        for (c, h) in change_columns.iter().enumerate() {
            changes.write_string_with_format(0, c as u16, *h, &bold)?;
        }
        Ok(Report {
            wb,
            errors,
            warnings,
            next_change: 1,
            quoted,
            lang,
        })
    }

    /// Appends changes (in the order they were made) to the changes sheet:
    /// one line per updated field, one per created or deleted row.
    pub fn add_changes(&mut self, changes: &[ChangeView]) -> Result<(), XlsxError> {
        let quoted = &self.quoted;
        let lang = self.lang;
        let sheet = self
            .wb
            .worksheet_from_name(words(lang, "Modifications", "Changes"))?;
        let show = |v: Option<&serde_json::Value>| match v {
            None | Some(serde_json::Value::Null) => "∅".to_owned(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        for c in changes {
            let action = match (c.action.as_str(), lang) {
                ("created", Lang::Fr) => "créée",
                ("updated", Lang::Fr) => "modifiée",
                ("deleted", Lang::Fr) => "supprimée",
                (other, _) => other,
            };
            let fields: Vec<(String, String)> = match (c.action.as_str(), &c.before, &c.after) {
                ("updated", before, Some(serde_json::Value::Object(after))) => after
                    .iter()
                    .filter(|(k, _)| k.as_str() != "updated_at")
                    .map(|(k, v)| {
                        let was = before.as_ref().and_then(|b| b.get(k));
                        (k.clone(), format!("{} → {}", show(was), show(Some(v))))
                    })
                    .collect(),
                _ => vec![(String::new(), String::new())],
            };
            for (field, text) in fields {
                let r = self.next_change;
                write_text(sheet, r, 0, &c.entity, quoted)?;
                write_text(sheet, r, 1, c.key.as_deref().unwrap_or(&c.pk), quoted)?;
                write_text(sheet, r, 2, action, quoted)?;
                write_text(sheet, r, 3, &field, quoted)?;
                write_text(sheet, r, 4, &text, quoted)?;
                self.next_change += 1;
            }
        }
        Ok(())
    }

    /// Appends error or warning lines (in row order) to their sheet.
    pub fn add(&mut self, severity: Severity, lines: &[ImportErrorRow]) -> Result<(), XlsxError> {
        let listing = match severity {
            Severity::Error => &mut self.errors,
            Severity::Warning => &mut self.warnings,
        };
        listing.add(&mut self.wb, lines, &self.quoted)
    }
}

impl Listing {
    fn start(
        wb: &mut Workbook,
        sheet_name: &'static str,
        mut columns: Vec<String>,
        quoted: &Format,
        lang: Lang,
    ) -> Result<Listing, XlsxError> {
        let fixed = match lang {
            Lang::Fr => FIXED,
            Lang::En => FIXED_EN,
        };
        // A sheet has 16,384 columns; a wider file's last ones are left out.
        columns.truncate(16_384 - FIXED.len());
        let bold = Format::new().set_bold();
        let sheet = wb.add_worksheet_with_constant_memory()?.set_name(sheet_name)?;
        sheet.set_freeze_panes(1, 0)?;
        for (c, h) in fixed.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, *h, &bold)?;
        }
        for (i, h) in columns.iter().enumerate() {
            write_text(sheet, 0, (FIXED.len() + i) as u16, h, quoted)?;
        }
        Ok(Listing {
            sheet: sheet_name,
            columns,
            next_row: 1,
        })
    }

    fn add(
        &mut self,
        wb: &mut Workbook,
        errors: &[ImportErrorRow],
        quoted: &Format,
    ) -> Result<(), XlsxError> {
        let sheet = wb.worksheet_from_name(self.sheet)?;
        for e in errors {
            let r = self.next_row;
            sheet.write_number(r, 0, e.row as f64)?;
            write_text(sheet, r, 1, e.column.as_deref().unwrap_or(""), quoted)?;
            write_text(sheet, r, 2, e.value.as_deref().unwrap_or(""), quoted)?;
            write_text(sheet, r, 3, &e.code, quoted)?;
            write_text(sheet, r, 4, &e.message, quoted)?;
            if let Some(serde_json::Value::Object(map)) = &e.raw {
                for (j, h) in self.columns.iter().enumerate() {
                    if let Some(serde_json::Value::String(v)) = map.get(h) {
                        write_text(sheet, r, (FIXED.len() + j) as u16, v, quoted)?;
                    }
                }
            }
            self.next_row += 1;
        }
        Ok(())
    }
}

impl Report {
    /// Writes the summary and the whole workbook to `out`.
    pub fn finish<W: Write + Send>(mut self, job: &JobView, out: W) -> Result<(), XlsxError> {
        let listed = self.errors.listed();
        let warnings_listed = self.warnings.listed();
        let bold = Format::new().set_bold();
        let quoted = self.quoted.clone();
        let lang = self.lang;
        let w = |fr, en| words(lang, fr, en);
        let summary = self.wb.worksheet_from_name(w("Résumé", "Summary"))?;
        let mut fields: Vec<(&str, String)> = vec![
            ("Import", job.id.to_string()),
            (w("Fichier", "File"), job.file_name.clone()),
            ("Type", job.import_type.to_string()),
            (w("Statut", "Status"), job.status.to_string()),
            (
                w("Simulation (dry run)", "Dry run"),
                if job.dry_run {
                    w("oui", "yes")
                } else {
                    w("non", "no")
                }
                .into(),
            ),
            (w("Lignes", "Rows"), job.total_rows.to_string()),
            (w("Créées", "Created"), job.created_rows.to_string()),
            (w("Mises à jour", "Updated"), job.updated_rows.to_string()),
            (w("Inchangées", "Unchanged"), job.unchanged_rows.to_string()),
            (w("En erreur", "In error"), job.error_rows.to_string()),
            (
                w("Avec avertissement", "With a warning"),
                job.warning_rows.to_string(),
            ),
            (
                w("Taux de succès (%)", "Success rate (%)"),
                job.success_rate.map(|r| r.to_string()).unwrap_or_default(),
            ),
            (
                w("Colonnes ignorées", "Ignored columns"),
                job.unknown_columns.join(", "),
            ),
            (w("Créé le", "Created at"), job.created_at.to_rfc3339()),
            (
                w("Terminé le", "Completed at"),
                job.completed_at.map(|d| d.to_rfc3339()).unwrap_or_default(),
            ),
            (
                w("Dernière erreur", "Last error"),
                job.last_error.clone().unwrap_or_default(),
            ),
        ];
        if listed < job.error_rows {
            let total = job.error_rows;
            fields.push(match lang {
                Lang::Fr => (
                    "Erreurs listées",
                    format!("les {listed} premières sur {total} (feuille Erreurs)"),
                ),
                Lang::En => (
                    "Errors listed",
                    format!("the first {listed} of {total} (Errors sheet)"),
                ),
            });
        }
        if warnings_listed < job.warning_rows {
            let total = job.warning_rows;
            fields.push(match lang {
                Lang::Fr => (
                    "Avertissements listés",
                    format!(
                        "{warnings_listed}, pour les premières lignes seulement : {total} lignes en ont (feuille Avertissements)"
                    ),
                ),
                Lang::En => (
                    "Warnings listed",
                    format!("{warnings_listed}, for the first rows only: {total} rows have some (Warnings sheet)"),
                ),
            });
        }
        for (i, (k, v)) in fields.iter().enumerate() {
            summary.write_string_with_format(i as u32, 0, *k, &bold)?;
            write_text(summary, i as u32, 1, v, &quoted)?;
        }
        summary.set_column_width(0, 24)?;
        summary.set_column_width(1, 60)?;
        self.wb.save_to_writer(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{EXCEL_CELL_CHARS, fit_cell, is_formula_like};

    #[test]
    fn a_cell_never_exceeds_what_excel_holds() {
        assert_eq!(fit_cell("court"), "court");
        let long = "é".repeat(40_000);
        let fitted = fit_cell(&long);
        assert_eq!(fitted.chars().count(), EXCEL_CELL_CHARS);
        assert!(fitted.ends_with("… (coupé)"));
    }

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
