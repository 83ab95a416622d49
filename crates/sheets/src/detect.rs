//! Format detection: the content decides, the extension must agree (docs/spec.md §12).

use crate::{FileFormat, SheetError};
use foxflow_domain::Text;

pub(crate) const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
pub(crate) const OLE2_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// What the first bytes of a file look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    Zip,
    Ole2,
    Utf16,
    Text,
    Binary,
}

impl Content {
    fn describe(self) -> Text {
        let (fr, en) = match self {
            Self::Zip => (
                "son contenu est une archive ZIP (un classeur .xlsx ?)",
                "its content is a ZIP archive (an .xlsx workbook?)",
            ),
            Self::Ole2 => (
                "son contenu est un fichier composite OLE2 (un classeur .xls, ou un fichier Excel protégé \
                 par mot de passe)",
                "its content is an OLE2 compound file (an .xls workbook, or a password-protected Excel file)",
            ),
            Self::Utf16 => (
                "son contenu est du texte UTF-16, qui n’est pas pris en charge : enregistrez-le en CSV UTF-8",
                "its content is UTF-16 text, which is not supported: save it as CSV UTF-8",
            ),
            Self::Text => (
                "son contenu est du texte brut (un fichier .csv ?)",
                "its content is plain text (a .csv file?)",
            ),
            Self::Binary => (
                "son contenu est binaire, ce n’est pas un tableur",
                "its content is binary data, not a spreadsheet",
            ),
        };
        Text::new(fr, en)
    }
}

pub(crate) fn sniff(head: &[u8]) -> Content {
    if head.starts_with(ZIP_MAGIC) {
        Content::Zip
    } else if head.starts_with(OLE2_MAGIC) {
        Content::Ole2
    } else if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        Content::Utf16
    } else if looks_like_text(head) {
        Content::Text
    } else {
        Content::Binary
    }
}

/// No NUL byte, and either UTF-8 (a sequence cut by the end of `head` is fine) or plausible
/// Windows-1252: no C0 control other than tab, LF, FF, CR and SUB, none of the five bytes
/// Windows-1252 leaves undefined.
pub(crate) fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) if e.error_len().is_none() => true,
        Err(_) => head.iter().all(|&b| match b {
            b'\t' | b'\n' | 0x0C | b'\r' | 0x1A => true,
            0x81 | 0x8D | 0x8F | 0x90 | 0x9D => false,
            _ => b >= 0x20 && b != 0x7F,
        }),
    }
}

/// Decide the format of an upload from its first bytes (`head`: at least 8 bytes when the file
/// has them; pass up to 64 KiB so a CSV can be judged as text) and its name (only the extension is
/// used, case-insensitively). Extensions: `.csv`/`.txt`/`.tsv` → CSV, `.xlsx` → XLSX, `.xls` → XLS.
pub fn detect_format(head: &[u8], file_name: &str) -> Result<FileFormat, SheetError> {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let claimed = match extension.as_str() {
        "csv" | "txt" | "tsv" => FileFormat::Csv,
        "xlsx" => FileFormat::Xlsx,
        "xls" => FileFormat::Xls,
        _ => return Err(SheetError::UnknownFormat { extension }),
    };
    let content = sniff(head);
    let agrees = matches!(
        (claimed, content),
        (FileFormat::Csv, Content::Text)
            | (FileFormat::Xlsx, Content::Zip)
            | (FileFormat::Xls, Content::Ole2)
    );
    if agrees {
        return Ok(claimed);
    }
    if claimed == FileFormat::Csv && content == Content::Utf16 {
        return Err(SheetError::Encoding {
            detail: Content::Utf16.describe(),
        });
    }
    let detail = if head.is_empty() {
        Text::new("il est vide", "it is empty")
    } else {
        content.describe()
    };
    Err(SheetError::FormatMismatch { extension, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(head: &[u8], name: &str) -> &'static str {
        match detect_format(head, name) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn content_and_extension_must_agree() {
        assert_eq!(detect_format(b"a;b\n1;2\n", "x.CSV").ok(), Some(FileFormat::Csv));
        assert_eq!(detect_format(b"a\tb\n", "x.tsv").ok(), Some(FileFormat::Csv));
        assert_eq!(
            detect_format(b"PK\x03\x04rest", "x.Xlsx").ok(),
            Some(FileFormat::Xlsx)
        );
        assert_eq!(detect_format(OLE2_MAGIC, "x.xls").ok(), Some(FileFormat::Xls));
        assert_eq!(detect_format(b"", "empty.csv").ok(), Some(FileFormat::Csv));
        assert_eq!(code(OLE2_MAGIC, "x.csv"), "format_mismatch");
        assert_eq!(code(OLE2_MAGIC, "x.xlsx"), "format_mismatch");
        assert_eq!(code(b"a,b\n", "x.xlsx"), "format_mismatch");
        assert_eq!(code(b"a,b\0\n", "x.csv"), "format_mismatch");
        assert_eq!(code(b"", "x.xlsx"), "format_mismatch");
        assert_eq!(code(b"a,b\n", "x.ods"), "unknown_format");
        assert_eq!(code(b"a,b\n", "noextension"), "unknown_format");
        assert_eq!(code(b"\xFF\xFEa\0", "x.csv"), "encoding");
    }

    #[test]
    fn windows_1252_is_text_but_binary_is_not() {
        assert!(looks_like_text(b"Caf\xe9;Orl\xe9ans\r\n12,50 \x80\r\n"));
        assert!(looks_like_text("Café €".as_bytes()));
        // A multi-byte sequence cut by the end of the sniffed prefix is still UTF-8.
        assert!(looks_like_text(&"é".as_bytes()[..1]));
        assert!(!looks_like_text(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!looks_like_text(b"abc\x81def"));
        assert!(!looks_like_text(b"abc\x01def\xe9 "));
    }
}
