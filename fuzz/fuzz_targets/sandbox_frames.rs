//! The worker's side of the reader-child protocol (`foxflow_sheet_sandbox`): the child parsed a
//! hostile file, so what it writes back is untrusted too. Any byte stream must decode to frames
//! or a clean error, never a panic or an allocation its length fields ask for.
#![no_main]

use foxflow_sheet_sandbox::{Spool, protocol};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Ok(Some(_)) = protocol::read_frame(&mut input) {}
    // The spool's shape check, then its rows, as the import-worker reads them.
    let Ok(mut file) = tempfile::tempfile() else { return };
    if file.write_all(data).is_err() {
        return;
    }
    if let Ok(spool) = Spool::open(file) {
        for row in spool {
            if row.is_err() {
                break;
            }
        }
    }
});
