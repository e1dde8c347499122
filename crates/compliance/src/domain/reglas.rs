//! The four compliance rules (DOMAIN §6), run in order on a proposed contract: the first that
//! fails decides the rejection. The rule configuration (limit, currencies, block list) is data an
//! operator changes at run time; evaluating is a pure function of contract, partner and rules.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use kernel::Amount;
use uuid::Uuid;

use super::values::{EmailBloqueado, Moneda};
use super::FieldIssue;

/// The only contract state compliance accepts: a contract it has not decided on yet.
pub const ESTADO_ACEPTABLE: &str = "pendiente";

/// One compliance rule. `ORDEN` is the order they run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Regla {
    MontoYLimites,
    MonedaYJurisdiccion,
    PartnerYReputacion,
    EstadoYVigencia,
}

impl Regla {
    pub const ORDEN: [Regla; 4] = [
        Regla::MontoYLimites,
        Regla::MonedaYJurisdiccion,
        Regla::PartnerYReputacion,
        Regla::EstadoYVigencia,
    ];

    /// The rule's name as listed in `validaciones_pasadas`.
    pub fn nombre(self) -> &'static str {
        match self {
            Regla::MontoYLimites => "MONTO_Y_LIMITES",
            Regla::MonedaYJurisdiccion => "MONEDA_Y_JURISDICCION",
            Regla::PartnerYReputacion => "PARTNER_Y_REPUTACION",
            Regla::EstadoYVigencia => "ESTADO_Y_VIGENCIA",
        }
    }

    /// The `validacion_fallida` code when this rule rejects.
    pub fn codigo_fallo(self) -> &'static str {
        match self {
            Regla::MontoYLimites => "MONTO_INVALIDO",
            Regla::MonedaYJurisdiccion => "MONEDA_NO_PERMITIDA",
            Regla::PartnerYReputacion => "PARTNER_INVALIDO",
            Regla::EstadoYVigencia => "ESTADO_INVALIDO",
        }
    }

    pub fn from_nombre(nombre: &str) -> Option<Regla> {
        Regla::ORDEN
            .into_iter()
            .find(|regla| regla.nombre() == nombre)
    }

    pub fn from_codigo_fallo(codigo: &str) -> Option<Regla> {
        Regla::ORDEN
            .into_iter()
            .find(|regla| regla.codigo_fallo() == codigo)
    }
}

/// Partners compliance refuses, by id or by the e-mail they registered with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListaBloqueo {
    pub partner_ids: BTreeSet<Uuid>,
    pub emails: BTreeSet<EmailBloqueado>,
}

/// Why a rule configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rule configuration")]
pub struct ReglasInvalidas(pub Vec<FieldIssue>);

/// The operator's rule configuration. Invariants: the limit is not negative and at least one
/// currency is allowed (an empty list would reject every contract, surely a mistake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReglasCompliance {
    limite: Amount,
    monedas: BTreeSet<Moneda>,
    bloqueo: ListaBloqueo,
}

/// A change to the configuration; `None` leaves that part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CambiosReglas {
    pub limite: Option<Amount>,
    pub monedas: Option<BTreeSet<Moneda>>,
    pub partner_ids: Option<BTreeSet<Uuid>>,
    pub emails: Option<BTreeSet<EmailBloqueado>>,
}

impl Default for ReglasCompliance {
    /// Limit 50 000; USD, EUR, COP and MXN; nobody blocked.
    fn default() -> Self {
        let monedas = ["USD", "EUR", "COP", "MXN"]
            .into_iter()
            .filter_map(|code| Moneda::parse(code).ok())
            .collect();
        Self {
            limite: Amount::from_units(50_000),
            monedas,
            bloqueo: ListaBloqueo::default(),
        }
    }
}

impl ReglasCompliance {
    pub fn new(
        limite: Amount,
        monedas: BTreeSet<Moneda>,
        bloqueo: ListaBloqueo,
    ) -> Result<Self, ReglasInvalidas> {
        let mut issues = Vec::new();
        if limite.is_negative() {
            issues.push(FieldIssue::new("limite_monto", "cannot be negative"));
        }
        if monedas.is_empty() {
            issues.push(FieldIssue::new(
                "monedas_permitidas",
                "must allow at least one currency",
            ));
        }
        if issues.is_empty() {
            Ok(Self {
                limite,
                monedas,
                bloqueo,
            })
        } else {
            Err(ReglasInvalidas(issues))
        }
    }

