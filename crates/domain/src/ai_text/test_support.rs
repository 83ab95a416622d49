//! Fixtures shared by the tests of the validator, the repair pass and the policy.

pub(super) const GOOD_REVIEW: &str = "Les clients saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs, \
                           remis sous quarante-huit heures.";
