//! An XLSX reader parses on a helper thread; dropping the reader must end that thread before
//! `drop` returns, even when the thread is blocked on a full channel with rows nobody will read.
//! Its own test binary: it counts this process's threads by name, and the tests of `sheets.rs`
//! open XLSX readers of their own in parallel.

use std::io::Cursor;

use foxflow_sheets::{FileFormat, Limits, open};

/// Threads of this process whose name starts like the parser's (`comm` keeps 15 bytes).
fn parser_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("foxflow-sheets"))
        .count()
}

fn workbook(rows: u32) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "siren").expect("header");
    sheet.write_string(0, 1, "nom").expect("header");
    for r in 1..=rows {
        sheet.write_string(r, 0, format!("{r:09}")).expect("cell");
        sheet.write_string(r, 1, format!("Entreprise {r}")).expect("cell");
    }
    book.save_to_buffer().expect("workbook")
}

#[test]
fn dropping_a_reader_halfway_ends_its_parsing_thread() {
    // Far more rows than the channel between the thread and the reader holds.
    let bytes = workbook(20_000);
    for _ in 0..5 {
        let mut reader = open(
            FileFormat::Xlsx,
            Box::new(Cursor::new(bytes.clone())),
            &Limits::default(),
        )
        .expect("the workbook opens");
        let first = reader.next_row().expect("a first row").expect("readable");
        assert_eq!(first.fields[0], "000000001");
        assert_eq!(parser_threads(), 1, "one parsing thread while the reader lives");
        drop(reader);
        assert_eq!(parser_threads(), 0, "the parsing thread outlived its reader");
    }
}
