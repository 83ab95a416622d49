//! CSV: encoding sniffing, an incremental decoding reader, delimiter detection, and the `csv`
//! crate for quoting. Memory is bounded by the largest record, never by the file.

use std::borrow::Cow;
use std::io::{self, Cursor, Read};

use encoding_rs::{Decoder, DecoderResult, UTF_8, WINDOWS_1252};

use crate::source::{RawRow, RawSource};
use crate::{Limits, SheetError};
use foxflow_domain::{Text, text};

/// How much of the file decides the encoding and the delimiter.
const SNIFF_BYTES: usize = 64 * 1024;
const IN_BUF: usize = 32 * 1024;
/// Windows-1252 can take up to 3 UTF-8 bytes per input byte.
const OUT_BUF: usize = 3 * IN_BUF + 16;

/// The text encoding a CSV was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    /// UTF-8 starting with a byte-order mark (Excel's "CSV UTF-8"); the mark is removed.
    Utf8Bom,
    Windows1252,
}

/// What was detected in a CSV, for logs and the import report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvInfo {
    pub encoding: TextEncoding,
    /// `b','`, `b';'` or `b'\t'`.
    pub delimiter: u8,
}

/// The sniffed prefix, then the rest of the upload, decoded to UTF-8.
type Decoded = DecodeReader<Cursor<Vec<u8>>, Box<dyn Read + Send>>;

pub(crate) struct CsvSource {
    csv: csv::Reader<Decoded>,
    record: csv::ByteRecord,
    max_columns: usize,
    /// Line of the last record returned, to place a decoding error.
    last_line: u64,
}

pub(crate) fn open(
    mut source: Box<dyn Read + Send>,
    limits: &Limits,
) -> Result<(CsvSource, CsvInfo), SheetError> {
    let prefix = read_prefix(&mut source)?;
    if prefix.starts_with(b"\xFF\xFE") || prefix.starts_with(b"\xFE\xFF") {
        return Err(SheetError::Encoding {
            detail: Text::new(
                "le fichier est en UTF-16, qui n’est pas pris en charge : enregistrez-le en CSV UTF-8",
                "the file is UTF-16, which is not supported: save it as CSV UTF-8",
            ),
        });
    }
    let encoding = sniff_encoding(&prefix);
    let delimiter = detect_delimiter(&decode_lossy(&prefix, encoding));
    let decoder = match encoding {
        TextEncoding::Utf8 | TextEncoding::Utf8Bom => UTF_8.new_decoder_with_bom_removal(),
        TextEncoding::Windows1252 => WINDOWS_1252.new_decoder_without_bom_handling(),
    };
    let input = DecodeReader::new(Cursor::new(prefix), source, decoder);
    let csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(input);
    tracing::debug!(?encoding, delimiter = %char::from(delimiter).escape_default(), "csv detected");
    let source = CsvSource {
        csv,
        record: csv::ByteRecord::new(),
        max_columns: limits.max_columns,
        last_line: 0,
    };
    Ok((source, CsvInfo { encoding, delimiter }))
}

fn read_prefix(source: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    source.take(SNIFF_BYTES as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}

fn sniff_encoding(prefix: &[u8]) -> TextEncoding {
    if prefix.starts_with(b"\xEF\xBB\xBF") {
        return TextEncoding::Utf8Bom;
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => TextEncoding::Utf8,
        // A character cut by the end of the prefix is not evidence against UTF-8.
        Err(e) if e.error_len().is_none() && prefix.len() == SNIFF_BYTES => TextEncoding::Utf8,
        Err(_) => TextEncoding::Windows1252,
    }
}

fn decode_lossy(prefix: &[u8], encoding: TextEncoding) -> Cow<'_, str> {
    match encoding {
        TextEncoding::Utf8 => String::from_utf8_lossy(prefix),
        TextEncoding::Utf8Bom => String::from_utf8_lossy(&prefix[3..]),
        TextEncoding::Windows1252 => WINDOWS_1252.decode_without_bom_handling(prefix).0,
    }
}

