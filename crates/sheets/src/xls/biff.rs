//! A scan of the BIFF records calamine 0.38 (`src/xls.rs`) turns into memory when it opens a
//! workbook — it parses every sheet at open, reserves `rows × columns` cells from each sheet's
//! DIMENSIONS record (a u32 row count: one 14-byte record can ask for terabytes and abort the
//! process), then builds a dense `rows × columns` range per sheet from the cell positions, cloning
//! a shared string into every cell that references it. We add all of that up first and refuse the
//! file if it exceeds the budget.
//!
//! The record framing, the sheet walk and the shared-string layout are mirrored from calamine so
//! that the scan sees the records calamine will see.

use std::mem::size_of;

use calamine::{Cell, Data};

use crate::{Limits, SheetError};
use foxflow_domain::Text;

const FORMAT: &str = "xls";
/// calamine moves through Continue records with `Vec::remove(0)`, quadratic in their number.
const MAX_CONTINUES: usize = 8192;
/// Far more than any real workbook; each sheet is a pass over its records.
const MAX_SHEETS: usize = 4096;
/// calamine renders a formula's PtgAttrSpace tokens by inserting their spaces one character at
/// a time in front of the text built so far: quadratic in the spaces of one formula (measured:
/// 4,000 tokens of 255 spaces, an 18 KB file, took 11.6 CPU-seconds; the cost is about
/// spaces² × 1.2e-11 s). The workbook's sum of spaces² is kept under this, about a tenth of a
/// second; a real formula has a handful of spaces.
const MAX_FORMULA_SPACE_WORK: u64 = 10_000_000_000;

fn unreadable(detail: impl Into<String>) -> SheetError {
    SheetError::unreadable(FORMAT, detail)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

struct Record<'a> {
    typ: u16,
    data: &'a [u8],
    cont: std::collections::VecDeque<&'a [u8]>,
}

impl<'a> Record<'a> {
    fn continue_record(&mut self) -> bool {
        match self.cont.pop_front() {
            Some(next) => {
                self.data = next;
                true
            }
            None => false,
        }
    }

    fn skip(&mut self, mut len: usize) -> Result<(), SheetError> {
        while len > 0 {
            if self.data.is_empty() && !self.continue_record() {
                return Err(unreadable("a Continue record is too short"));
            }
            let l = len.min(self.data.len());
            self.data = &self.data[l..];
            len -= l;
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        4 + self.data.len() + self.cont.iter().map(|c| 4 + c.len()).sum::<usize>()
    }
}

/// calamine's `RecordIter`: a record followed by its Continue (0x003C) records.
struct RecordIter<'a> {
    stream: &'a [u8],
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, SheetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let header =
            |s: &'a [u8]| -> Option<(u16, usize)> { Some((u16_at(s, 0)?, usize::from(u16_at(s, 2)?))) };
        if self.stream.len() < 4 {
            return if self.stream.is_empty() {
                None
            } else {
                Some(Err(unreadable("truncated record")))
            };
        }
        let (typ, len) = header(self.stream)?;
        let Some(data) = self.stream.get(4..4 + len) else {
            return Some(Err(unreadable("a record runs past the end of the stream")));
        };
        self.stream = &self.stream[4 + len..];
        let mut cont = std::collections::VecDeque::new();
        while self.stream.len() > 4 && u16_at(self.stream, 0) == Some(0x003C) {
            let (_, len) = header(self.stream)?;
            let Some(chunk) = self.stream.get(4..4 + len) else {
                return Some(Err(unreadable(
                    "a Continue record runs past the end of the stream",
                )));
            };
            cont.push_back(chunk);
            if cont.len() > MAX_CONTINUES {
                return Some(Err(SheetError::SheetTooLarge {
                    detail: format!("a record is split into more than {MAX_CONTINUES} Continue records"),
                }));
            }
            self.stream = &self.stream[4 + len..];
        }
        Some(Ok(Record { typ, data, cont }))
    }
}

