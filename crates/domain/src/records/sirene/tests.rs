//! Sirene rows through the parser, with the register's own headers.

use super::*;
use crate::ImportType;
use crate::records::chosen_establishments;
use crate::records::columns::ColumnMap;
use crate::records::establishments::siren_number;
use crate::records::test_support::{error_codes, map, parse};
use crate::records::types::{EntrepriseRecord, Record, SkipReason};

/// `StockEtablissement` joined with `StockUniteLegale`, as INSEE names
/// the columns (a subset, in the register's order), plus one the
/// import has no use for.
const HEADERS: &[&str] = &[
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "etablissementSiege",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "denominationUniteLegale",
    "nomUniteLegale",
    "prenom1UniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "chiffreAffaires",
];

/// A row over [`HEADERS`] from the cells that matter here.
#[derive(Clone)]
struct Row {
    siren: &'static str,
    nic: &'static str,
    siret: &'static str,
    siege: &'static str,
    complement: &'static str,
    numero: &'static str,
    indice: &'static str,
    type_voie: &'static str,
    libelle: &'static str,
    cp: &'static str,
    commune: &'static str,
    etat: &'static str,
    enseigne: &'static str,
    denomination_usuelle: &'static str,
    naf_etab: &'static str,
    nomenclature_etab: &'static str,
    denomination: &'static str,
    nom: &'static str,
    prenom: &'static str,
    naf_ul: &'static str,
}

const BASE: Row = Row {
    siren: "732829320",
    nic: "00074",
    siret: "73282932000074",
    siege: "true",
    complement: "",
    numero: "12",
    indice: "B",
    type_voie: "AV",
    libelle: "DE LA REPUBLIQUE",
    cp: "75011",
    commune: "PARIS",
    etat: "A",
    enseigne: "",
    denomination_usuelle: "",
    naf_etab: "43.22A",
    nomenclature_etab: "NAFRev2",
    denomination: "PLOMBERIE DUPONT",
    nom: "",
    prenom: "",
    naf_ul: "43.22A",
};

impl Row {
    fn cells(&self) -> Vec<&'static str> {
        vec![
            self.siren,
            self.nic,
            self.siret,
            "O",
            "2001-03-12",
            self.siege,
            self.complement,
            self.numero,
            self.indice,
            self.type_voie,
            self.libelle,
            self.cp,
            self.commune,
            self.etat,
            self.enseigne,
            self.denomination_usuelle,
            self.naf_etab,
            self.nomenclature_etab,
            self.denomination,
            self.nom,
            self.prenom,
            self.naf_ul,
            if self.naf_ul.is_empty() { "" } else { "NAFRev2" },
            "1000",
        ]
    }
}

