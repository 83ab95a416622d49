//! What the worker and the reader child say to each other.
//!
//! The worker starts the child with a [`Request`] as arguments and the file as its stdin. The
//! child answers on stdout with frames, `tag u8 | length u32 LE | payload`:
//!
//! | tag | payload | when |
//! |---|---|---|
//! | `H` | format `u8`, headers (a string list) | first, once |
//! | `R` | line `u64 LE`, cells (a string list) | one per data row |
//! | `F` | code, French message, English message (three strings) | last: the file cannot be imported |
//! | `E` | rows `u64 LE` | last: every row was sent |
//!
//! A string list is a `u32 LE` count then each string as `u32 LE` length + UTF-8 bytes. The
//! decoder trusts nothing it reads (the child parsed a hostile file): every length is checked
//! against what is left and against [`MAX_FRAME_BYTES`] before anything is allocated.

use foxflow_domain::Text;
use foxflow_sheets::{FileFormat, Limits};
use std::io::{self, Read, Write};
use std::time::Duration;

/// The largest frame either side accepts: a row at the readers' limits (512 cells of 32,767
/// characters of up to 4 bytes) fits, anything larger is a broken or hostile stream.
pub const MAX_FRAME_BYTES: u32 = 72 * 1024 * 1024;

pub(crate) const TAG_HEADER: u8 = b'H';
pub(crate) const TAG_ROW: u8 = b'R';
pub(crate) const TAG_FAILED: u8 = b'F';
pub(crate) const TAG_END: u8 = b'E';

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Header {
        format: FileFormat,
        headers: Vec<String>,
    },
    Row {
        line: u64,
        cells: Vec<String>,
    },
    Failed {
        code: String,
        message: Text,
    },
    End {
        rows: u64,
    },
}

/// The stream is not what a reader child writes.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the reader's output is malformed: {0}")]
    Malformed(&'static str),
    #[error("cannot read the reader's output: {0}")]
    Io(#[from] io::Error),
}

/// What the child reads, and the budget it sets on itself before reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The upload's name: its extension takes part in format detection.
    pub file_name: String,
    pub limits: Limits,
    /// `RLIMIT_CPU`, whole seconds (at least 1).
    pub cpu: Duration,
    /// `RLIMIT_AS`, bytes.
    pub memory_bytes: u64,
}

impl Request {
    /// The child's command-line arguments.
    pub fn to_args(&self) -> Vec<String> {
        let l = &self.limits;
        let mut args = vec![
            "--file-name".into(),
            self.file_name.clone(),
            "--cpu-seconds".into(),
            self.cpu.as_secs().max(1).to_string(),
            "--memory-bytes".into(),
            self.memory_bytes.to_string(),
            "--max-cell-chars".into(),
            l.max_cell_chars.to_string(),
            "--max-columns".into(),
            l.max_columns.to_string(),
            "--max-decompressed-bytes".into(),
            l.max_decompressed_bytes.to_string(),
            "--max-compression-ratio".into(),
            l.max_compression_ratio.to_string(),
            "--max-shared-strings".into(),
            l.max_shared_strings.to_string(),
        ];
        if let Some(rows) = l.max_rows {
            args.extend(["--max-rows".into(), rows.to_string()]);
        }
        args
    }

    /// Parses [`Request::to_args`]'s output; every option but `--max-rows` is required.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Request, String> {
        let mut file_name = None;
        let (mut cpu, mut memory) = (None, None);
        let mut limits = Limits {
            max_rows: None,
            ..Limits::default()
        };
        let mut seen = 0u8;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: not a number: {value:?}"))
            };
            match flag.as_str() {
                "--file-name" => file_name = Some(value.clone()),
                "--cpu-seconds" => cpu = Some(Duration::from_secs(number()?)),
                "--memory-bytes" => memory = Some(number()?),
                "--max-cell-chars" => limits.max_cell_chars = number()? as usize,
                "--max-columns" => limits.max_columns = number()? as usize,
                "--max-decompressed-bytes" => limits.max_decompressed_bytes = number()?,
                "--max-compression-ratio" => limits.max_compression_ratio = number()?,
                "--max-shared-strings" => limits.max_shared_strings = number()?,
                "--max-rows" => limits.max_rows = Some(number()?),
                other => return Err(format!("unknown option {other}")),
            }
            seen += 1;
        }
        match (file_name, cpu, memory) {
            (Some(file_name), Some(cpu), Some(memory_bytes)) if seen >= 8 => Ok(Request {
                file_name,
                limits,
                cpu,
                memory_bytes,
            }),
            _ => Err("missing options: run by the import-worker, not by hand".into()),
        }
    }
}

