//! A structure-aware XLSX: the input is a list of ZIP parts (see `foxflow_fuzz::split_parts`),
//! zipped here, so mutations reach calamine's XML parsing and our shared-string, dimension and
//! DTD checks instead of dying in the ZIP layer. The first byte's low bit picks Deflate or Stored.
#![no_main]

use foxflow_sheets::FileFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let parts = foxflow_fuzz::split_parts(rest);
    let zip = foxflow_fuzz::zip_parts(&parts, flags & 1 == 1);
    foxflow_fuzz::read_all(FileFormat::Xlsx, &zip);
});
