//! Seeded generators of realistic data: Luhn-valid SIREN/SIRET, real NAF
//! codes, French towns.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Appends the Luhn check digit that makes `digits` + check valid.
fn luhn_complete(digits: &[u8]) -> u8 {
    // Double every second digit counting from the right of the full number,
    // i.e. from the right of `digits` starting with the last one.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn digits_to_string(d: &[u8]) -> String {
    d.iter().map(|x| char::from(b'0' + x)).collect()
}

/// A Luhn-valid SIREN from 8 digits.
pub fn siren_from(base: u32) -> String {
    let mut d: Vec<u8> = format!("{:08}", base % 100_000_000)
        .bytes()
        .map(|b| b - b'0')
        .collect();
    d.push(luhn_complete(&d));
    digits_to_string(&d)
}

/// A Luhn-valid SIRET for a SIREN and a 4-digit establishment number.
pub fn siret_for(siren: &str, nic: u16) -> String {
    let mut d: Vec<u8> = format!("{siren}{:04}", nic % 10_000)
        .bytes()
        .map(|b| b - b'0')
        .collect();
    d.push(luhn_complete(&d));
    digits_to_string(&d)
}

pub const NAF_CODES: &[(&str, &str)] = &[
    ("43.22A", "Travaux d'installation d'eau et de gaz en tous locaux"),
    ("56.10A", "Restauration traditionnelle"),
    ("47.11D", "Supermarchés"),
    ("62.01Z", "Programmation informatique"),
    ("96.02A", "Coiffure"),
    ("86.21Z", "Activité des médecins généralistes"),
    (
        "45.20A",
        "Entretien et réparation de véhicules automobiles légers",
    ),
    ("10.71C", "Boulangerie et boulangerie-pâtisserie"),
];

pub const TOWNS: &[(&str, &str)] = &[
    ("Paris", "75001"),
    ("Lyon", "69001"),
    ("Marseille", "13001"),
    ("Bourg-en-Bresse", "01000"),
    ("Ambérieu-en-Bugey", "01500"),
    ("Toulouse", "31000"),
    ("Saint-Denis", "97400"),
    ("Ajaccio", "20000"),
];

pub const ENTREPRISE_HEADER: &str =
    "siren,siret,nom,nom_commercial,adresse,code_postal,ville_nom,naf_code,telephone,email_contact,site_web";

/// One CSV line of a company; `i` makes it unique, `seed` varies the rest.
pub fn entreprise_line(i: u32, rng: &mut StdRng) -> String {
    let siren = siren_from(10_000_000 + i);
    let siret = siret_for(&siren, 1 + (i % 50) as u16);
    let (naf, _) = NAF_CODES[rng.random_range(0..NAF_CODES.len())];
    let (town, cp) = TOWNS[rng.random_range(0..TOWNS.len())];
    let phone = format!(
        "01 {:02} {:02} {:02} {:02}",
        rng.random_range(0..100),
        rng.random_range(0..100),
        rng.random_range(0..100),
        rng.random_range(0..100)
    );
    format!(
        "{siren},{siret},Entreprise {i} SARL,Chez {i},{n} rue de la République,{cp},{town},{naf},{phone},contact{i}@exemple.fr,www.entreprise{i}.fr",
        n = 1 + i % 120
    )
}

/// A CSV of `n` distinct companies, deterministic for a seed.
pub fn entreprises_csv(n: u32, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(n as usize * 160);
    out.push_str(ENTREPRISE_HEADER);
    out.push('\n');
    for i in 0..n {
        out.push_str(&entreprise_line(i, &mut rng));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn_ok(s: &str) -> bool {
        let sum: u32 = s
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    #[test]
    fn generated_identifiers_are_luhn_valid() {
        assert_eq!(siren_from(73282932), "732829320");
        for i in 0..1000 {
            let s = siren_from(10_000_000 + i);
            assert!(luhn_ok(&s), "{s}");
            let t = siret_for(&s, (i % 9999) as u16);
            assert!(luhn_ok(&t) && t.starts_with(&s), "{t}");
        }
    }
}
