//! The OLE2 compound-file layer of calamine 0.38 (`src/cfb.rs`), mirrored step for step so that we
//! extract exactly the `Workbook` stream calamine will parse, plus the bounds calamine lacks:
//! a sector chain that loops (calamine follows the directory chain with no length limit and grows
//! its buffer forever), more FAT sectors than the file has sectors (a 10 MB file could make it
//! allocate over a gigabyte), and the slicing it would panic on.

use std::io::{Cursor, Read};

use encoding_rs::UTF_16LE;

use crate::detect::OLE2_MAGIC;

const RESERVED_SECTORS: u32 = 0xFFFF_FFFA;
const DIFSECT: u32 = 0xFFFF_FFFC;
const ENDOFCHAIN: u32 = 0xFFFF_FFFE;

#[derive(Debug)]
pub(super) enum CfbError {
    /// calamine fails on this too (with its own error), or moves on to the next stream name.
    Invalid(String),
    /// calamine would loop, balloon or panic here: refuse the file.
    Hostile(String),
}

type Result<T> = std::result::Result<T, CfbError>;

fn invalid(detail: impl Into<String>) -> CfbError {
    CfbError::Invalid(detail.into())
}

fn hostile(detail: impl Into<String>) -> CfbError {
    CfbError::Hostile(detail.into())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn to_u32(b: &[u8]) -> Result<impl Iterator<Item = u32> + '_> {
    // calamine asserts this and would panic.
    if !b.len().is_multiple_of(4) {
        return Err(hostile("a FAT/DIFAT sector is cut short by the end of the file"));
    }
    Ok(b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
}

/// calamine's `Sectors`: a lazily filled copy of the file after the header, read sequentially
/// from the shared reader (mini sectors read from the same reader, wherever it stands).
struct Sectors {
    data: Vec<u8>,
    size: usize,
    maxid: u32,
}

impl Sectors {
    fn get(&mut self, id: u32, r: &mut Cursor<&[u8]>) -> Result<&[u8]> {
        if self.maxid < id {
            return Err(invalid(format!("sector {id} points past the end of the file")));
        }
        let start = id as usize * self.size;
        let end = start + self.size;
        if end > self.data.len() {
            let mut len = self.data.len();
            self.data.resize(end, 0);
            while len < end {
                let read = r
                    .read(&mut self.data[len..end])
                    .map_err(|e| invalid(e.to_string()))?;
                if read == 0 {
                    if len < start {
                        return Err(hostile(format!("sector {id} lies beyond the end of the file")));
                    }
                    return Ok(&self.data[start..len]);
                }
                len += read;
            }
        }
        Ok(&self.data[start..end])
    }

    fn get_chain(&mut self, mut id: u32, fats: &[u32], r: &mut Cursor<&[u8]>, len: usize) -> Result<Vec<u8>> {
        let mut chain = Vec::new();
        // A chain visits each sector at most once; more steps means it loops.
        let mut steps_left = self.maxid as usize + 1;
        while id != ENDOFCHAIN {
            if steps_left == 0 {
                return Err(hostile("a sector chain loops"));
            }
            steps_left -= 1;
            let sector = self.get(id, r)?;
            let to_copy = sector.len().min(len - chain.len());
            chain.extend_from_slice(&sector[..to_copy]);
            if chain.len() >= len {
                break;
            }
            id = *fats
                .get(id as usize)
                .ok_or_else(|| hostile("a sector chain leaves the allocation table"))?;
        }
        Ok(chain)
    }
}

struct Directory {
    name: String,
    start: u32,
    len: usize,
}

impl Directory {
    fn from_slice(buf: &[u8], large_sectors: bool) -> Self {
        let mut name = UTF_16LE.decode(&buf[..64]).0.into_owned();
        if let Some(l) = name.as_bytes().iter().position(|b| *b == 0) {
            name.truncate(l);
        }
        let start = u32_at(buf, 116);
        let len = if large_sectors {
            let v = u64::from_le_bytes([
                buf[120], buf[121], buf[122], buf[123], buf[124], buf[125], buf[126], buf[127],
            ]);
            usize::try_from(v).unwrap_or(usize::MAX)
        } else {
            u32_at(buf, 120) as usize
        };
        Self { name, start, len }
    }
}

/// The bytes of the `Workbook` stream (or `Book`, for BIFF5), as calamine would read them.
pub(super) fn workbook_stream(file: &[u8]) -> Result<Vec<u8>> {
    let mut reader = Cursor::new(file);
    let mut header = [0u8; 512];
    let n = reader.read(&mut header).map_err(|e| invalid(e.to_string()))?;
    if n < header.len() || header[..8] != *OLE2_MAGIC {
        return Err(invalid("not an OLE2 compound file"));
    }
    let version = u16_at(&header, 26);
    let sector_size = match u16_at(&header, 30) {
        0x0009 => 512usize,
        0x000C => {
            let mut rest = [0u8; 4096 - 512];
            reader.read_exact(&mut rest).map_err(|e| invalid(e.to_string()))?;
            4096
        }
        s => return Err(invalid(format!("invalid sector shift {s:#x}"))),
    };
    if u16_at(&header, 32) != 0x0006 {
        return Err(invalid("invalid mini-sector shift"));
    }
    let dir_start = u32_at(&header, 48);
    let mini_fat_start = u32_at(&header, 60);
    let mini_fat_len = u32_at(&header, 64) as usize;
    let difat_start = u32_at(&header, 68);
    let mut difat: Vec<u32> = to_u32(&header[76..512])?.collect();

    let maxid = file.len() / sector_size;
    let mut sectors = Sectors {
        data: Vec::with_capacity(1024),
        size: sector_size,
        maxid: maxid as u32,
    };

    let mut sector_id = difat_start;
    let mut difat_sectors = 0usize;
    while sector_id < RESERVED_SECTORS {
        difat_sectors += 1;
        if difat_sectors > maxid.saturating_add(1) {
            return Err(invalid("the DIFAT chain is longer than the file"));
        }
        difat.extend(to_u32(sectors.get(sector_id, &mut reader)?)?);
        sector_id = difat.pop().ok_or_else(|| invalid("empty DIFAT sector"))?;
    }

    let fat_sectors: Vec<u32> = difat.into_iter().filter(|id| *id < DIFSECT).collect();
    if fat_sectors.len() > maxid + 1 {
        return Err(hostile(format!(
            "{} FAT sectors declared in a file of {} sectors",
            fat_sectors.len(),
            maxid + 1
        )));
    }
    let mut fats = Vec::new();
    for id in fat_sectors {
        fats.extend(to_u32(sectors.get(id, &mut reader)?)?);
    }

    let dirs = sectors.get_chain(dir_start, &fats, &mut reader, usize::MAX)?;
    let dirs: Vec<Directory> = dirs
        .chunks(128)
        .filter(|c| c.len() == 128)
        .map(|c| Directory::from_slice(c, sector_size == 4096))
        .collect();
    let Some(root) = dirs.first() else {
        return Err(invalid("empty root directory"));
    };
    if version != 3 && root.start == ENDOFCHAIN {
        return Err(invalid("empty root directory"));
    }

    let (mini_fats, ministream) = if mini_fat_len > 0 {
        let ministream = sectors.get_chain(root.start, &fats, &mut reader, root.len)?;
        let minifat = sectors.get_chain(mini_fat_start, &fats, &mut reader, mini_fat_len * sector_size)?;
        let minifat: Vec<u32> = to_u32(&minifat)?.collect();
        (minifat, ministream)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut mini_sectors = Sectors {
        data: ministream,
        size: 64,
        maxid: (maxid * 8) as u32,
    };

    let mut get_stream = |name: &str| -> Result<Vec<u8>> {
        let Some(d) = dirs
            .iter()
            .find(|d| d.name.as_bytes().eq_ignore_ascii_case(name.as_bytes()))
        else {
            return Err(invalid(format!("no {name} stream")));
        };
        if d.len < 4096 {
            mini_sectors.get_chain(d.start, &mini_fats, &mut reader, d.len)
        } else {
            sectors.get_chain(d.start, &fats, &mut reader, d.len)
        }
    };
    match get_stream("Workbook") {
        Err(CfbError::Invalid(_)) => get_stream("Book"),
        other => other,
    }
}