/// `;`, tab or `,`: the most frequent outside quotes in the first line that has content (lines of
/// nothing but delimiters, quotes and spaces are skipped). Ties go `;`, tab, `,`; none → `,`.
fn detect_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 3];
    // For a file of nothing but empty lines (`;;;`): the busiest of them.
    let mut busiest_blank = [0usize; 3];
    let mut in_quotes = false;
    let mut has_content = false;
    for ch in text.chars() {
        match ch {
            '"' => in_quotes = !in_quotes,
            '\n' | '\r' if !in_quotes => {
                if has_content {
                    break;
                }
                if counts.iter().sum::<usize>() > busiest_blank.iter().sum::<usize>() {
                    busiest_blank = counts;
                }
                counts = [0; 3];
            }
            ';' if !in_quotes => counts[0] += 1,
            '\t' if !in_quotes => counts[1] += 1,
            ',' if !in_quotes => counts[2] += 1,
            c if !c.is_whitespace() => has_content = true,
            _ => {}
        }
    }
    if !has_content && counts.iter().sum::<usize>() < busiest_blank.iter().sum::<usize>() {
        counts = busiest_blank;
    }
    let mut best = (b',', 0);
    for (delimiter, count) in [(b';', counts[0]), (b'\t', counts[1]), (b',', counts[2])] {
        if count > best.1 {
            best = (delimiter, count);
        }
    }
    best.0
}

impl RawSource for CsvSource {
    fn next_raw(&mut self) -> Option<Result<RawRow, SheetError>> {
        match self.csv.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let row = self.record.position().map_or(self.last_line + 1, |p| p.line());
                self.last_line = row;
                Some(self.convert(row))
            }
            Err(e) => Some(Err(self.map_error(e))),
        }
    }
}

impl CsvSource {
    fn convert(&self, row: u64) -> Result<RawRow, SheetError> {
        let fields = &self.record;
        // Refuse a very wide row before copying it.
        if fields.len() > self.max_columns {
            let used = fields
                .iter()
                .rposition(|f| std::str::from_utf8(f).map_or(true, |s| !s.trim().is_empty()))
                .map_or(0, |i| i + 1);
            if used > self.max_columns {
                return Err(SheetError::TooManyColumns {
                    location: text!("la ligne {row}", "row {row}"),
                    columns: used,
                    max: self.max_columns,
                });
            }
        }
        let mut cells = Vec::with_capacity(fields.len());
        for field in fields {
            // The decoding reader only ever yields UTF-8; this cannot fail, but must not panic.
            let text = std::str::from_utf8(field).map_err(|e| SheetError::Encoding {
                detail: text!(
                    "ligne {row} : UTF-8 invalide après décodage ({e})",
                    "line {row}: invalid UTF-8 after decoding ({e})"
                ),
            })?;
            cells.push(strip_text_marker(text).to_owned());
        }
        Ok(RawRow { row, cells })
    }

    fn map_error(&self, error: csv::Error) -> SheetError {
        let after = self.last_line;
        match error.into_kind() {
            csv::ErrorKind::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<DecodeError>()) {
                Some(DecodeError::InvalidUtf8 { offset }) => SheetError::Encoding {
                    detail: text!(
                        "UTF-8 invalide à l’octet {offset} (après la ligne {after}) : le début du fichier est \
                         en UTF-8, tout le fichier doit donc l’être ; enregistrez-le à nouveau en CSV UTF-8, \
                         ou entièrement en Windows-1252",
                        "invalid UTF-8 at byte {offset} (after line {after}): the start of the file is UTF-8, \
                         so all of it must be; save it again as CSV UTF-8, or entirely as Windows-1252"
                    ),
                },
                Some(DecodeError::Nul { offset }) => SheetError::FormatMismatch {
                    extension: "csv".to_owned(),
                    detail: text!(
                        "son contenu a un octet NUL à l’octet {offset} (après la ligne {after}) : ce n’est pas \
                         un fichier texte",
                        "its content has a NUL byte at byte {offset} (after line {after}): not a text file"
                    ),
                },
                None => SheetError::Io(io),
            },
            other => SheetError::unreadable("csv", format!("after line {after}: {other:?}")),
        }
    }
}