/// Upper bound, in UTF-8 bytes, of each shared string calamine will decode (3 bytes per
/// character at most), following its `parse_sst` / `read_rich_extended_string` / `read_dbcs`.
fn shared_string_sizes(r: &mut Record<'_>) -> Result<Vec<u64>, SheetError> {
    let short = || unreadable("the shared-string table is truncated");
    if r.data.len() < 8 {
        return Err(short());
    }
    r.data = &r.data[8..];
    let mut sizes = Vec::new();
    while !r.data.is_empty() || r.continue_record() {
        if r.data.is_empty() {
            sizes.push(0);
            continue;
        }
        if r.data.len() < 3 {
            return Err(short());
        }
        let cch = usize::from(u16_at(r.data, 0).ok_or_else(short)?);
        let flags = r.data[2];
        r.data = &r.data[3..];
        let mut high_byte = flags & 0x1 != 0;
        let mut runs = 0usize;
        let mut ext = 0usize;
        if flags & 0x8 != 0 {
            runs = usize::from(u16_at(r.data, 0).ok_or_else(short)?);
            r.data = &r.data[2..];
        }
        if flags & 0x4 != 0 {
            // calamine reads an i32 and casts it: a negative size fails its skip below.
            ext = i32_at(r.data, 0).ok_or_else(short)? as usize;
            r.data = &r.data[4..];
        }
        let mut left = cch;
        while left > 0 {
            let (chars, bytes) = if high_byte {
                let l = (r.data.len() / 2).min(left);
                (l, 2 * l)
            } else {
                let l = r.data.len().min(left);
                (l, l)
            };
            r.data = &r.data[bytes..];
            left -= chars;
            if left > 0 {
                if !r.continue_record() {
                    return Err(short());
                }
                let (&flag, rest) = r.data.split_first().ok_or_else(short)?;
                high_byte = flag & 0x1 != 0;
                r.data = rest;
            }
        }
        r.skip(runs * 4)?;
        r.skip(ext)?;
        sizes.push(3 * cch as u64);
    }
    Ok(sizes)
}

/// Bounding box of cell positions, as `Range::from_sparse` computes it.
#[derive(Default, Clone, Copy)]
struct BoundingBox {
    rows: Option<(u32, u32)>,
    cols: Option<(u32, u32)>,
}

impl BoundingBox {
    fn add(&mut self, row: u32, col: u32) {
        let grow =
            |span: Option<(u32, u32)>, v: u32| Some(span.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
        self.rows = grow(self.rows, row);
        self.cols = grow(self.cols, col);
    }

    fn area(&self) -> u64 {
        match (self.rows, self.cols) {
            (Some((r0, r1)), Some((c0, c1))) => u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1),
            _ => 0,
        }
    }

    fn columns_from_a(&self) -> u64 {
        self.cols.map_or(0, |(_, hi)| u64::from(hi) + 1)
    }
}

#[derive(Default)]
struct SheetCost {
    /// Capacity reserved from DIMENSIONS records.
    reserved_cells: u64,
    cells: u64,
    formulas: u64,
    values: BoundingBox,
    formula_box: BoundingBox,
    /// Heap bytes of the strings moved into the range.
    string_bytes: u64,
    /// Σ over formulas of (PtgAttrSpace spaces)²: the quadratic part of rendering them.
    formula_space_work: u64,
}

impl SheetCost {
    fn add_cell(&mut self, row: u32, col: u32) {
        self.cells += 1;
        self.values.add(row, col);
    }

    /// Held for as long as the workbook lives.
    fn persistent(&self) -> u64 {
        self.values.area() * size_of::<Data>() as u64
            + self.formula_box.area() * size_of::<String>() as u64
            + self.string_bytes
    }

    /// Peak while this sheet is being parsed (`Vec` growth can double).
    fn transient(&self) -> u64 {
        (self.reserved_cells + 2 * self.cells) * size_of::<Cell<Data>>() as u64
            + 2 * self.formulas * size_of::<Cell<String>>() as u64
    }
}

