//! A structure-aware XLS: the input is a BIFF `Workbook` stream, wrapped here in a valid OLE2
//! compound file, so mutations reach the BIFF pre-scan (`biff::check`) and calamine's record
//! parser rather than the sector tables (which `sheets_xls` covers).
#![no_main]

use foxflow_sheets::FileFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(file) = foxflow_fuzz::compound_file(data) {
        foxflow_fuzz::read_all(FileFormat::Xls, &file);
    }
});