fn format_code(format: FileFormat) -> u8 {
    match format {
        FileFormat::Csv => 0,
        FileFormat::Xlsx => 1,
        FileFormat::Xls => 2,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_list<S: AsRef<str>>(out: &mut Vec<u8>, items: &[S]) {
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for s in items {
        put_str(out, s.as_ref());
    }
}

/// Writes one frame. `scratch` is reused between calls so a row costs no allocation.
pub(crate) fn write_frame(
    out: &mut impl Write,
    scratch: &mut Vec<u8>,
    frame: FrameRef<'_>,
) -> io::Result<()> {
    scratch.clear();
    let tag = match frame {
        FrameRef::Header { format, headers } => {
            scratch.push(format_code(format));
            put_list(scratch, headers);
            TAG_HEADER
        }
        FrameRef::Row { line, cells } => {
            scratch.extend_from_slice(&line.to_le_bytes());
            put_list(scratch, cells);
            TAG_ROW
        }
        FrameRef::Failed { code, message } => {
            put_str(scratch, code);
            put_str(scratch, &message.fr);
            put_str(scratch, &message.en);
            TAG_FAILED
        }
        FrameRef::End { rows } => {
            scratch.extend_from_slice(&rows.to_le_bytes());
            TAG_END
        }
    };
    let len = u32::try_from(scratch.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::other("a row too large to send"))?;
    out.write_all(&[tag])?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(scratch)
}

/// A frame to write, borrowing its content.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameRef<'a> {
    Header {
        format: FileFormat,
        headers: &'a [String],
    },
    Row {
        line: u64,
        cells: &'a [String],
    },
    Failed {
        code: &'a str,
        message: &'a Text,
    },
    End {
        rows: u64,
    },
}

/// Reads a frame's tag and length; `None` at a clean end of stream.
pub(crate) fn read_frame_head(input: &mut impl Read) -> Result<Option<(u8, u32)>, ProtocolError> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ProtocolError::Malformed("a frame cut short")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME_BYTES {
        return Err(ProtocolError::Malformed("a frame larger than allowed"));
    }
    Ok(Some((head[0], len)))
}

/// Reads the next whole frame; `None` at a clean end of stream.
pub fn read_frame(input: &mut impl Read) -> Result<Option<Frame>, ProtocolError> {
    let Some((tag, len)) = read_frame_head(input)? else {
        return Ok(None);
    };
    let mut payload = Vec::new();
    input.take(u64::from(len)).read_to_end(&mut payload)?;
    if payload.len() != len as usize {
        return Err(ProtocolError::Malformed("a frame cut short"));
    }
    decode(tag, &payload).map(Some)
}

/// Decodes one frame's payload.
pub fn decode(tag: u8, payload: &[u8]) -> Result<Frame, ProtocolError> {
    let mut p = Payload(payload);
    let frame = match tag {
        TAG_HEADER => {
            let format = match p.u8()? {
                0 => FileFormat::Csv,
                1 => FileFormat::Xlsx,
                2 => FileFormat::Xls,
                _ => return Err(ProtocolError::Malformed("an unknown format")),
            };
            Frame::Header {
                format,
                headers: p.list()?,
            }
        }
        TAG_ROW => Frame::Row {
            line: p.u64()?,
            cells: p.list()?,
        },
        TAG_FAILED => Frame::Failed {
            code: p.string()?,
            message: Text {
                fr: p.string()?,
                en: p.string()?,
            },
        },
        TAG_END => Frame::End { rows: p.u64()? },
        _ => return Err(ProtocolError::Malformed("an unknown frame")),
    };
    if !p.0.is_empty() {
        return Err(ProtocolError::Malformed("bytes after a frame's content"));
    }
    Ok(frame)
}

