//! Any bytes, read as an uploaded .csv through `foxflow_sheets::open` (pre-checks included):
//! an `Err` is fine, a panic, an abort, a timeout or an RSS blow-up is a finding.
#![no_main]

use foxflow_sheets::FileFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    foxflow_fuzz::read_all(FileFormat::Csv, data);
});
