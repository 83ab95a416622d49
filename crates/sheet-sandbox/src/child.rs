//! The reader child: limits itself, reads the file on stdin, writes frames on stdout.
//!
//! Everything here runs in the `foxflow-sheet-reader` process, never in the worker. The limits
//! are set before the first byte of the file is read, so whatever the parser does with a hostile
//! file — loop, allocate, abort — happens inside the budget, and the kernel ends it there.

use crate::protocol::{FrameRef, Request, write_frame};
use rlimit::Resource;
use std::io::{self, BufWriter, Cursor, Read, Write};
use std::process::ExitCode;

/// Exit codes the worker tells apart (a signal is the kernel's budget).
pub const EXIT_BAD_REQUEST: u8 = 2;
pub const EXIT_LIMITS: u8 = 3;
pub const EXIT_OUTPUT: u8 = 4;

/// The child's `main`.
pub fn serve() -> ExitCode {
    let request = match Request::from_args(std::env::args().skip(1)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("foxflow-sheet-reader: {e}");
            return ExitCode::from(EXIT_BAD_REQUEST);
        }
    };
    if let Err(e) = limit_self(&request) {
        eprintln!("foxflow-sheet-reader: cannot set its resource limits: {e}");
        return ExitCode::from(EXIT_LIMITS);
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    match read(&request, io::stdin(), &mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The worker hung up (it stopped waiting, or shuts down): nobody to tell.
        Err(_) => ExitCode::from(EXIT_OUTPUT),
    }
}

/// The budget, set on this process by itself. CPU: the kernel sends SIGXCPU at the soft limit
/// (which terminates) and SIGKILL one second later. Memory: address space, so an allocation past
/// it fails and Rust aborts. No core file (a dump of a budget-sized heap is the last thing a full
/// node needs), no file written, no file opened beyond the three it has.
fn limit_self(request: &Request) -> io::Result<()> {
    let cpu = request.cpu.as_secs().max(1);
    Resource::CORE.set(0, 0)?;
    Resource::CPU.set(cpu, cpu + 1)?;
    Resource::AS.set(request.memory_bytes, request.memory_bytes)?;
    Resource::FSIZE.set(0, 0)?;
    Resource::NOFILE.set(16, 16)?;
    Ok(())
}

/// Reads the file and writes its frames: `H`, every `R`, then `E`, or `F` at the first
/// file-level problem. `Err` only when the output cannot be written.
pub fn read(
    request: &Request,
    mut input: impl Read + Send + 'static,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut scratch = Vec::with_capacity(64 * 1024);
    let mut head = Vec::with_capacity(8192);
    if let Err(e) = (&mut input).take(8192).read_to_end(&mut head) {
        let e = foxflow_sheets::SheetError::from(e);
        return fail(out, &mut scratch, &e);
    }
    let format = match foxflow_sheets::detect_format(&head, &request.file_name) {
        Ok(f) => f,
        Err(e) => return fail(out, &mut scratch, &e),
    };
    let source = Box::new(Cursor::new(head).chain(input));
    let mut reader = match foxflow_sheets::open(format, source, &request.limits) {
        Ok(r) => r,
        Err(e) => return fail(out, &mut scratch, &e),
    };
    write_frame(
        out,
        &mut scratch,
        FrameRef::Header {
            format,
            headers: reader.headers(),
        },
    )?;
    let mut rows = 0u64;
    while let Some(row) = reader.next_row() {
        match row {
            Ok(row) => {
                rows += 1;
                write_frame(
                    out,
                    &mut scratch,
                    FrameRef::Row {
                        line: row.line,
                        cells: &row.fields,
                    },
                )?;
            }
            Err(e) => return fail(out, &mut scratch, &e),
        }
    }
    write_frame(out, &mut scratch, FrameRef::End { rows })
}

fn fail(out: &mut impl Write, scratch: &mut Vec<u8>, e: &foxflow_sheets::SheetError) -> io::Result<()> {
    write_frame(
        out,
        scratch,
        FrameRef::Failed {
            code: e.code(),
            message: &e.message(),
        },
    )
}