/// Why decoding stopped; carried inside an `io::Error` through the `csv` crate.
#[derive(Debug, Clone, Copy, thiserror::Error)]
enum DecodeError {
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 { offset: u64 },
    #[error("NUL byte at byte {offset}")]
    Nul { offset: u64 },
}

/// Decodes Windows-1252 or UTF-8 (validated, BOM removed) into UTF-8, incrementally. Bytes before
/// a problem are delivered first, so the records before it still parse; the error comes next.
struct DecodeReader<A, B> {
    inner: io::Chain<A, B>,
    decoder: Decoder,
    in_buf: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    /// Total input bytes read from `inner` before `in_buf`'s current content.
    in_offset: u64,
    inner_eof: bool,
    /// A NUL was found at this file offset; `in_len` stops just before it.
    nul_at: Option<u64>,
    out_buf: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    pending: Option<DecodeError>,
    finished: bool,
}

impl<A: Read, B: Read> DecodeReader<A, B> {
    fn new(first: A, rest: B, decoder: Decoder) -> Self {
        Self {
            inner: first.chain(rest),
            decoder,
            in_buf: vec![0; IN_BUF].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            in_offset: 0,
            inner_eof: false,
            nul_at: None,
            out_buf: vec![0; OUT_BUF].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            pending: None,
            finished: false,
        }
    }

    fn fill_input(&mut self) -> io::Result<()> {
        self.in_offset += self.in_len as u64;
        self.in_pos = 0;
        self.in_len = 0;
        let n = loop {
            match self.inner.read(&mut self.in_buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.inner_eof = true;
        } else if let Some(i) = self.in_buf[..n].iter().position(|&b| b == 0) {
            self.nul_at = Some(self.in_offset + i as u64);
            self.in_len = i;
        } else {
            self.in_len = n;
        }
        Ok(())
    }

    /// Decode some input into `out_buf` (or record why we cannot).
    fn decode_more(&mut self) -> io::Result<()> {
        if self.in_pos == self.in_len {
            if let Some(offset) = self.nul_at.take() {
                self.pending = Some(DecodeError::Nul { offset });
                return Ok(());
            }
            if !self.inner_eof {
                return self.fill_input();
            }
        }
        let last = self.inner_eof;
        let src = &self.in_buf[self.in_pos..self.in_len];
        let (result, read, written) =
            self.decoder
                .decode_to_utf8_without_replacement(src, &mut self.out_buf, last);
        let consumed_to = self.in_offset + (self.in_pos + read) as u64;
        self.in_pos += read;
        self.out_pos = 0;
        self.out_len = written;
        match result {
            DecoderResult::InputEmpty => self.finished = last,
            DecoderResult::OutputFull => {}
            DecoderResult::Malformed(bad, after) => {
                let offset = consumed_to - u64::from(after) - u64::from(bad);
                self.pending = Some(DecodeError::InvalidUtf8 { offset });
            }
        }
        Ok(())
    }
}

impl<A: Read, B: Read> Read for DecodeReader<A, B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out_len {
                let n = buf.len().min(self.out_len - self.out_pos);
                buf[..n].copy_from_slice(&self.out_buf[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if let Some(error) = self.pending {
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            self.decode_more()?;
        }
    }
}

/// A `'` before a character that starts a formula is the text marker a formula-safe CSV export
/// writes (Foxflow's own, docs/api.md "Exports"; OWASP's advice for CSV injection): Excel takes it
/// as "this is text" and drops it, so it is no part of the value.
fn strip_text_marker(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if matches!(rest.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r')) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_marker_before_a_formula_character_is_dropped() {
        assert_eq!(strip_text_marker("'=1+1"), "=1+1");
        assert_eq!(strip_text_marker("'+33474380000"), "+33474380000");
        assert_eq!(strip_text_marker("'s-Hertogenbosch"), "'s-Hertogenbosch");
        assert_eq!(strip_text_marker("'"), "'");
    }

    fn decode_all(bytes: &[u8], decoder: Decoder) -> (Vec<u8>, Option<io::Error>) {
        // Feed one byte at a time from the second reader to exercise every boundary.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                match buf.first_mut() {
                    Some(slot) => {
                        *slot = b;
                        self.0 = rest;
                        Ok(1)
                    }
                    None => Ok(0),
                }
            }
        }
        let mut reader = DecodeReader::new(Cursor::new(Vec::new()), Trickle(bytes), decoder);
        let mut out = Vec::new();
        let mut chunk = [0u8; 7];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn windows_1252_is_decoded_incrementally() {
        let (out, err) = decode_all(
            b"Caf\xe9 \x80 \x9c",
            WINDOWS_1252.new_decoder_without_bom_handling(),
        );
        assert!(err.is_none());
        assert_eq!(String::from_utf8(out).ok().as_deref(), Some("Café € œ"));
    }

