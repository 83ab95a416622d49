//! `foxctl naf load [FILE]`: refreshes `naf_codes` from INSEE's XLS (the
//! default, shipped inside the binary) or the flat CSV of sous-classes.

use anyhow::Context;
use foxflow_domain::naf_reference::{self, NafEntry};
use foxflow_sheets::{FileFormat, Limits};
use std::io::Cursor;
use std::path::Path;

/// INSEE's official list, as published (data/naf/).
const INSEE_XLS: &[u8] = include_bytes!("../../../data/naf/int_courts_naf_rev_2.xls");

pub fn read(file: Option<&Path>) -> anyhow::Result<Vec<NafEntry>> {
    let (name, bytes) = match file {
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => ("int_courts_naf_rev_2.xls".to_owned(), INSEE_XLS.to_vec()),
    };
    let format = foxflow_sheets::detect_format(&bytes, &name)?;
    let limits = Limits {
        max_rows: None,
        ..Limits::default()
    };
    let mut reader = foxflow_sheets::open(format, Box::new(Cursor::new(bytes)), &limits)?;
    let headers = reader.headers().to_vec();
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row() {
        rows.push(row?.fields);
    }
    let entries = match format {
        FileFormat::Csv => naf_reference::from_flat_rows(&headers, rows),
        FileFormat::Xls | FileFormat::Xlsx => {
            naf_reference::from_insee_rows(std::iter::once(headers).chain(rows))
        }
    }
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("{name} is not a NAF rév. 2 list"))?;
    anyhow::ensure!(!entries.is_empty(), "{name} holds no NAF sous-classe");
    Ok(entries)
}

/// After the migrations: a database whose NAF sous-classes lack their short
/// labels (a fresh one) gets them from INSEE's list shipped in the binary.
/// A database that has them is left alone, so a newer list loaded with
/// `foxctl naf load FILE` is never overwritten by the shipped one.
pub async fn fill_short_labels(pool: &foxflow_storage::DbPool) -> anyhow::Result<()> {
    let mut conn = foxflow_storage::pool::conn(pool).await?;
    let missing = foxflow_storage::reference::naf_without_short_labels(&mut conn).await?;
    if missing == 0 {
        return Ok(());
    }
    let entries = read(None)?;
    let c = foxflow_storage::reference::upsert_naf(&mut conn, &entries).await?;
    eprintln!(
        "NAF short labels were missing on {missing} sous-classes: loaded INSEE's list ({} created, {} updated)",
        c.created, c.updated
    );
    Ok(())
}