/// calamine's `parse_dimensions`, refusing what would make it overflow or over-reserve.
fn dimensions_cells(r: &[u8]) -> Result<u64, SheetError> {
    let field = |v: Option<u32>| v.ok_or_else(|| unreadable("truncated DIMENSIONS record"));
    let (rf, rl, mut cf, cl) = match r.len() {
        10 => (
            field(u16_at(r, 0).map(u32::from))?,
            field(u16_at(r, 2).map(u32::from))?,
            field(u16_at(r, 4).map(u32::from))?,
            field(u16_at(r, 6).map(u32::from))?,
        ),
        14 | 16 => (
            field(u32_at(r, 0))?,
            field(u32_at(r, 4))?,
            field(u16_at(r, 8).map(u32::from))?,
            field(u16_at(r, 10).map(u32::from))?,
        ),
        n => return Err(unreadable(format!("a DIMENSIONS record of {n} bytes"))),
    };
    if 0xFF < cf || cl < cf {
        cf = 0;
    }
    let ((r0, c0), (r1, c1)) = if 1 <= rl && 1 <= cl {
        ((rf, cf), (rl - 1, cl - 1))
    } else {
        ((rf, cf), (rf, cf))
    };
    if r1 < r0 || c1 < c0 {
        return Err(SheetError::SheetTooLarge {
            detail: "a DIMENSIONS record with a negative extent".to_owned(),
        });
    }
    Ok(u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1))
}

fn scan_sheet(sheet: &[u8], shared: &[u64], cost: &mut SheetCost) -> Result<usize, SheetError> {
    let mut scanned = 0usize;
    let mut seen_bof = false;
    let mut depth = 0usize;
    let mut formula_pos = (0u32, 0u32);
    for record in (RecordIter { stream: sheet }) {
        let r = record?;
        scanned += r.bytes();
        if depth > 0 {
            match r.typ {
                0x0809 => depth += 1,
                0x000A => depth -= 1,
                _ => {}
            }
            continue;
        }
        let d = r.data;
        let pos = || Some((u32::from(u16_at(d, 0)?), u32::from(u16_at(d, 2)?)));
        let cell = |cost: &mut SheetCost, (row, col): (u32, u32)| cost.add_cell(row, col);
        let label_bytes = |at: usize| u16_at(d, at).map_or(0, |cch| 3 * u64::from(cch));
        match r.typ {
            0x0809 if seen_bof => depth += 1,
            0x0809 => seen_bof = true,
            0x0200 => cost.reserved_cells = cost.reserved_cells.saturating_add(dimensions_cells(d)?),
            // Number, BoolErr, Rk: fixed-size values.
            0x0203 | 0x0205 | 0x027E if d.len() >= 8 => cell(cost, pos().unwrap_or_default()),
            // Label, RString: a string of their own.
            0x0204 | 0x00D6 if d.len() >= 6 => {
                cell(cost, pos().unwrap_or_default());
                cost.string_bytes += label_bytes(6);
            }
            // String: the text value of the previous formula.
            0x0207 => {
                cell(cost, formula_pos);
                cost.string_bytes += label_bytes(0);
            }
            // LabelSst: a clone of a shared string.
            0x00FD if d.len() >= 10 => {
                let index = u32_at(d, 6).map_or(usize::MAX, |i| i as usize);
                if let Some(size) = shared.get(index) {
                    cell(cost, pos().unwrap_or_default());
                    cost.string_bytes += size;
                }
            }
            // MulRk: one row, a run of columns.
            0x00BD if d.len() >= 6 => {
                let (row, first) = pos().unwrap_or_default();
                let count = (d.len() - 6).div_ceil(6) as u32;
                if count > 0 {
                    cell(cost, (row, first));
                    cost.cells += u64::from(count - 1);
                    cost.values.add(row, first.saturating_add(count - 1));
                }
            }
            // Formula: maybe a value, always the formula text.
            0x0006 if d.len() >= 20 => {
                formula_pos = pos().unwrap_or_default();
                cell(cost, formula_pos);
                cost.formulas += 1;
                cost.formula_box.add(formula_pos.0, formula_pos.1);
                // Rendered formula text: generous for sheet names and function names.
                cost.string_bytes += 64 + 32 * (d.len() as u64 - 20);
                let spaces = attr_spaces(formula_tokens(d));
                cost.formula_space_work = cost
                    .formula_space_work
                    .saturating_add(spaces.saturating_mul(spaces));
            }
            0x000A => break,
            _ => {}
        }
    }
    Ok(scanned)
}