    #[test]
    fn utf8_bom_is_removed_and_invalid_bytes_reported_after_the_good_ones() {
        let (out, err) = decode_all(
            b"\xEF\xBB\xBFok \xC3\xA9\nbad \xE9 here",
            UTF_8.new_decoder_with_bom_removal(),
        );
        assert_eq!(String::from_utf8(out).ok().as_deref(), Some("ok é\nbad "));
        let err = err
            .and_then(|e| e.into_inner())
            .and_then(|e| e.downcast::<DecodeError>().ok());
        assert!(
            matches!(err.as_deref(), Some(DecodeError::InvalidUtf8 { offset: 13 })),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_utf8_at_eof_is_an_error() {
        let (_, err) = decode_all(b"abc\xC3", UTF_8.new_decoder_with_bom_removal());
        assert!(err.is_some());
    }

    #[test]
    fn nul_is_reported_with_its_offset() {
        let (out, err) = decode_all(b"a,b\nc\0d", UTF_8.new_decoder_with_bom_removal());
        assert_eq!(out, b"a,b\nc");
        let err = err
            .and_then(|e| e.into_inner())
            .and_then(|e| e.downcast::<DecodeError>().ok());
        assert!(
            matches!(err.as_deref(), Some(DecodeError::Nul { offset: 5 })),
            "{err:?}"
        );
    }

    #[test]
    fn delimiters() {
        assert_eq!(detect_delimiter("Villes\nAmberieu (1500)\n"), b',');
        assert_eq!(detect_delimiter("a;b;c\n1,5;2;3"), b';');
        assert_eq!(detect_delimiter("a\tb\tc,d\n"), b'\t');
        assert_eq!(detect_delimiter("\"a;b\",c,d\n"), b',');
        assert_eq!(detect_delimiter(";;;\n\n  \nnom;ville\n"), b';');
        assert_eq!(detect_delimiter("\"multi\nline;;;\",x\n"), b',');
        assert_eq!(detect_delimiter(";;;\r\n ; \r\n"), b';');
    }

    #[test]
    fn encoding_sniff() {
        assert_eq!(sniff_encoding(b"abc"), TextEncoding::Utf8);
        assert_eq!(sniff_encoding("é".as_bytes()), TextEncoding::Utf8);
        assert_eq!(sniff_encoding(b"\xEF\xBB\xBFabc"), TextEncoding::Utf8Bom);
        assert_eq!(sniff_encoding(b"caf\xe9"), TextEncoding::Windows1252);
    }
}
