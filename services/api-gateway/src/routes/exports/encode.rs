//! How an exported row is written: the columns of each import type, the
//! typed cells a stored row becomes, and how CSV and XLSX write each cell so
//! that the importer reads back the stored value.

use crate::report::{is_formula_like, write_text};
use bytes::Bytes;
use foxflow_domain::ImportType;
use foxflow_domain::headers::Field;
use foxflow_storage::exports;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use std::borrow::Cow;

/// What French Excel expects from a CSV: `;` between fields (`,` is the
/// decimal separator there) and a UTF-8 byte-order mark, without which it
/// reads the file as Windows-1252 and garbles every accent. The importer
/// detects both (`foxflow_sheets`).
const CSV_DELIMITER: u8 = b';';
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A sheet holds 1,048,576 rows, the header included.
pub(super) const XLSX_MAX_DATA_ROWS: u32 = 1_048_575;

/// The columns of each export, in order: every field the importer reads for
/// that type and the tables store. Headers are [`Field::name`], the canonical
/// names the importer matches first. Not exported: a catégorie's `parent`
/// (a WordPress term export's column; catégories have no parent) and what
/// imports do not write (AI texts, a town's other postal codes).
pub(super) fn columns(import_type: ImportType) -> &'static [Field] {
    use Field::*;
    match import_type {
        ImportType::Entreprises => &[
            Siren,
            Siret,
            Nom,
            NomCommercial,
            Adresse,
            CodePostal,
            VilleNom,
            NafCode,
            NafLibelle,
            Telephone,
            EmailContact,
            SiteWeb,
            IsActive,
        ],
        ImportType::Villes => &[Nom, CodePostal, Departement, Region, Lat, Lng, Population],
        ImportType::Categories => &[Nom, Slug, Description, MetaDescription, Ordre],
        ImportType::SousCategories => &[
            Nom,
            Categorie,
            Slug,
            Description,
            MetaDescription,
            MotsCles,
            Ordre,
            NafCodes,
        ],
    }
}

/// One exported value, typed so that each format writes it in the form its
/// reader gives back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Empty,
}

fn text(value: Option<String>) -> Cell {
    value.map_or(Cell::Empty, Cell::Text)
}

pub(super) fn entreprise_cells(r: exports::EntrepriseExport) -> Vec<Cell> {
    vec![
        Cell::Text(r.siren),
        text(r.siret),
        Cell::Text(r.nom),
        text(r.nom_commercial),
        text(r.adresse),
        text(r.code_postal),
        text(r.ville_nom),
        text(r.naf_code),
        text(r.naf_libelle),
        text(r.telephone),
        text(r.email_contact),
        text(r.site_web),
        Cell::Bool(r.is_active),
    ]
}

pub(super) fn ville_cells(r: exports::VilleExport) -> Vec<Cell> {
    vec![
        Cell::Text(r.nom),
        Cell::Text(r.code_postal),
        text(r.departement),
        text(r.region),
        r.lat.map_or(Cell::Empty, Cell::Float),
        r.lng.map_or(Cell::Empty, Cell::Float),
        r.population.map_or(Cell::Empty, Cell::Int),
    ]
}

pub(super) fn categorie_cells(r: exports::CategorieExport) -> Vec<Cell> {
    vec![
        Cell::Text(r.nom),
        Cell::Text(r.slug),
        text(r.description),
        text(r.meta_description),
        Cell::Int(r.ordre.into()),
    ]
}

pub(super) fn sous_categorie_cells(r: exports::SousCategorieExport) -> Vec<Cell> {
    // An empty cell leaves the stored links alone on import, which is what
    // "no codes" re-imports to.
    let naf_codes = (!r.naf_codes.is_empty()).then(|| r.naf_codes.join(", "));
    vec![
        Cell::Text(r.nom),
        Cell::Text(r.categorie),
        Cell::Text(r.slug),
        text(r.description),
        text(r.meta_description),
        text(r.mots_cles),
        Cell::Int(r.ordre.into()),
        text(naf_codes),
    ]
}

/// A text cell a spreadsheet would run as a formula gets a leading `'`,
/// OWASP's advice: Excel takes it as "this is text" and does not show it,
/// and the importer's CSV reader drops it before `=`, `+`, `-`, `@`, so the
/// value re-imports as it is stored. Numbers and booleans are written by
/// Rust's formatting and cannot hold a formula; `f64`'s `Display` is the
/// shortest text that parses back to the same number.
fn csv_field(cell: &Cell) -> Cow<'_, str> {
    match cell {
        Cell::Text(s) if is_formula_like(s) => Cow::Owned(format!("'{s}")),
        Cell::Text(s) => Cow::Borrowed(s),
        Cell::Int(n) => Cow::Owned(n.to_string()),
        Cell::Float(f) => Cow::Owned(f.to_string()),
        Cell::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Cell::Empty => Cow::Borrowed(""),
    }
}