fn entreprise(m: &ColumnMap, row: &Row) -> EntrepriseRecord {
    match parse(m, &row.cells()).unwrap().record {
        Record::Entreprise(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_registers_columns_are_read_and_the_rest_ignored_quietly() {
    let m = map(ImportType::Entreprises, HEADERS);
    assert_eq!(m.unknown_columns(), ["chiffreAffaires"]);
    let p = parse(&m, &BASE.cells()).unwrap();
    let Record::Entreprise(e) = p.record else { panic!() };
    assert_eq!(e.siren.as_str(), "732829320");
    assert_eq!(e.siret.as_ref().map(Siret::as_str), Some("73282932000074"));
    assert_eq!(e.nom, "PLOMBERIE DUPONT");
    assert_eq!(e.nom_commercial, None);
    assert_eq!(e.adresse.as_deref(), Some("12 BIS AVENUE DE LA REPUBLIQUE"));
    assert_eq!(e.code_postal.as_ref().map(|c| c.as_str()), Some("75011"));
    assert_eq!(e.ville_nom.as_deref(), Some("PARIS"));
    assert_eq!(e.naf_code.as_ref().map(NafCode::as_str), Some("43.22A"));
    assert_eq!(e.is_active, Some(true));
    assert_eq!(e.establishment, Some(Establishment::Siege));
    // The address written out, and the libellé from the reference table.
    assert_eq!(p.normalized, 2);
}

#[test]
fn the_name_falls_back_to_the_establishment_then_the_person() {
    let m = map(ImportType::Entreprises, HEADERS);
    let individual = Row {
        denomination: "",
        nom: "MARTIN",
        prenom: "CLAIRE",
        ..BASE
    };
    assert_eq!(entreprise(&m, &individual).nom, "CLAIRE MARTIN");
    let with_enseigne = Row {
        enseigne: "SALON CLAIRE",
        ..individual.clone()
    };
    let e = entreprise(&map(ImportType::Entreprises, HEADERS), &with_enseigne);
    assert_eq!(e.nom, "SALON CLAIRE");
    assert_eq!(e.nom_commercial.as_deref(), Some("SALON CLAIRE"));
    let both = Row {
        denomination_usuelle: "CHEZ CLAIRE",
        ..with_enseigne
    };
    let e = entreprise(&map(ImportType::Entreprises, HEADERS), &both);
    assert_eq!(e.nom, "CHEZ CLAIRE");
    assert_eq!(e.nom_commercial.as_deref(), Some("SALON CLAIRE"));
    // A company keeps its denomination; its enseigne is the nom commercial.
    let company = Row {
        enseigne: "DUPONT EXPRESS",
        ..BASE
    };
    let e = entreprise(&map(ImportType::Entreprises, HEADERS), &company);
    assert_eq!(e.nom, "PLOMBERIE DUPONT");
    assert_eq!(e.nom_commercial.as_deref(), Some("DUPONT EXPRESS"));
    // No diffusible name at all: an error row that says why.
    let hidden = Row {
        denomination: "",
        nom: "[ND]",
        prenom: "[ND]",
        ..BASE
    };
    let errors = parse(&map(ImportType::Entreprises, HEADERS), &hidden.cells()).unwrap_err();
    assert_eq!(
        error_codes(&errors),
        [(Some("denominationUniteLegale"), codes::REQUIRED)]
    );
    assert!(errors[0].message.en.contains("[ND]"), "{}", errors[0].message.en);
    assert!(
        errors[0].message.fr.contains("non diffusibles ([ND])"),
        "{}",
        errors[0].message
    );
    assert_eq!(errors[0].value, None);
}

#[test]
fn nd_is_an_empty_cell_and_a_normalisation() {
    let m = map(ImportType::Entreprises, HEADERS);
    let partial = Row {
        numero: "[ND]",
        indice: "",
        type_voie: "[ND]",
        libelle: "[ND]",
        complement: " [ND] ",
        nom: "[ND]",
        ..BASE
    };
    let p = parse(&m, &partial.cells()).unwrap();
    let Record::Entreprise(e) = p.record else { panic!() };
    assert_eq!(e.adresse, None);
    assert_eq!(e.code_postal.as_ref().map(|c| c.as_str()), Some("75011"));
    // Five `[ND]` cells and the libellé from the reference table.
    assert_eq!(p.normalized, 6);
    let ser = serde_json::to_string(&e).unwrap();
    assert!(!ser.contains("[ND]"), "{ser}");
}

#[test]
fn a_closed_establishment_is_inactive_and_an_old_naf_code_a_warning() {
    let m = map(ImportType::Entreprises, HEADERS);
    let closed = Row {
        siege: "false",
        etat: "F",
        naf_etab: "52.4Z",
        nomenclature_etab: "NAFRev1",
        naf_ul: "",
        ..BASE
    };
    let p = parse(&m, &closed.cells()).unwrap();
    let Record::Entreprise(e) = p.record else { panic!() };
    assert_eq!(e.is_active, Some(false));
    assert_eq!(e.naf_code, None);
    assert_eq!(e.establishment, Some(Establishment::Closed));
    assert_eq!(
        error_codes(&p.warnings),
        [(
            Some("activitePrincipaleEtablissement"),
            codes::NAF_OTHER_NOMENCLATURE
        )]
    );
    let bad = Row { etat: "X", ..BASE };
    assert_eq!(
        error_codes(&parse(&map(ImportType::Entreprises, HEADERS), &bad.cells()).unwrap_err()),
        [(
            Some("etatAdministratifEtablissement"),
            codes::INVALID_ETAT_ADMINISTRATIF
        )]
    );
}

#[test]
fn the_siret_comes_from_the_nic_when_the_file_has_no_siret() {
    let m = map(
        ImportType::Entreprises,
        &["siren", "nic", "denominationUniteLegale"],
    );
    let Record::Entreprise(e) = parse(&m, &["732829320", "74", "X"]).unwrap().record else {
        panic!()
    };
    assert_eq!(e.siret.as_ref().map(Siret::as_str), Some("73282932000074"));
    assert_eq!(e.establishment, None);
    assert_eq!(
        error_codes(&parse(&m, &["732829320", "75", "X"]).unwrap_err()),
        [(Some("nic"), codes::SIRET_CHECKSUM)]
    );
    assert_eq!(
        error_codes(&parse(&m, &["732829320", "123456", "X"]).unwrap_err()),
        [(Some("nic"), codes::INVALID_SIRET)]
    );
}

/// Five establishments of one SIREN, the siège fourth: rows that rank
/// no better than one already taken are skipped, so the siège is the
/// last one written; and within a batch only the siège is kept.
#[test]
fn the_siege_wins_else_the_first_active_establishment() {
    let m = map(ImportType::Entreprises, HEADERS);
    let closed = Row {
        nic: "00017",
        siret: "73282932000017",
        siege: "false",
        etat: "F",
        ..BASE
    };
    let active = Row {
        nic: "00025",
        siret: "73282932000025",
        siege: "false",
        ..BASE
    };
    let active_too = Row {
        nic: "00033",
        siret: "73282932000033",
        ..active.clone()
    };
    let after = Row {
        nic: "00041",
        siret: "73282932000041",
        ..active.clone()
    };
    let outcomes: Vec<Record> = [&closed, &active, &active_too, &BASE, &after]
        .iter()
        .map(|r| parse(&m, &r.cells()).unwrap().record)
        .collect();
    let taken: Vec<&str> = outcomes
        .iter()
        .filter_map(|r| match r {
            Record::Entreprise(e) => e.siret.as_ref().map(Siret::as_str),
            _ => None,
        })
        .collect();
    assert_eq!(taken, ["73282932000017", "73282932000025", "73282932000074"]);
    assert_eq!(
        outcomes[2],
        Record::Skipped(SkipReason::OtherEstablishment {
            siret: Some(Siret::parse("73282932000033").unwrap()),
            kept: Establishment::Active,
        })
    );
    assert!(matches!(
        outcomes[4],
        Record::Skipped(SkipReason::OtherEstablishment {
            kept: Establishment::Siege,
            ..
        })
    ));
    // One batch holding what the parser took: the siège alone is written.
    let rows: Vec<(u64, &EntrepriseRecord)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Record::Entreprise(e) => Some((i as u64, e)),
            _ => None,
        })
        .collect();
    let kept: Vec<u64> = chosen_establishments(rows).iter().map(|(i, _)| *i).collect();
    assert_eq!(kept, [3]);
    // Another SIREN is another choice.
    let other = Row {
        siren: "552100554",
        nic: "00013",
        siret: "55210055400013",
        siege: "false",
        ..BASE
    };
    assert!(matches!(
        parse(&m, &other.cells()).unwrap().record,
        Record::Entreprise(_)
    ));
}

#[test]
fn rows_of_other_files_are_all_written_in_file_order() {
    let m = map(ImportType::Entreprises, &["siren", "siret", "nom"]);
    let parsed: Vec<EntrepriseRecord> = [
        ["732829320", "73282932000017", "A"],
        ["732829320", "73282932000025", "B"],
    ]
    .iter()
    .map(|r| match parse(&m, r).unwrap().record {
        Record::Entreprise(e) => e,
        other => panic!("{other:?}"),
    })
    .collect();
    assert!(parsed.iter().all(|e| e.establishment.is_none()));
    let rows: Vec<(u64, &EntrepriseRecord)> = parsed.iter().enumerate().map(|(i, e)| (i as u64, e)).collect();
    assert_eq!(chosen_establishments(rows).len(), 2);
}

#[test]
fn siren_numbers() {
    for s in ["732829320", "000000000", "999999998"] {
        let n = siren_number(&Siren::parse(s).unwrap_or_else(|_| panic!("{s}")));
        assert_eq!(format!("{n:09}"), s);
    }
}
