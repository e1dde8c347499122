//! Contract templates (plantillas) per partner kind, their defaults, and the rule that turns
//! a new partner's proposed `terminos` into a contract's terms: each proposed field overrides
//! the template's, the rest comes from the template.

use chrono::{Days, NaiveDate};
use kernel::Amount;
use serde_json::Value;

use super::values::{
    parse_duracion_dias, parse_fecha, Condiciones, Moneda, Monto, TipoContrato, TipoPartner,
};
use super::FieldIssue;

/// The terms a partner kind gets unless its onboarding proposed others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plantilla {
    pub tipo_partner: TipoPartner,
    pub tipo: TipoContrato,
    pub monto: Monto,
    pub moneda: Moneda,
    pub condiciones: Option<Condiciones>,
    pub duracion_dias: u32,
}

fn default_for(
    tipo_partner: TipoPartner,
    tipo: TipoContrato,
    cents: i64,
    condiciones: &str,
    duracion_dias: u32,
) -> Plantilla {
    Plantilla {
        tipo_partner,
        tipo,
        monto: Monto::new(Amount::from_cents(cents)).expect("default amounts are not negative"),
        moneda: Moneda::parse("USD").expect("USD is valid"),
        condiciones: Condiciones::parse(Some(condiciones)).unwrap_or(None),
        duracion_dias,
    }
}

/// The templates inserted on first start (an operator edits them afterwards).
pub fn plantillas_por_defecto() -> Vec<Plantilla> {
    vec![
        default_for(
            TipoPartner::Afiliado,
            TipoContrato::Cpa,
            2_500,
            "Pago por adquisición confirmada",
            365,
        ),
        default_for(
            TipoPartner::Influencer,
            TipoContrato::Cpc,
            50,
            "Pago por clic válido",
            180,
        ),
        default_for(
            TipoPartner::Embajador,
            TipoContrato::Revshare,
            1_000,
            "Porcentaje de ingresos atribuidos",
            365,
        ),
        default_for(
            TipoPartner::Corporativo,
            TipoContrato::Fijo,
            500_000,
            "Tarifa fija mensual",
            365,
        ),
    ]
}

/// The terms of a contract to create for a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminos {
    pub tipo: TipoContrato,
    pub monto: Monto,
    pub moneda: Moneda,
    pub condiciones: Option<Condiciones>,
    pub fecha_inicio: NaiveDate,
    pub fecha_fin: Option<NaiveDate>,
}

fn string_field<'a>(
    object: &'a serde_json::Map<String, Value>,
    campo: &'static str,
    issues: &mut Vec<FieldIssue>,
) -> Option<&'a str> {
    match object.get(campo.trim_start_matches("terminos.")) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            issues.push(FieldIssue::new(campo, "must be a string"));
            None
        }
    }
}

