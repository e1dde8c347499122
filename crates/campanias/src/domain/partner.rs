//! What campanias knows about a partner, learned from upstream events: whether its onboarding
//! completed (it may hold `ACTIVA` affiliations) and whether it was removed. Events on
//! different topics arrive in no causal order, so eligibility keeps the time of the event that
//! last set it and an older event never undoes a newer one; a removal is final.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::programa::Elegibilidad;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerConocido {
    pub partner_id: Uuid,
    pub elegible: bool,
    pub bloqueado: bool,
    pub email: Option<String>,
    pub nombre: Option<String>,
    /// When the event that last set `elegible` happened.
    pub elegibilidad_en: Option<DateTime<Utc>>,
}

impl PartnerConocido {
    /// A partner nothing is known about yet: not eligible.
    pub fn desconocido(partner_id: Uuid) -> Self {
        Self {
            partner_id,
            elegible: false,
            bloqueado: false,
            email: None,
            nombre: None,
            elegibilidad_en: None,
        }
    }

    pub fn elegibilidad(&self) -> Elegibilidad {
        if self.bloqueado {
            Elegibilidad::Bloqueado
        } else if self.elegible {
            Elegibilidad::Elegible
        } else {
            Elegibilidad::NoElegible
        }
    }

    /// Applies an eligibility signal that happened `at`. Returns whether the partner became
    /// eligible just now (its pending affiliations are then promoted). A signal older than
    /// the last one applied is ignored.
    pub fn senal_elegibilidad(&mut self, elegible: bool, at: DateTime<Utc>) -> bool {
        if self.elegibilidad_en.is_some_and(|last| at < last) {
            return false;
        }
        let antes = self.elegibilidad();
        self.elegible = elegible;
        self.elegibilidad_en = Some(at);
        antes != Elegibilidad::Elegible && self.elegibilidad() == Elegibilidad::Elegible
    }

    /// The partner was deleted or deactivated: never eligible again.
    pub fn bloquear(&mut self) {
        self.bloqueado = true;
    }

    /// Remembers the partner's address and name when an event carries them.
    pub fn contacto(&mut self, email: Option<&str>, nombre: Option<&str>) {
        if let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()) {
            self.email = Some(email.to_owned());
        }
        if let Some(nombre) = nombre.map(str::trim).filter(|n| !n.is_empty()) {
            self.nombre = Some(nombre.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn an_unknown_partner_is_not_eligible() {
        let partner = PartnerConocido::desconocido(Uuid::nil());
        assert_eq!(partner.elegibilidad(), Elegibilidad::NoElegible);
    }

    #[test]
    fn becoming_eligible_is_reported_once() {
        let mut partner = PartnerConocido::desconocido(Uuid::nil());
        let at = kernel::now();
        assert!(partner.senal_elegibilidad(true, at));
        assert!(!partner.senal_elegibilidad(true, at));
        assert_eq!(partner.elegibilidad(), Elegibilidad::Elegible);
    }

    #[test]
    fn an_older_signal_does_not_undo_a_newer_one() {
        let mut partner = PartnerConocido::desconocido(Uuid::nil());
        let at = kernel::now();
        partner.senal_elegibilidad(false, at);
        assert!(!partner.senal_elegibilidad(true, at - Duration::seconds(1)));
        assert_eq!(partner.elegibilidad(), Elegibilidad::NoElegible);
        assert!(partner.senal_elegibilidad(true, at + Duration::seconds(1)));
    }

    #[test]
    fn a_removed_partner_stays_removed() {
        let mut partner = PartnerConocido::desconocido(Uuid::nil());
        partner.bloquear();
        assert!(!partner.senal_elegibilidad(true, kernel::now()));
        assert_eq!(partner.elegibilidad(), Elegibilidad::Bloqueado);
    }
}