/// The CSV text of some rows, after the byte-order mark and the header row
/// when `header` is given.
pub(super) fn csv_chunk(header: Option<&[Field]>, rows: &[Vec<Cell>]) -> Result<Bytes, anyhow::Error> {
    let mut out = Vec::with_capacity(rows.len() * 200 + 512);
    if header.is_some() {
        out.extend_from_slice(UTF8_BOM);
    }
    let mut w = csv::WriterBuilder::new()
        .delimiter(CSV_DELIMITER)
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    if let Some(fields) = header {
        w.write_record(fields.iter().map(|f| f.name()))?;
    }
    for row in rows {
        for cell in row {
            w.write_field(csv_field(cell).as_bytes())?;
        }
        w.write_record(None::<&[u8]>)?;
    }
    let out = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("csv buffer: {}", e.error()))?;
    Ok(Bytes::from(out))
}

/// Whether Excel holds `f` exactly: it keeps 15 significant digits, and the
/// importer reads a number cell as Excel displays it
/// (`foxflow_sheets::cell::number_to_string`).
fn excel_keeps(f: f64) -> bool {
    format!("{f:.14e}").parse::<f64>().is_ok_and(|shown| shown == f)
}

/// Text as text (formula-safe, `crate::report::write_text`): identifiers and
/// postal codes keep their leading zeros and every digit. Numbers Excel
/// cannot hold exactly are written as text, so they come back unchanged.
fn write_cell(ws: &mut Worksheet, row: u32, col: u16, cell: &Cell, quoted: &Format) -> Result<(), XlsxError> {
    match cell {
        Cell::Text(s) => write_text(ws, row, col, s, quoted)?,
        // Below 1e15 an integer is exact as a double and read back as digits.
        Cell::Int(n) if n.unsigned_abs() < 1_000_000_000_000_000 => {
            ws.write_number(row, col, *n as f64)?;
        }
        Cell::Int(n) => {
            ws.write_string(row, col, n.to_string())?;
        }
        Cell::Float(f) if excel_keeps(*f) => {
            ws.write_number(row, col, *f)?;
        }
        Cell::Float(f) => {
            ws.write_string(row, col, f.to_string())?;
        }
        Cell::Bool(b) => {
            ws.write_boolean(row, col, *b)?;
        }
        Cell::Empty => {}
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub(super) enum XlsxExportError {
    #[error("more than {XLSX_MAX_DATA_ROWS} rows: a sheet cannot hold them")]
    TooManyRows,
    #[error(transparent)]
    Xlsx(#[from] XlsxError),
    /// The temporary file the workbook is written to.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One sheet named after the import type, header row first, in
/// constant-memory mode: each row goes to a temporary file once the next
/// one starts.
pub(super) struct XlsxExport {
    wb: Workbook,
    next_row: u32,
    quoted: Format,
}

impl XlsxExport {
    pub(super) fn new(import_type: ImportType) -> Result<XlsxExport, XlsxError> {
        let mut wb = Workbook::new();
        // A full sheet of long entreprises can pass ZIP's 4 GB per entry.
        wb.use_zip_large_file(true);
        let bold = Format::new().set_bold();
        let quoted = Format::new().set_quote_prefix();
        let sheet = wb
            .add_worksheet_with_constant_memory()?
            .set_name(import_type.as_str())?;
        sheet.set_freeze_panes(1, 0)?;
        for (c, field) in columns(import_type).iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, field.name(), &bold)?;
        }
        Ok(XlsxExport {
            wb,
            next_row: 1,
            quoted,
        })
    }

    pub(super) fn add(&mut self, rows: &[Vec<Cell>]) -> Result<(), XlsxExportError> {
        let sheet = self.wb.worksheet_from_index(0)?;
        for row in rows {
            if self.next_row > XLSX_MAX_DATA_ROWS {
                return Err(XlsxExportError::TooManyRows);
            }
            for (c, cell) in row.iter().enumerate() {
                write_cell(sheet, self.next_row, c as u16, cell, &self.quoted)?;
            }
            self.next_row += 1;
        }
        Ok(())
    }

    /// Writes the whole workbook to `out`.
    pub(super) fn finish<W: std::io::Write + Send>(mut self, out: W) -> Result<(), XlsxError> {
        self.wb.save_to_writer(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use foxflow_domain::records::{ColumnMap, Record};
    use foxflow_domain::values::NafCode;
    use std::collections::HashMap;

    fn naf() -> HashMap<NafCode, String> {
        ["43.22A", "43.21A"]
            .into_iter()
            .map(|c| (NafCode::parse(c).unwrap(), format!("libellé {c}")))
            .collect()
    }

    /// A row as the importer parses it from the CSV fields this module writes,
    /// the `'` marker dropped as the CSV reader does.
    fn reparse(import_type: ImportType, cells: &[Cell]) -> Record {
        let headers: Vec<String> = columns(import_type).iter().map(|f| f.name().to_owned()).collect();
        let map = ColumnMap::new(import_type, &headers).unwrap();
        assert!(map.unknown_columns().is_empty(), "{:?}", map.unknown_columns());
        assert_eq!(cells.len(), headers.len(), "one cell per column");
        let fields: Vec<String> = cells
            .iter()
            .map(|c| {
                let f = csv_field(c);
                f.strip_prefix('\'').unwrap_or(&f).to_owned()
            })
            .collect();
        map.parse_row_detailed(&fields, &naf()).unwrap().record
    }

    #[test]
    fn every_header_is_the_importers_own_name_for_its_field() {
        for t in ImportType::ALL {
            let headers: Vec<String> = columns(t).iter().map(|f| f.name().to_owned()).collect();
            let mapping = foxflow_domain::headers::HeaderMapping::new(t, &headers);
            for (i, f) in columns(t).iter().enumerate() {
                assert_eq!(mapping.column(*f), Some(i), "{t}: {f}");
            }
            assert!(mapping.ignored().is_empty(), "{t}");
        }
    }

    #[test]
    fn an_entreprise_reads_back_as_stored() {
        let cells = entreprise_cells(exports::EntrepriseExport {
            id: 1,
            siren: "732829320".into(),
            siret: Some("73282932000074".into()),
            nom: "=HYPERLINK(\"x\")".into(),
            nom_commercial: Some("Plomberie Dupont & Fils".into()),
            adresse: Some("12 rue de l’Église".into()),
            code_postal: Some("01000".into()),
            ville_nom: Some("Bourg-en-Bresse".into()),
            naf_code: Some("43.22A".into()),
            naf_libelle: Some("Plomberie".into()),
            telephone: Some("+33474380000".into()),
            email_contact: Some("contact@dupont.fr".into()),
            site_web: Some("https://www.dupont.fr".into()),
            is_active: false,
        });
        let Record::Entreprise(e) = reparse(ImportType::Entreprises, &cells) else {
            panic!("not an entreprise")
        };
        assert_eq!(e.siret.unwrap().as_str(), "73282932000074");
        assert_eq!(e.nom, "=HYPERLINK(\"x\")");
        assert_eq!(e.adresse.as_deref(), Some("12 rue de l’Église"));
        assert_eq!(e.code_postal.unwrap().as_str(), "01000");
        assert_eq!(e.naf_libelle.as_deref(), Some("Plomberie"));
        assert_eq!(e.telephone.unwrap().as_str(), "+33474380000");
        assert_eq!(e.site_web.unwrap().as_str(), "https://www.dupont.fr");
        assert_eq!(e.is_active, Some(false));
    }

    #[test]
    fn a_ville_reads_back_as_stored() {
        let cells = ville_cells(exports::VilleExport {
            id: 1,
            nom: "Ajaccio".into(),
            code_postal: "20000".into(),
            departement: Some("2A".into()),
            region: Some("Corse".into()),
            lat: Some(41.919_229_123_456_78),
            lng: Some(-8.738_635),
            population: Some(71_361),
        });
        let Record::Ville(v) = reparse(ImportType::Villes, &cells) else {
            panic!("not a ville")
        };
        assert_eq!(v.departement.as_deref(), Some("2A"));
        assert_eq!(v.lat, Some(41.919_229_123_456_78));
        assert_eq!(v.lng, Some(-8.738_635));
        assert_eq!(v.population, Some(71_361));
    }

    #[test]
    fn a_sous_categorie_reads_back_as_stored() {
        let cells = sous_categorie_cells(exports::SousCategorieExport {
            id: 1,
            nom: "Plombier".into(),
            categorie: "Bâtiment".into(),
            slug: "plombier".into(),
            description: Some("- eau\n- gaz".into()),
            meta_description: None,
            mots_cles: Some("plomberie, fuite".into()),
            ordre: -2,
            naf_codes: vec!["43.21A".into(), "43.22A".into()],
        });
        let Record::SousCategorie(s) = reparse(ImportType::SousCategories, &cells) else {
            panic!("not a sous-catégorie")
        };
        assert_eq!(s.categorie, "Bâtiment");
        assert_eq!(s.description.as_deref(), Some("- eau\n- gaz"));
        assert_eq!(s.ordre, Some(-2));
        let codes: Vec<&str> = s.naf_codes.iter().map(NafCode::as_str).collect();
        assert_eq!(codes, ["43.21A", "43.22A"]);
    }

    #[test]
    fn csv_is_bom_semicolon_and_formula_safe() {
        let rows = vec![vec![
            Cell::Text("a;b".into()),
            Cell::Text("+33474380000".into()),
            Cell::Float(-1.5),
            Cell::Empty,
        ]];
        let out = csv_chunk(
            Some(&[Field::Nom, Field::Telephone, Field::Lng, Field::Lat]),
            &rows,
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "\u{feff}nom;telephone;lng;lat\r\n\"a;b\";'+33474380000;-1.5;\r\n"
        );
    }

    #[test]
    fn numbers_excel_cannot_hold_stay_text() {
        assert!(excel_keeps(45.9578));
        assert!(excel_keeps(-0.5));
        assert!(!excel_keeps(41.919_229_123_456_78));
    }
}
