//! INSEE's Sirene files (docs/imports.md "Sirene (INSEE) files"): the
//! register's columns combined into an entreprise, and the choice of the
//! establishment that gives it its SIRET and address when a file holds
//! several of one SIREN.
//!
//! The choice is made in two places, because rows arrive one at a time and
//! are written in batches: the parser skips a row that ranks no better than
//! one already taken from the file ([`ChosenEstablishments`]), so a later
//! batch never overwrites a better establishment; within one batch, where a
//! better row may follow one already taken, [`chosen_establishments`](super::chosen_establishments) keeps
//! only the best.

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use super::address::AddressParts;
use super::cells::RowParser;
use super::limits;
use super::types::{Establishment, ReferenceData};
use crate::headers::Field;
use crate::normalize::{clean_text, excel_digits};
use crate::text;
use crate::text::Text;
use crate::values::{NafCode, Siren, Siret, ValueError, codes};

/// The nomenclature `NafCode` and the reference table are in; Sirene says
/// so in `nomenclatureActivitePrincipale*`.
const NAF_REV2: &str = "NAFRev2";

impl RowParser<'_> {
    /// `siret`, else `siren` + `nic` (Excel may have dropped the NIC's
    /// leading zeros: `13` is `00013`).
    pub(super) fn siret_or_nic(&mut self, siren: Option<&Siren>) -> Option<Siret> {
        if !self.is_blank(Field::Siret) {
            return self.value(Field::Siret, Siret::parse);
        }
        let raw = self.raw(Field::Nic)?;
        let nic = clean_text(raw).value;
        if nic.is_empty() {
            return None;
        }
        let siren = siren?;
        let parsed = excel_digits(&nic)
            .filter(|d| d.value.len() <= 5)
            .ok_or_else(|| {
                ValueError::new(
                    codes::INVALID_SIRET,
                    Text::new(
                        "un NIC compte 5 chiffres, par exemple 00013",
                        "a NIC is 5 digits, e.g. 00013",
                    ),
                )
            })
            .and_then(|d| Siret::parse(&format!("{siren}{:0>5}", d.value)));
        match parsed {
            Ok(siret) => {
                self.normalized += 1;
                Some(siret)
            }
            Err(e) => {
                self.error(Field::Nic, e);
                None
            }
        }
    }

    /// `nom`; in a Sirene file whose `denominationUniteLegale` is empty (an
    /// individual) or absent, the establishment's usual name or its
    /// enseigne, else the person's `prenom1UniteLegale nomUniteLegale`.
    pub(super) fn entreprise_nom(
        &mut self,
        denomination_usuelle: Option<&str>,
        enseigne: Option<&str>,
    ) -> Option<String> {
        if !self.is_blank(Field::Nom) {
            return self.text(Field::Nom, limits::NOM_ENTREPRISE);
        }
        let sources = [Field::DenominationUsuelle, Field::Enseigne, Field::NomPersonne];
        let Some(first_source) = sources.into_iter().find(|f| self.has(*f)) else {
            self.require(Field::Nom);
            return None;
        };
        if let Some(name) = denomination_usuelle.or(enseigne) {
            return Some(name.to_owned());
        }
        let prenom = self.text(Field::PrenomPersonne, limits::NOM_ENTREPRISE);
        if let Some(nom) = self.text(Field::NomPersonne, limits::NOM_ENTREPRISE) {
            let full = match prenom {
                Some(p) => format!("{p} {nom}"),
                None => nom,
            };
            return self.check_len(Field::NomPersonne, full, limits::NOM_ENTREPRISE);
        }
        let field = if self.has(Field::Nom) {
            Field::Nom
        } else {
            first_source
        };
        self.error(
            field,
            ValueError::new(
                codes::REQUIRED,
                Text::new(
                    "aucun nom à enregistrer : `denominationUniteLegale`, `denominationUsuelleEtablissement`, \
                     `enseigne1Etablissement` et `nomUniteLegale` sont vides ou non diffusibles ([ND])",
                    "no name to store: `denominationUniteLegale`, `denominationUsuelleEtablissement`, \
                     `enseigne1Etablissement` and `nomUniteLegale` are empty or not disseminated ([ND])",
                ),
            ),
        );
        None
    }

    /// `adresse`, else the Sirene parts assembled (see `address`).
    pub(super) fn adresse(&mut self) -> Option<String> {
        if !self.is_blank(Field::Adresse) {
            return self.text(Field::Adresse, limits::ADRESSE);
        }
        let numero = self.text(Field::NumeroVoie, limits::ADRESSE);
        let indice = self.text(Field::IndiceRepetition, limits::ADRESSE);
        let type_voie = self.text(Field::TypeVoie, limits::ADRESSE);
        let libelle = self.text(Field::LibelleVoie, limits::ADRESSE);
        let complement = self.text(Field::ComplementAdresse, limits::ADRESSE);
        let assembled = AddressParts {
            numero: numero.as_deref(),
            indice: indice.as_deref(),
            type_voie: type_voie.as_deref(),
            libelle: libelle.as_deref(),
            complement: complement.as_deref(),
        }
        .assemble()?;
        self.normalized += u32::from(assembled.expanded);
        let field = if self.has(Field::LibelleVoie) {
            Field::LibelleVoie
        } else {
            Field::ComplementAdresse
        };
        self.check_len(field, assembled.value, limits::ADRESSE)
    }

    /// The legal unit's NAF code, else the establishment's; a code written
    /// in an older nomenclature (closed establishments keep their NAFRev1 or
    /// NAP code) is not read, with a warning.
    pub(super) fn entreprise_naf(&mut self, ctx: &dyn ReferenceData) -> Option<(NafCode, Option<String>)> {
        self.naf_in_rev2(Field::NafCode, Field::NafNomenclature, ctx)
            .or_else(|| self.naf_in_rev2(Field::NafEtablissement, Field::NafNomenclatureEtablissement, ctx))
    }

    fn naf_in_rev2(
        &mut self,
        field: Field,
        nomenclature: Field,
        ctx: &dyn ReferenceData,
    ) -> Option<(NafCode, Option<String>)> {
        let other = self
            .raw(nomenclature)
            .map(|r| clean_text(r).value)
            .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(NAF_REV2));
        match other {
            Some(n) if !self.is_blank(field) => {
                let message = text!(
                    "`{name}` est écrit dans la nomenclature {n}, pas en NAF rév. 2 : il n’est pas importé",
                    "`{name}` is written in the {n} nomenclature, not NAF rév. 2: it is not imported",
                    name = field.name()
                );
                self.warn(field, codes::NAF_OTHER_NOMENCLATURE, message);
                None
            }
            Some(_) => None,
            None => self.naf_code(field, ctx),
        }
    }

    /// `etatAdministratifEtablissement`: `A` active, `F` closed (fermé).
    pub(super) fn etat_administratif(&mut self) -> Option<bool> {
        let raw = self.raw(Field::EtatAdministratif)?;
        let cleaned = clean_text(raw).value;
        match cleaned.to_ascii_uppercase().as_str() {
            "" => None,
            "A" => Some(true),
            "F" => Some(false),
            _ => {
                self.error(
                    Field::EtatAdministratif,
                    ValueError::new(
                        codes::INVALID_ETAT_ADMINISTRATIF,
                        Text::new(
                            "`etatAdministratifEtablissement` vaut A (actif) ou F (fermé)",
                            "`etatAdministratifEtablissement` is A (active) or F (closed)",
                        ),
                    ),
                );
                None
            }
        }
    }

    /// Where the row's establishment ranks, in a Sirene file.
    pub(super) fn establishment(&mut self, is_active: Option<bool>) -> Option<Establishment> {
        self.map.establishments.as_ref()?;
        Some(match self.boolean(Field::EtablissementSiege) {
            Some(true) => Establishment::Siege,
            _ if is_active == Some(false) => Establishment::Closed,
            _ => Establishment::Active,
        })
    }
}