/// A FORMULA record's token array (`rgce`), as calamine reads it: `cce` bytes after offset 22.
fn formula_tokens(d: &[u8]) -> &[u8] {
    let cce = u16_at(d, 20).map_or(0, usize::from);
    let tokens = d.get(22..).unwrap_or_default();
    &tokens[..cce.min(tokens.len())]
}

/// The spaces a formula's PtgAttrSpace tokens (`0x19`, then `0x40` or `0x41`, a space type of 0
/// to 6 and a count) ask for. An upper bound: every such four-byte run counts, even one that
/// sits inside another token's operand, so a real formula can only be overcounted, and only by
/// a few runs.
fn attr_spaces(rgce: &[u8]) -> u64 {
    rgce.windows(4)
        .filter(|w| w[0] == 0x19 && matches!(w[1], 0x40 | 0x41) && w[2] <= 6)
        .map(|w| u64::from(w[3]))
        .sum()
}

/// Refuse a workbook whose parse would cost calamine more than `max_decompressed_bytes`, or whose
/// first worksheet is wider than `max_columns`.
pub(super) fn check(stream: &[u8], limits: &Limits) -> Result<(), SheetError> {
    let mut sheets: Vec<(usize, u8)> = Vec::new();
    let mut shared: Vec<u64> = Vec::new();
    for record in (RecordIter { stream }) {
        let mut r = record?;
        match r.typ {
            0x0085 => {
                let (Some(pos), Some(&kind)) = (u32_at(r.data, 0), r.data.get(5)) else {
                    return Err(unreadable("a truncated BoundSheet record"));
                };
                sheets.push((pos as usize, kind));
                if sheets.len() > MAX_SHEETS {
                    return Err(SheetError::SheetTooLarge {
                        detail: format!("more than {MAX_SHEETS} sheets"),
                    });
                }
            }
            0x00FC => shared = shared_string_sizes(&mut r)?,
            0x000A => break,
            _ => {}
        }
    }

    let budget = limits.max_decompressed_bytes;
    // Shared strings, names, formats: bounded by the stream itself.
    let mut persistent = 3 * stream.len() as u64 + shared.iter().sum::<u64>();
    let mut peak = 0u64;
    let mut scanned = 0usize;
    let mut space_work = 0u64;
    let mut first_worksheet = true;
    for (pos, kind) in sheets {
        let sheet = stream
            .get(pos..)
            .ok_or_else(|| unreadable("a sheet starts past the end of the workbook"))?;
        let mut cost = SheetCost::default();
        scanned += scan_sheet(sheet, &shared, &mut cost)?;
        // Sheets are disjoint parts of the stream; overlapping ones would multiply the work.
        if scanned > 2 * stream.len() + 4096 {
            return Err(SheetError::SheetTooLarge {
                detail: "the workbook's sheets overlap".to_owned(),
            });
        }
        persistent += cost.persistent();
        peak = peak.max(cost.transient());
        space_work = space_work.saturating_add(cost.formula_space_work);
        if space_work > MAX_FORMULA_SPACE_WORK {
            return Err(SheetError::TooComplex {
                detail: "its formulas are padded with so many spacing tokens that reading them \
                         would take minutes of CPU"
                    .to_owned(),
            });
        }
        if kind == 0 && first_worksheet {
            first_worksheet = false;
            // The first worksheet's range is cloned once more when we take it.
            persistent += cost.persistent();
            let columns = cost.values.columns_from_a();
            if columns > limits.max_columns as u64 {
                return Err(SheetError::TooManyColumns {
                    location: Text::new("la première feuille", "the first sheet"),
                    columns: usize::try_from(columns).unwrap_or(usize::MAX),
                    max: limits.max_columns,
                });
            }
        }
        if persistent.saturating_add(peak) > budget {
            return Err(SheetError::SheetTooLarge {
                detail: format!(
                    "reading this workbook would take more than {} MiB of memory (limit {} MiB)",
                    persistent.saturating_add(peak) >> 20,
                    budget >> 20
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut out = typ.to_le_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn dimensions_that_would_abort_calamine_are_refused() {
        // rows 0..0xFFFF_FFFE, columns 0..255: terabytes reserved up front.
        let mut dims = Vec::new();
        dims.extend_from_slice(&0u32.to_le_bytes());
        dims.extend_from_slice(&u32::MAX.to_le_bytes());
        dims.extend_from_slice(&0u16.to_le_bytes());
        dims.extend_from_slice(&256u16.to_le_bytes());
        dims.extend_from_slice(&0u16.to_le_bytes());
        let mut stream = record(0x0809, &[0, 6, 0x10, 0]);
        let sheet_at = 4 + 4 + 4 + 10; // BOF, BoundSheet header + data, EOF
        stream.extend(record(0x0085, &[sheet_at as u8, 0, 0, 0, 0, 0]));
        stream.extend(record(0x000A, &[]));
        assert_eq!(stream.len(), sheet_at);
        stream.extend(record(0x0809, &[0, 6, 0x10, 0]));
        stream.extend(record(0x0200, &dims));
        stream.extend(record(0x000A, &[]));
        let err = check(&stream, &Limits::default()).err().map(|e| e.code());
        assert_eq!(err, Some("sheet_too_large"));
    }

    /// A formula bomb (issue 16): one FORMULA record of 4,000 PtgAttrSpace tokens of 255 spaces
    /// after a number, 16 KB. Unchecked, calamine spends about 12 CPU-seconds rendering it.
    fn formula_bomb_stream(tokens: usize) -> Vec<u8> {
        let mut rgce = vec![0x1E, 1, 0]; // PtgInt 1
        for _ in 0..tokens {
            rgce.extend_from_slice(&[0x19, 0x40, 0x00, 0xFF]);
        }
        let mut formula = vec![0u8; 20];
        formula[6..14].copy_from_slice(&1.0f64.to_le_bytes());
        formula.extend_from_slice(&(rgce.len() as u16).to_le_bytes());
        formula.extend_from_slice(&rgce);
        let mut stream = record(0x0809, &[0, 6, 0x05, 0]);
        let sheet_at = 4 + 4 + 4 + 6 + 4;
        stream.extend(record(0x0085, &[sheet_at as u8, 0, 0, 0, 0, 0]));
        stream.extend(record(0x000A, &[]));
        assert_eq!(stream.len(), sheet_at);
        stream.extend(record(0x0809, &[0, 6, 0x10, 0]));
        stream.extend(record(0x0006, &formula));
        stream.extend(record(0x000A, &[]));
        stream
    }

    #[test]
    fn a_formula_padded_with_spacing_tokens_is_too_complex() {
        let err = check(&formula_bomb_stream(4_000), &Limits::default())
            .err()
            .map(|e| e.code());
        assert_eq!(err, Some("file_too_complex"));
        // A real formula's few spaces are nothing.
        assert!(check(&formula_bomb_stream(3), &Limits::default()).is_ok());
    }

    #[test]
    fn a_negative_extent_is_refused() {
        let mut dims = Vec::new();
        dims.extend_from_slice(&5u32.to_le_bytes());
        dims.extend_from_slice(&3u32.to_le_bytes());
        dims.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
        assert!(dimensions_cells(&dims).is_err());
    }

    #[test]
    fn shared_strings_across_continue_records() {
        // SST header, one 4-char compressed string split by a Continue (which restates the flag).
        let mut sst = vec![1, 0, 0, 0, 1, 0, 0, 0];
        sst.extend_from_slice(&[4, 0, 0, b'a', b'b']);
        let mut stream = record(0x00FC, &sst);
        stream.extend(record(0x003C, &[0, b'c', b'd']));
        let mut iter = RecordIter { stream: &stream };
        let Some(Ok(mut r)) = iter.next() else {
            panic!("record expected")
        };
        assert_eq!(shared_string_sizes(&mut r).ok(), Some(vec![12]));
    }
}