    /// The configuration with `cambios` applied, checked like a new one.
    pub fn con_cambios(&self, cambios: CambiosReglas) -> Result<Self, ReglasInvalidas> {
        Self::new(
            cambios.limite.unwrap_or(self.limite),
            cambios.monedas.unwrap_or_else(|| self.monedas.clone()),
            ListaBloqueo {
                partner_ids: cambios
                    .partner_ids
                    .unwrap_or_else(|| self.bloqueo.partner_ids.clone()),
                emails: cambios
                    .emails
                    .unwrap_or_else(|| self.bloqueo.emails.clone()),
            },
        )
    }

    pub fn limite(&self) -> Amount {
        self.limite
    }

    pub fn monedas(&self) -> &BTreeSet<Moneda> {
        &self.monedas
    }

    pub fn bloqueo(&self) -> &ListaBloqueo {
        &self.bloqueo
    }
}

/// A partner compliance has heard of (from its `PartnerCreado`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerConocido {
    pub partner_id: Uuid,
    pub email: String,
    pub nombre: String,
    pub tipo: String,
}

/// The contract's validity period, or why it could not be read (a contract whose dates cannot
/// be read is not valid: rule 4 rejects it rather than the message being lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vigencia {
    Fechas {
        inicio: NaiveDate,
        fin: Option<NaiveDate>,
    },
    Ilegible(String),
}

impl Vigencia {
    /// Reads `YYYY-MM-DD` dates; never fails, an unreadable date becomes `Ilegible`.
    pub fn leer(inicio: &str, fin: Option<&str>) -> Vigencia {
        let fecha = |campo: &str, raw: &str| {
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                .map_err(|_| format!("{campo} '{raw}' no es una fecha AAAA-MM-DD"))
        };
        let inicio = match fecha("fecha_inicio", inicio) {
            Ok(date) => date,
            Err(error) => return Vigencia::Ilegible(error),
        };
        let fin = match fin.map(str::trim).filter(|raw| !raw.is_empty()) {
            None => None,
            Some(raw) => match fecha("fecha_fin", raw) {
                Ok(date) => Some(date),
                Err(error) => return Vigencia::Ilegible(error),
            },
        };
        Vigencia::Fechas { inicio, fin }
    }
}

/// What the rules look at in a contract. `moneda` and `estado` are kept as received: an
/// unknown currency or state is a rule failure, not unreadable input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContratoPropuesto {
    pub partner_id: Uuid,
    pub monto: Amount,
    pub moneda: String,
    pub estado: String,
    pub vigencia: Vigencia,
}

/// Why a rule rejected: the readable sentence, and whether the only problem is that the
/// partner is not known yet (which may change when its `PartnerCreado` arrives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rechazo {
    pub regla: Regla,
    pub causa: String,
    pub partner_desconocido: bool,
}

/// The outcome of the rules: the rules passed, in order, and the failure if one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veredicto {
    pub validaciones_pasadas: Vec<Regla>,
    pub rechazo: Option<Rechazo>,
}

impl Veredicto {
    pub fn aprobado(&self) -> bool {
        self.rechazo.is_none()
    }

    /// Rejected only because the partner is unknown: worth waiting for its `PartnerCreado`.
    pub fn espera_al_partner(&self) -> bool {
        self.rechazo
            .as_ref()
            .is_some_and(|rechazo| rechazo.partner_desconocido)
    }

    pub fn validacion_fallida(&self) -> Option<&'static str> {
        self.rechazo.as_ref().map(|r| r.regla.codigo_fallo())
    }

    pub fn causa_rechazo(&self) -> Option<&str> {
        self.rechazo.as_ref().map(|r| r.causa.as_str())
    }

    pub fn nombres_pasadas(&self) -> Vec<String> {
        self.validaciones_pasadas
            .iter()
            .map(|regla| regla.nombre().to_owned())
            .collect()
    }
}

