//! The one error type of this crate. Every variant is file-level: once a reader has returned an
//! error it returns nothing more, and the caller ends the job (docs/spec.md §4.5 `error`).

use std::io;

use foxflow_domain::{Text, text};

/// Why a file cannot be read. [`SheetError::code`] is stable and safe to store or show;
/// [`SheetError::message`] is meant for an operator, in French and English, and names the row /
/// column / limit involved. `Display` is the English message (logs).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SheetError {
    /// The extension is not one we import.
    #[error("unsupported file type {extension:?}: expected .csv, .txt, .tsv, .xlsx or .xls")]
    UnknownFormat { extension: String },

    /// The content and the extension disagree (an XLS renamed `.csv`, a text file named `.xlsx`,
    /// a ZIP that is not an OOXML workbook, binary bytes in a CSV…).
    #[error("the file is named .{extension} but {}", detail.en)]
    FormatMismatch { extension: String, detail: Text },

    /// The container or the sheet is corrupt, truncated, password-protected, or made the parser fail.
    #[error("unreadable {format} file: {detail}")]
    Unreadable { format: &'static str, detail: String },

    /// Text that is neither UTF-8 nor Windows-1252 as detected, or UTF-16.
    #[error("text encoding problem: {}", detail.en)]
    Encoding { detail: Text },

    /// A row (or a sheet's declared extent) with more non-empty columns than allowed. Rows are
    /// named as a spreadsheet program numbers them: 1-based, blank rows included; for CSV the
    /// physical line where the record starts.
    #[error("{} has {columns} columns, more than the maximum of {max}", location.en)]
    TooManyColumns {
        location: Text,
        columns: usize,
        max: usize,
    },

    /// One cell is longer than allowed (`column` is 1-based).
    #[error("row {row}, column {column}: a cell of {chars} characters exceeds the maximum of {max}")]
    CellTooLong {
        row: u64,
        column: usize,
        chars: usize,
        max: usize,
    },

    /// More data rows than allowed, or a sheet that declares more rows than the format allows.
    #[error("{}", detail.en)]
    TooManyRows { detail: Text },

    /// An XLSX whose decompressed content is too large or too compressed.
    #[error("possible zip bomb: {detail}")]
    ZipBomb { detail: String },

    /// An XML part declaring a DTD or entities (entity-expansion attack).
    #[error("XML part {part:?} declares a DOCTYPE or ENTITY, which is not allowed")]
    XmlEntities { part: String },

    /// An XLSX shared-string table larger than allowed (declared or actual).
    #[error("the workbook has {count} shared strings, more than the maximum of {max}")]
    TooManySharedStrings { count: u64, max: u64 },

    /// A sheet whose extent would make the parser allocate more memory than allowed.
    #[error("sheet too large: {detail}")]
    SheetTooLarge { detail: String },

    /// Reading the file would take more CPU than a file is allowed (a formula bomb).
    #[error("file too complex: {detail}")]
    TooComplex { detail: String },

    /// The upload itself is larger than this reader accepts into memory.
    #[error("the file is larger than {max} bytes")]
    FileTooLarge { max: u64 },

    /// Reading the source failed (disk, network, storage): not the file's fault.
    #[error("could not read the uploaded file: {0}")]
    Io(#[from] io::Error),
}

impl SheetError {
    /// Every [`SheetError::code`], for a caller that receives one as text (the sandboxed
    /// reader's protocol) and needs it back as a `&'static str`.
    pub const CODES: &'static [&'static str] = &[
        "unknown_format",
        "format_mismatch",
        "unreadable_file",
        "encoding",
        "too_many_columns",
        "cell_too_long",
        "too_many_rows",
        "zip_bomb",
        "xml_entities",
        "too_many_shared_strings",
        "sheet_too_large",
        "file_too_complex",
        "file_too_large",
        "io",
    ];

    /// What the operator reads, in French and English. Technical details a parser gives
    /// (a corrupt record, a ZIP error) are quoted as the parser wrote them.
    pub fn message(&self) -> Text {
        match self {
            Self::UnknownFormat { extension } => text!(
                "type de fichier {extension:?} non pris en charge : les fichiers acceptés sont .csv, .txt, \
                 .tsv, .xlsx ou .xls",
                "unsupported file type {extension:?}: expected .csv, .txt, .tsv, .xlsx or .xls"
            ),
            Self::FormatMismatch { extension, detail } => detail.prefixed(
                &format!("le fichier porte l’extension .{extension} mais "),
                &format!("the file is named .{extension} but "),
            ),
            Self::Encoding { detail } => {
                detail.prefixed("problème d’encodage du texte : ", "text encoding problem: ")
            }
            Self::Unreadable { format, detail } => text!(
                "fichier {format} illisible : {detail}",
                "unreadable {format} file: {detail}"
            ),
            Self::TooManyColumns {
                location,
                columns,
                max,
            } => {
                let Text { fr, en } = location;
                text!(
                    "{fr} compte {columns} colonnes, plus que le maximum de {max}",
                    "{en} has {columns} columns, more than the maximum of {max}"
                )
            }
            Self::CellTooLong {
                row,
                column,
                chars,
                max,
            } => text!(
                "ligne {row}, colonne {column} : une cellule de {chars} caractères dépasse le maximum de {max}",
                "row {row}, column {column}: a cell of {chars} characters exceeds the maximum of {max}"
            ),
            Self::TooManyRows { detail } => detail.clone(),
            Self::ZipBomb { detail } => text!("bombe ZIP probable : {detail}", "possible zip bomb: {detail}"),
            Self::XmlEntities { part } => text!(
                "la partie XML {part:?} déclare un DOCTYPE ou une ENTITY, ce qui n’est pas accepté",
                "XML part {part:?} declares a DOCTYPE or ENTITY, which is not allowed"
            ),
            Self::TooManySharedStrings { count, max } => text!(
                "le classeur compte {count} chaînes partagées, plus que le maximum de {max}",
                "the workbook has {count} shared strings, more than the maximum of {max}"
            ),
            Self::SheetTooLarge { detail } => {
                text!("feuille trop grande : {detail}", "sheet too large: {detail}")
            }
            Self::TooComplex { detail } => {
                text!("fichier trop complexe : {detail}", "file too complex: {detail}")
            }
            Self::FileTooLarge { max } => text!(
                "le fichier dépasse {max} octets",
                "the file is larger than {max} bytes"
            ),
            Self::Io(e) => text!(
                "impossible de lire le fichier envoyé : {e}",
                "could not read the uploaded file: {e}"
            ),
        }
    }

    /// A stable snake_case identifier, e.g. for `last_error` or metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownFormat { .. } => "unknown_format",
            Self::FormatMismatch { .. } => "format_mismatch",
            Self::Unreadable { .. } => "unreadable_file",
            Self::Encoding { .. } => "encoding",
            Self::TooManyColumns { .. } => "too_many_columns",
            Self::CellTooLong { .. } => "cell_too_long",
            Self::TooManyRows { .. } => "too_many_rows",
            Self::ZipBomb { .. } => "zip_bomb",
            Self::XmlEntities { .. } => "xml_entities",
            Self::TooManySharedStrings { .. } => "too_many_shared_strings",
            Self::SheetTooLarge { .. } => "sheet_too_large",
            Self::TooComplex { .. } => "file_too_complex",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::Io(_) => "io",
        }
    }

    /// True when retrying the same file may succeed (the source could not be read); every other
    /// error is a property of the file itself.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io(_))
    }

    pub(crate) fn unreadable(format: &'static str, detail: impl Into<String>) -> Self {
        Self::Unreadable {
            format,
            detail: detail.into(),
        }
    }

    /// Map a panic caught around a third-party parser.
    pub(crate) fn from_panic(format: &'static str, payload: &(dyn std::any::Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        tracing::warn!(format, panic = %what, "spreadsheet parser panicked on an uploaded file");
        Self::unreadable(
            format,
            format!("the spreadsheet parser failed on this file ({what})"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case() {
        let e = SheetError::TooManyColumns {
            location: Text::new("la ligne 3", "row 3"),
            columns: 600,
            max: 512,
        };
        assert_eq!(e.code(), "too_many_columns");
        assert_eq!(
            e.to_string(),
            "row 3 has 600 columns, more than the maximum of 512"
        );
        assert_eq!(e.message().en, e.to_string());
        assert_eq!(
            e.message().fr,
            "la ligne 3 compte 600 colonnes, plus que le maximum de 512"
        );
        let io = SheetError::from(io::Error::other("disk"));
        assert_eq!(io.code(), "io");
        for e in [&e, &io] {
            assert!(SheetError::CODES.contains(&e.code()));
        }
        assert!(io.is_transient());
        assert!(!e.is_transient());
    }
}