struct Payload<'a>(&'a [u8]);

impl Payload<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ProtocolError> {
        if n > self.0.len() {
            return Err(ProtocolError::Malformed("a length past the end of its frame"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self) -> Result<String, ProtocolError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::Malformed("text that is not UTF-8"))
    }

    fn list(&mut self) -> Result<Vec<String>, ProtocolError> {
        let count = self.u32()? as usize;
        // Each string takes at least its 4-byte length: a count larger than that is a lie, and
        // must not reserve memory.
        if count > self.0.len() / 4 {
            return Err(ProtocolError::Malformed("more strings than the frame can hold"));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.string()?);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(frame: FrameRef<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, &mut Vec::new(), frame).unwrap();
        out
    }

    #[test]
    fn frames_round_trip() {
        let headers = vec!["siren".to_owned(), "nom".to_owned()];
        let cells = vec!["732829320".to_owned(), "Besançon ☀".to_owned(), String::new()];
        let mut stream = encode(FrameRef::Header {
            format: FileFormat::Xlsx,
            headers: &headers,
        });
        stream.extend(encode(FrameRef::Row {
            line: 7,
            cells: &cells,
        }));
        let message = Text::new("ligne 2", "row 2");
        stream.extend(encode(FrameRef::Failed {
            code: "cell_too_long",
            message: &message,
        }));
        stream.extend(encode(FrameRef::End { rows: 1 }));
        let mut input = stream.as_slice();
        assert_eq!(
            read_frame(&mut input).unwrap(),
            Some(Frame::Header {
                format: FileFormat::Xlsx,
                headers
            })
        );
        assert_eq!(
            read_frame(&mut input).unwrap(),
            Some(Frame::Row { line: 7, cells })
        );
        assert_eq!(
            read_frame(&mut input).unwrap(),
            Some(Frame::Failed {
                code: "cell_too_long".to_owned(),
                message
            })
        );
        assert_eq!(read_frame(&mut input).unwrap(), Some(Frame::End { rows: 1 }));
        assert_eq!(read_frame(&mut input).unwrap(), None);
    }

    #[test]
    fn lying_lengths_are_refused_before_allocating() {
        // A row frame claiming 2^32-1 strings in 12 bytes.
        let mut payload = 1u64.to_le_bytes().to_vec();
        payload.extend(u32::MAX.to_le_bytes());
        assert!(decode(TAG_ROW, &payload).is_err());
        // A string longer than its frame.
        let mut payload = 1u64.to_le_bytes().to_vec();
        payload.extend(1u32.to_le_bytes());
        payload.extend(1000u32.to_le_bytes());
        assert!(decode(TAG_ROW, &payload).is_err());
        // A frame larger than any row.
        let mut stream = vec![TAG_ROW];
        stream.extend((MAX_FRAME_BYTES + 1).to_le_bytes());
        assert!(read_frame(&mut stream.as_slice()).is_err());
        // Cut short.
        assert!(read_frame(&mut [TAG_END, 8, 0].as_slice()).is_err());
        assert!(read_frame(&mut [TAG_END, 8, 0, 0, 0, 1].as_slice()).is_err());
    }

    #[test]
    fn requests_round_trip_through_arguments() {
        let request = Request {
            file_name: "--weird name.csv".into(),
            limits: Limits::default(),
            cpu: Duration::from_secs(30),
            memory_bytes: 512 << 20,
        };
        assert_eq!(Request::from_args(request.to_args()).unwrap(), request);
        let unlimited = Request {
            limits: Limits {
                max_rows: None,
                ..Limits::default()
            },
            ..request
        };
        assert_eq!(Request::from_args(unlimited.to_args()).unwrap(), unlimited);
        assert!(Request::from_args(Vec::new()).is_err());
    }
}