/// Runs the rules in order on `contrato`; `partner` is what compliance knows of its partner.
pub fn evaluar(
    contrato: &ContratoPropuesto,
    partner: Option<&PartnerConocido>,
    reglas: &ReglasCompliance,
) -> Veredicto {
    let mut validaciones_pasadas = Vec::new();
    for regla in Regla::ORDEN {
        let fallo = match regla {
            Regla::MontoYLimites => monto_y_limites(contrato, reglas),
            Regla::MonedaYJurisdiccion => moneda_y_jurisdiccion(contrato, reglas),
            Regla::PartnerYReputacion => partner_y_reputacion(contrato, partner, reglas),
            Regla::EstadoYVigencia => estado_y_vigencia(contrato),
        };
        if let Some((causa, partner_desconocido)) = fallo {
            return Veredicto {
                validaciones_pasadas,
                rechazo: Some(Rechazo {
                    regla,
                    causa,
                    partner_desconocido,
                }),
            };
        }
        validaciones_pasadas.push(regla);
    }
    Veredicto {
        validaciones_pasadas,
        rechazo: None,
    }
}

/// A rule's failure: the sentence, and whether it is only "partner unknown".
type Fallo = Option<(String, bool)>;

fn monto_y_limites(contrato: &ContratoPropuesto, reglas: &ReglasCompliance) -> Fallo {
    if contrato.monto.is_negative() {
        return Some((
            format!("El monto {} no puede ser negativo.", contrato.monto),
            false,
        ));
    }
    (contrato.monto > reglas.limite).then(|| {
        (
            format!(
                "El monto {} supera el límite permitido de {}.",
                contrato.monto, reglas.limite
            ),
            false,
        )
    })
}

