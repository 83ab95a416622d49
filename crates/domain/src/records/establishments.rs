//! Which establishment of a SIREN the entreprise takes its SIRET and
//! address from (the Sirene rule, `sirene`'s module documentation). A leaf:
//! `columns` holds the run's choices, `sirene` reads the rows.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Mutex, PoisonError};

use crate::records::types::{EntrepriseRecord, Establishment, SkipReason};
use crate::values::Siren;

/// The best establishment taken so far from one file, per SIREN. A SIREN
/// is kept as its number (9 digits fit a `u32`): a million-row file costs
/// about 20 MB here. Behind a mutex so that `ColumnMap` stays `Sync`;
/// rows are parsed by one thread, so it is never contended.
#[derive(Default)]
pub(in crate::records) struct ChosenEstablishments(Mutex<HashMap<u32, Establishment>>);

/// The count only: a million SIRENs are no help in a log line.
impl std::fmt::Debug for ChosenEstablishments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        write!(f, "ChosenEstablishments({} SIRENs)", map.len())
    }
}

impl Clone for ChosenEstablishments {
    fn clone(&self) -> Self {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ChosenEstablishments(Mutex::new(map.clone()))
    }
}

impl ChosenEstablishments {
    /// Takes `e` when it ranks above what its SIREN has so far; otherwise
    /// says why it is skipped. The first of equals is kept (in INSEE's
    /// files, listed by SIRET, the one with the lowest NIC).
    pub(in crate::records) fn offer(&self, e: &EntrepriseRecord, rank: Establishment) -> Option<SkipReason> {
        let key = siren_number(&e.siren);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match map.entry(key) {
            Entry::Vacant(v) => {
                v.insert(rank);
                None
            }
            Entry::Occupied(mut o) if *o.get() < rank => {
                o.insert(rank);
                None
            }
            Entry::Occupied(o) => Some(SkipReason::OtherEstablishment {
                siret: e.siret.clone(),
                kept: *o.get(),
            }),
        }
    }
}

pub(in crate::records) fn siren_number(siren: &Siren) -> u32 {
    // A `Siren` is 9 ASCII digits: at most 999,999,999.
    siren
        .as_str()
        .bytes()
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'))
}

/// The entreprise rows of one batch to write: a Sirene file's
/// establishments reduced to the best of each SIREN (the highest
/// [`Establishment`], the first of equals), every other row as it is, in
/// file order. The rows left out change nothing: they count as `unchanged`.
pub fn chosen_establishments<K>(rows: Vec<(K, &EntrepriseRecord)>) -> Vec<(K, &EntrepriseRecord)> {
    let mut best: HashMap<&Siren, (usize, Establishment)> = HashMap::new();
    for (i, (_, e)) in rows.iter().enumerate() {
        let Some(rank) = e.establishment else { continue };
        match best.entry(&e.siren) {
            Entry::Vacant(v) => {
                v.insert((i, rank));
            }
            Entry::Occupied(mut o) if o.get().1 < rank => {
                o.insert((i, rank));
            }
            Entry::Occupied(_) => {}
        }
    }
    if best.is_empty() {
        return rows;
    }
    rows.into_iter()
        .enumerate()
        .filter(|(i, (_, e))| e.establishment.is_none() || best.get(&e.siren).is_some_and(|b| b.0 == *i))
        .map(|(_, row)| row)
        .collect()
}
