//! XLS (BIFF5/BIFF8 in an OLE2 compound file). calamine parses every sheet of an XLS when it
//! opens it, so the memory it will need is estimated first ([`biff::check`]) from the very
//! `Workbook` stream it will read ([`cfb::workbook_stream`]); then the first worksheet's range is
//! taken and the workbook dropped.

mod biff;
mod cfb;

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{Data, Range, Reader, SheetType, Xls, open_workbook_from_rs};

use crate::cell::data_to_string;
use crate::detect::OLE2_MAGIC;
use crate::source::{RawRow, RawSource};
use crate::{Limits, SheetError};
use foxflow_domain::Text;

const FORMAT: &str = "xls";

pub(crate) struct XlsSource {
    range: Range<Data>,
    next: usize,
    first_row: u64,
    first_col: usize,
}

pub(crate) fn open(bytes: Vec<u8>, limits: &Limits) -> Result<XlsSource, SheetError> {
    if !bytes.starts_with(OLE2_MAGIC) {
        return Err(SheetError::FormatMismatch {
            extension: FORMAT.to_owned(),
            detail: Text::new(
                "son contenu n’est pas un fichier composite OLE2",
                "its content is not an OLE2 compound file",
            ),
        });
    }
    precheck(&bytes, limits)?;
    let range = catch_unwind(AssertUnwindSafe(|| first_sheet(bytes)))
        .map_err(|panic| SheetError::from_panic(FORMAT, panic.as_ref()))??;
    let (first_row, first_col) = range.start().unwrap_or_default();
    Ok(XlsSource {
        range,
        next: 0,
        first_row: u64::from(first_row),
        first_col: first_col as usize,
    })
}

fn precheck(bytes: &[u8], limits: &Limits) -> Result<(), SheetError> {
    let stream = catch_unwind(|| cfb::workbook_stream(bytes))
        .map_err(|panic| SheetError::from_panic(FORMAT, panic.as_ref()))?
        .map_err(|e: cfb::CfbError| match e {
            cfb::CfbError::Invalid(detail) => SheetError::unreadable(FORMAT, detail),
            cfb::CfbError::Hostile(detail) => {
                SheetError::unreadable(FORMAT, format!("corrupt compound file: {detail}"))
            }
        })?;
    biff::check(&stream, limits)
}

fn first_sheet(bytes: Vec<u8>) -> Result<Range<Data>, SheetError> {
    let mut workbook: Xls<_> = open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e: calamine::XlsError| SheetError::unreadable(FORMAT, e.to_string()))?;
    let name = workbook
        .sheets_metadata()
        .iter()
        .find(|sheet| sheet.typ == SheetType::WorkSheet)
        .map(|sheet| sheet.name.clone())
        .ok_or_else(|| SheetError::unreadable(FORMAT, "the workbook has no worksheet"))?;
    workbook
        .worksheet_range(&name)
        .map_err(|e| SheetError::unreadable(FORMAT, e.to_string()))
}

impl RawSource for XlsSource {
    fn next_raw(&mut self) -> Option<Result<RawRow, SheetError>> {
        if self.next >= self.range.height() {
            return None;
        }
        let r = self.next;
        self.next += 1;
        let width = self.range.width();
        let mut cells = vec![String::new(); self.first_col];
        cells.extend((0..width).map(|c| self.range.get((r, c)).map(data_to_string).unwrap_or_default()));
        Some(Ok(RawRow {
            row: self.first_row + r as u64 + 1,
            cells,
        }))
    }
}