fn moneda_y_jurisdiccion(contrato: &ContratoPropuesto, reglas: &ReglasCompliance) -> Fallo {
    let permitida = Moneda::parse(&contrato.moneda)
        .map(|moneda| reglas.monedas.contains(&moneda))
        .unwrap_or(false);
    (!permitida).then(|| {
        let lista = reglas
            .monedas
            .iter()
            .map(Moneda::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        (
            format!(
                "La moneda '{}' no está permitida (permitidas: {lista}).",
                contrato.moneda.trim()
            ),
            false,
        )
    })
}

fn partner_y_reputacion(
    contrato: &ContratoPropuesto,
    partner: Option<&PartnerConocido>,
    reglas: &ReglasCompliance,
) -> Fallo {
    if reglas.bloqueo.partner_ids.contains(&contrato.partner_id) {
        return Some((
            format!(
                "El partner {} está en la lista de bloqueo.",
                contrato.partner_id
            ),
            false,
        ));
    }
    let Some(partner) = partner else {
        return Some((
            format!(
                "El partner {} no está registrado en compliance.",
                contrato.partner_id
            ),
            true,
        ));
    };
    reglas
        .bloqueo
        .emails
        .iter()
        .any(|email| email.matches(&partner.email))
        .then(|| {
            (
                format!(
                    "El e-mail {} del partner {} está en la lista de bloqueo.",
                    partner.email, partner.partner_id
                ),
                false,
            )
        })
}

fn estado_y_vigencia(contrato: &ContratoPropuesto) -> Fallo {
    if contrato.estado.trim() != ESTADO_ACEPTABLE {
        return Some((
            format!(
                "El estado del contrato '{}' no es aceptable; se espera '{ESTADO_ACEPTABLE}'.",
                contrato.estado.trim()
            ),
            false,
        ));
    }
    match &contrato.vigencia {
        Vigencia::Ilegible(motivo) => Some((
            format!("La vigencia del contrato no es válida: {motivo}."),
            false,
        )),
        Vigencia::Fechas {
            inicio,
            fin: Some(fin),
        } if fin < inicio => Some((
            format!("La fecha de fin {fin} es anterior a la fecha de inicio {inicio}."),
            false,
        )),
        Vigencia::Fechas { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner() -> PartnerConocido {
        PartnerConocido {
            partner_id: Uuid::from_u128(7),
            email: "Ana@Example.com".into(),
            nombre: "Ana".into(),
            tipo: "AFILIADO".into(),
        }
    }

    fn contrato() -> ContratoPropuesto {
        ContratoPropuesto {
            partner_id: Uuid::from_u128(7),
            monto: Amount::from_units(1_000),
            moneda: "USD".into(),
            estado: "pendiente".into(),
            vigencia: Vigencia::leer("2025-01-01", Some("2025-12-31")),
        }
    }

    fn evaluar_con(contrato: &ContratoPropuesto) -> Veredicto {
        evaluar(contrato, Some(&partner()), &ReglasCompliance::default())
    }

    fn fallo(veredicto: &Veredicto) -> &'static str {
        veredicto.validacion_fallida().expect("a rejection")
    }

    #[test]
    fn a_valid_contract_passes_the_four_rules_in_order() {
        let veredicto = evaluar_con(&contrato());
        assert!(veredicto.aprobado());
        assert_eq!(veredicto.validaciones_pasadas, Regla::ORDEN);
        assert_eq!(
            veredicto.nombres_pasadas(),
            [
                "MONTO_Y_LIMITES",
                "MONEDA_Y_JURISDICCION",
                "PARTNER_Y_REPUTACION",
                "ESTADO_Y_VIGENCIA"
            ]
        );
    }

    #[test]
    fn an_amount_above_the_limit_is_monto_invalido() {
        let veredicto = evaluar_con(&ContratoPropuesto {
            monto: Amount::from_units(60_000),
            ..contrato()
        });
        assert_eq!(fallo(&veredicto), "MONTO_INVALIDO");
        assert!(veredicto.validaciones_pasadas.is_empty());
        assert_eq!(
            veredicto.causa_rechazo().unwrap(),
            "El monto 60000.00 supera el límite permitido de 50000.00."
        );
    }

    #[test]
    fn an_amount_exactly_at_the_limit_passes() {
        let veredicto = evaluar_con(&ContratoPropuesto {
            monto: Amount::from_units(50_000),
            ..contrato()
        });
        assert!(veredicto.aprobado());
        let un_centavo_mas = evaluar_con(&ContratoPropuesto {
            monto: Amount::from_cents(5_000_001),
            ..contrato()
        });
        assert_eq!(fallo(&un_centavo_mas), "MONTO_INVALIDO");
    }

    #[test]
    fn a_negative_amount_is_monto_invalido() {
        let veredicto = evaluar_con(&ContratoPropuesto {
            monto: Amount::from_cents(-1),
            ..contrato()
        });
        assert_eq!(fallo(&veredicto), "MONTO_INVALIDO");
    }

    #[test]
    fn a_currency_not_allowed_is_moneda_no_permitida() {
        for moneda in ["GBP", "dólar", ""] {
            let veredicto = evaluar_con(&ContratoPropuesto {
                moneda: moneda.into(),
                ..contrato()
            });
            assert_eq!(fallo(&veredicto), "MONEDA_NO_PERMITIDA", "{moneda:?}");
            assert_eq!(veredicto.validaciones_pasadas, [Regla::MontoYLimites]);
        }
        let minusculas = evaluar_con(&ContratoPropuesto {
            moneda: "cop".into(),
            ..contrato()
        });
        assert!(minusculas.aprobado());
    }

    #[test]
    fn an_unknown_partner_is_partner_invalido_and_worth_waiting_for() {
        let veredicto = evaluar(&contrato(), None, &ReglasCompliance::default());
        assert_eq!(fallo(&veredicto), "PARTNER_INVALIDO");
        assert!(veredicto.espera_al_partner());
    }

    #[test]
    fn a_blocked_partner_id_is_partner_invalido_even_before_it_is_known() {
        let reglas = ReglasCompliance::default()
            .con_cambios(CambiosReglas {
                partner_ids: Some([Uuid::from_u128(7)].into()),
                ..CambiosReglas::default()
            })
            .unwrap();
        let veredicto = evaluar(&contrato(), None, &reglas);
        assert_eq!(fallo(&veredicto), "PARTNER_INVALIDO");
        assert!(!veredicto.espera_al_partner());
    }

    #[test]
    fn a_blocked_email_in_any_case_is_partner_invalido() {
        let reglas = ReglasCompliance::default()
            .con_cambios(CambiosReglas {
                emails: Some([EmailBloqueado::parse("ana@example.COM").unwrap()].into()),
                ..CambiosReglas::default()
            })
            .unwrap();
        let veredicto = evaluar(&contrato(), Some(&partner()), &reglas);
        assert_eq!(fallo(&veredicto), "PARTNER_INVALIDO");
        assert!(!veredicto.espera_al_partner());
    }

    #[test]
    fn a_state_other_than_pendiente_is_estado_invalido() {
        for estado in ["activo", "rechazado", "PENDIENTE", ""] {
            let veredicto = evaluar_con(&ContratoPropuesto {
                estado: estado.into(),
                ..contrato()
            });
            assert_eq!(fallo(&veredicto), "ESTADO_INVALIDO", "{estado:?}");
            assert_eq!(veredicto.validaciones_pasadas.len(), 3);
        }
    }

    #[test]
    fn an_end_before_the_start_is_estado_invalido() {
        let veredicto = evaluar_con(&ContratoPropuesto {
            vigencia: Vigencia::leer("2025-02-01", Some("2025-01-31")),
            ..contrato()
        });
        assert_eq!(fallo(&veredicto), "ESTADO_INVALIDO");
        assert!(veredicto.causa_rechazo().unwrap().contains("anterior"));
    }

    #[test]
    fn an_end_on_the_start_day_or_no_end_is_valid() {
        for fin in [Some("2025-01-01"), None, Some("")] {
            let veredicto = evaluar_con(&ContratoPropuesto {
                vigencia: Vigencia::leer("2025-01-01", fin),
                ..contrato()
            });
            assert!(veredicto.aprobado(), "{fin:?}");
        }
    }

    #[test]
    fn unreadable_dates_are_estado_invalido() {
        let veredicto = evaluar_con(&ContratoPropuesto {
            vigencia: Vigencia::leer("01/02/2025", None),
            ..contrato()
        });
        assert_eq!(fallo(&veredicto), "ESTADO_INVALIDO");
    }

    #[test]
    fn the_first_failing_rule_decides() {
        // Everything is wrong: the amount (rule 1) decides.
        let todo_mal = ContratoPropuesto {
            monto: Amount::from_units(60_000),
            moneda: "GBP".into(),
            estado: "activo".into(),
            vigencia: Vigencia::leer("2025-02-01", Some("2025-01-01")),
            ..contrato()
        };
        let veredicto = evaluar(&todo_mal, None, &ReglasCompliance::default());
        assert_eq!(fallo(&veredicto), "MONTO_INVALIDO");
        // An unknown partner with a bad amount is rejected for the amount: nothing to wait for.
        assert!(!veredicto.espera_al_partner());
        let sin_monto = ContratoPropuesto {
            monto: Amount::from_units(1),
            ..todo_mal.clone()
        };
        let veredicto = evaluar(&sin_monto, None, &ReglasCompliance::default());
        assert_eq!(fallo(&veredicto), "MONEDA_NO_PERMITIDA");
        let sin_moneda = ContratoPropuesto {
            moneda: "EUR".into(),
            ..sin_monto
        };
        let veredicto = evaluar(&sin_moneda, None, &ReglasCompliance::default());
        assert_eq!(fallo(&veredicto), "PARTNER_INVALIDO");
        let veredicto = evaluar(&sin_moneda, Some(&partner()), &ReglasCompliance::default());
        assert_eq!(fallo(&veredicto), "ESTADO_INVALIDO");
    }

    #[test]
    fn the_default_rules_are_fifty_thousand_and_four_currencies() {
        let reglas = ReglasCompliance::default();
        assert_eq!(reglas.limite(), Amount::from_units(50_000));
        let monedas: Vec<_> = reglas.monedas().iter().map(Moneda::as_str).collect();
        assert_eq!(monedas, ["COP", "EUR", "MXN", "USD"]);
        assert_eq!(reglas.bloqueo(), &ListaBloqueo::default());
    }

    #[test]
    fn a_negative_limit_or_no_currency_is_refused() {
        let error = ReglasCompliance::default()
            .con_cambios(CambiosReglas {
                limite: Some(Amount::from_cents(-1)),
                monedas: Some(BTreeSet::new()),
                ..CambiosReglas::default()
            })
            .unwrap_err();
        let campos: Vec<_> = error.0.iter().map(|issue| issue.campo).collect();
        assert_eq!(campos, ["limite_monto", "monedas_permitidas"]);
    }

    #[test]
    fn a_changed_limit_changes_the_outcome() {
        let reglas = ReglasCompliance::default()
            .con_cambios(CambiosReglas {
                limite: Some(Amount::from_units(500)),
                ..CambiosReglas::default()
            })
            .unwrap();
        let veredicto = evaluar(&contrato(), Some(&partner()), &reglas);
        assert_eq!(fallo(&veredicto), "MONTO_INVALIDO");
        assert_eq!(reglas.monedas(), ReglasCompliance::default().monedas());
    }

    #[test]
    fn rule_names_and_codes_read_back() {
        for regla in Regla::ORDEN {
            assert_eq!(Regla::from_nombre(regla.nombre()), Some(regla));
            assert_eq!(Regla::from_codigo_fallo(regla.codigo_fallo()), Some(regla));
        }
        assert_eq!(Regla::from_nombre("OTRA"), None);
    }
}