/// Merges the proposed `terminos` (absent, `null` or an object with optional `tipo`, `monto`,
/// `moneda`, `condiciones`, `fecha_inicio`, `fecha_fin`, `duracion_dias`) over `plantilla`.
/// `fecha_inicio` defaults to `hoy`; `fecha_fin` to `fecha_inicio + duracion_dias`. Every
/// unusable field is reported.
pub fn terminos_para(
    plantilla: &Plantilla,
    propuestos: Option<&Value>,
    hoy: NaiveDate,
) -> Result<Terminos, Vec<FieldIssue>> {
    let empty = serde_json::Map::new();
    let object = match propuestos {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(object)) => object,
        Some(_) => return Err(vec![FieldIssue::new("terminos", "must be a JSON object")]),
    };
    let mut issues = Vec::new();
    let tipo = match string_field(object, "terminos.tipo", &mut issues) {
        None => plantilla.tipo,
        Some(raw) => TipoContrato::parse(raw.trim()).unwrap_or_else(|error| {
            issues.push(FieldIssue::new("terminos.tipo", error.0));
            plantilla.tipo
        }),
    };
    let monto = match object.get("monto") {
        None | Some(Value::Null) => plantilla.monto,
        Some(value) => serde_json::from_value::<Amount>(value.clone())
            .map_err(|error| error.to_string())
            .and_then(|amount| Monto::new(amount).map_err(|error| error.0))
            .unwrap_or_else(|mensaje| {
                issues.push(FieldIssue::new("terminos.monto", mensaje));
                plantilla.monto
            }),
    };
    let moneda = match string_field(object, "terminos.moneda", &mut issues) {
        None => plantilla.moneda.clone(),
        Some(raw) => Moneda::parse(raw).unwrap_or_else(|error| {
            issues.push(FieldIssue::new("terminos.moneda", error.0));
            plantilla.moneda.clone()
        }),
    };
    let condiciones = match object.get("condiciones") {
        None => plantilla.condiciones.clone(),
        Some(_) => string_field(object, "terminos.condiciones", &mut issues)
            .map(|raw| {
                Condiciones::parse(Some(raw)).unwrap_or_else(|error| {
                    issues.push(FieldIssue::new("terminos.condiciones", error.0));
                    None
                })
            })
            .unwrap_or(None),
    };
    let fecha_inicio = match string_field(object, "terminos.fecha_inicio", &mut issues) {
        None => hoy,
        Some(raw) => parse_fecha(raw).unwrap_or_else(|error| {
            issues.push(FieldIssue::new("terminos.fecha_inicio", error.0));
            hoy
        }),
    };
    let duracion_dias = match object.get("duracion_dias") {
        None | Some(Value::Null) => plantilla.duracion_dias,
        Some(value) => value
            .as_i64()
            .ok_or_else(|| "must be an integer".to_owned())
            .and_then(|days| parse_duracion_dias(days).map_err(|error| error.0))
            .unwrap_or_else(|mensaje| {
                issues.push(FieldIssue::new("terminos.duracion_dias", mensaje));
                plantilla.duracion_dias
            }),
    };
    let fecha_fin = match string_field(object, "terminos.fecha_fin", &mut issues) {
        Some(raw) => parse_fecha(raw)
            .map_err(|error| issues.push(FieldIssue::new("terminos.fecha_fin", error.0)))
            .ok(),
        None => fecha_inicio.checked_add_days(Days::new(u64::from(duracion_dias))),
    };
    if let Some(fin) = fecha_fin {
        if fin < fecha_inicio {
            issues.push(FieldIssue::new(
                "terminos.fecha_fin",
                "must not be before fecha_inicio",
            ));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Terminos {
        tipo,
        monto,
        moneda,
        condiciones,
        fecha_inicio,
        fecha_fin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn afiliado() -> Plantilla {
        plantillas_por_defecto().remove(0)
    }

    fn hoy() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
    }

    #[test]
    fn the_defaults_cover_every_partner_kind() {
        let defaults = plantillas_por_defecto();
        let kinds: Vec<_> = defaults.iter().map(|p| p.tipo_partner).collect();
        assert_eq!(kinds, TipoPartner::ALL);
        assert_eq!(defaults[0].monto.amount().to_string(), "25.00");
        assert_eq!(defaults[1].monto.amount().to_string(), "0.50");
        assert_eq!(defaults[3].monto.amount().to_string(), "5000.00");
    }

    #[test]
    fn without_proposed_terms_the_template_applies_from_today() {
        let terminos = terminos_para(&afiliado(), None, hoy()).unwrap();
        assert_eq!(terminos.tipo, TipoContrato::Cpa);
        assert_eq!(terminos.monto.amount().cents(), 2_500);
        assert_eq!(terminos.fecha_inicio, hoy());
        assert_eq!(terminos.fecha_fin, NaiveDate::from_ymd_opt(2026, 1, 1));
    }

    #[test]
    fn partial_terms_are_merged_over_the_template() {
        let propuestos = json!({"monto": 60000, "duracion_dias": 30, "condiciones": null});
        let terminos = terminos_para(&afiliado(), Some(&propuestos), hoy()).unwrap();
        assert_eq!(terminos.monto.amount().to_string(), "60000.00");
        assert_eq!(terminos.tipo, TipoContrato::Cpa);
        assert_eq!(terminos.moneda.as_str(), "USD");
        assert_eq!(terminos.condiciones, None);
        assert_eq!(terminos.fecha_fin, NaiveDate::from_ymd_opt(2025, 1, 31));
    }

    #[test]
    fn every_unusable_term_is_reported() {
        let propuestos = json!({
            "tipo": "trueque", "monto": -5, "moneda": "usd",
            "fecha_inicio": "2025-06-01", "fecha_fin": "2025-05-01"
        });
        let issues = terminos_para(&afiliado(), Some(&propuestos), hoy()).unwrap_err();
        let campos: Vec<_> = issues.iter().map(|i| i.campo).collect();
        assert_eq!(
            campos,
            [
                "terminos.tipo",
                "terminos.monto",
                "terminos.moneda",
                "terminos.fecha_fin"
            ]
        );
        assert!(terminos_para(&afiliado(), Some(&json!("x")), hoy()).is_err());
        assert!(terminos_para(&afiliado(), Some(&json!({"fecha_fin": "nope"})), hoy()).is_err());
    }
}
