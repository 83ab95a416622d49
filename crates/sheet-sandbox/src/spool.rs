//! The reader's output, kept on disk until the child has finished.
//!
//! Nothing of a file is imported before the whole file has been read (a file with too many rows,
//! or a bad cell on its last line, imports nothing), so the rows wait in an anonymous temporary
//! file: the worker's memory holds one row at a time, whatever the file's size.

use crate::SandboxError;
use crate::protocol::{self, Frame, TAG_END, TAG_FAILED, TAG_HEADER, TAG_ROW};
use foxflow_domain::Text;
use foxflow_sheets::{FileFormat, SheetRow};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// A finished read: the header, the row count, and the rows, in file order.
#[derive(Debug)]
pub struct Spool {
    input: BufReader<File>,
    format: FileFormat,
    headers: Vec<String>,
    rows: u64,
    left: u64,
    /// Where the first row starts.
    start: u64,
}

impl Spool {
    /// Checks the stream's shape (`H`, `R`…, then `E` with the right count, or `F`) without
    /// decoding its rows, and rewinds to the first row. A file-level failure reported by the
    /// reader comes back as [`SandboxError::File`].
    pub fn open(mut file: File) -> Result<Spool, SandboxError> {
        file.seek(SeekFrom::Start(0))
            .map_err(|e| SandboxError::Worker(e.to_string()))?;
        let mut input = BufReader::with_capacity(256 * 1024, file);
        let (format, headers) = match next(&mut input)? {
            Some(Frame::Header { format, headers }) => (format, headers),
            Some(Frame::Failed { code, message }) => return Err(failed(&code, message)),
            _ => return Err(malformed("it does not start with the header")),
        };
        let start = input
            .stream_position()
            .map_err(|e| SandboxError::Worker(e.to_string()))?;
        let mut rows = 0u64;
        loop {
            let Some((tag, len)) =
                protocol::read_frame_head(&mut input).map_err(|e| malformed(&e.to_string()))?
            else {
                return Err(malformed("it ends before its last frame"));
            };
            match tag {
                TAG_ROW => {
                    rows += 1;
                    input
                        .seek_relative(i64::from(len))
                        .map_err(|e| SandboxError::Worker(e.to_string()))?;
                }
                TAG_END | TAG_FAILED => {
                    let mut payload = Vec::new();
                    (&mut input)
                        .take(u64::from(len))
                        .read_to_end(&mut payload)
                        .map_err(|e| SandboxError::Worker(e.to_string()))?;
                    match protocol::decode(tag, &payload).map_err(|e| malformed(&e.to_string()))? {
                        Frame::Failed { code, message } => return Err(failed(&code, message)),
                        Frame::End { rows: sent } if sent == rows => break,
                        _ => return Err(malformed("its row count is wrong")),
                    }
                }
                TAG_HEADER => return Err(malformed("a second header")),
                _ => return Err(malformed("an unknown frame")),
            }
        }
        if next(&mut input)?.is_some() {
            return Err(malformed("frames after its last one"));
        }
        input
            .seek(SeekFrom::Start(start))
            .map_err(|e| SandboxError::Worker(e.to_string()))?;
        Ok(Spool {
            input,
            format,
            headers,
            rows,
            left: rows,
            start,
        })
    }

    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// The header row (empty for an empty file).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Back to the first row, for another pass over the rows.
    pub fn rewind(&mut self) -> Result<(), SandboxError> {
        self.input
            .seek(SeekFrom::Start(self.start))
            .map_err(|e| SandboxError::Worker(e.to_string()))?;
        self.left = self.rows;
        Ok(())
    }

    /// How many data rows the file has.
    pub fn total_rows(&self) -> u64 {
        self.rows
    }
}

impl Iterator for Spool {
    type Item = Result<SheetRow, SandboxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(match next(&mut self.input) {
            Ok(Some(Frame::Row { line, cells })) => Ok(SheetRow { line, fields: cells }),
            Ok(_) => Err(malformed("a row is missing")),
            Err(e) => Err(e),
        })
    }
}

fn next(input: &mut impl Read) -> Result<Option<Frame>, SandboxError> {
    protocol::read_frame(input).map_err(|e| match e {
        protocol::ProtocolError::Io(e) => SandboxError::Worker(format!("cannot read the spooled rows: {e}")),
        e => malformed(&e.to_string()),
    })
}

fn malformed(detail: &str) -> SandboxError {
    tracing::error!(detail, "the file reader's output is malformed");
    SandboxError::unreadable(Text::new(
        "le lecteur de fichiers a échoué sur ce fichier (sa sortie est malformée)",
        "the file reader failed on this file (its output is malformed)",
    ))
}

/// A failure the reader reported, its code made `'static` (an unknown one is a reader bug).
fn failed(code: &str, message: Text) -> SandboxError {
    if code == "io" {
        // Its stdin, our temporary file, could not be read: the worker's problem.
        return SandboxError::Worker(message.en);
    }
    match foxflow_sheets::SheetError::CODES.iter().find(|c| **c == code) {
        Some(code) => SandboxError::File { code, message },
        None => SandboxError::unreadable(message),
    }
}
