//! The closed vocabularies of the partner context with their Spanish wire names. Parsing an
//! unknown name is an error the edge reports against the field, never a 500.

use super::values::ValueError;

kernel::wire_enum!(
    /// What kind of partner this is; `AFILIADO` when not said.
    TipoPartner: ValueError {
        Afiliado => "AFILIADO",
        Influencer => "INFLUENCER",
        Embajador => "EMBAJADOR",
        Corporativo => "CORPORATIVO",
    }
);

kernel::wire_enum!(
    /// A partner's lifecycle. `ELIMINADO` is a soft delete and is final.
    EstadoPartner: ValueError {
        Activo => "ACTIVO",
        Inactivo => "INACTIVO",
        Suspendido => "SUSPENDIDO",
        Eliminado => "ELIMINADO",
    }
);

kernel::wire_enum!(
    /// The outcome of the KYC check.
    EstadoKyc: ValueError {
        Pendiente => "PENDIENTE",
        Aprobado => "APROBADO",
        Rechazado => "RECHAZADO",
        RequiereDocumentos => "REQUIERE_DOCUMENTOS",
    }
);

kernel::wire_enum!(
    /// How a partner's systems talk to the platform.
    TipoIntegracion: ValueError {
        Api => "API",
        Webhook => "WEBHOOK",
        Batch => "BATCH",
        RealTime => "REAL_TIME",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_name_round_trips() {
        for tipo in TipoPartner::ALL {
            assert_eq!(TipoPartner::parse(tipo.as_str()).unwrap(), *tipo);
        }
        for estado in EstadoKyc::ALL {
            assert_eq!(EstadoKyc::parse(estado.as_str()).unwrap(), *estado);
        }
        assert_eq!(
            TipoIntegracion::parse("REAL_TIME").unwrap(),
            TipoIntegracion::RealTime
        );
    }

    #[test]
    fn an_unknown_or_lower_case_name_is_refused() {
        assert!(TipoPartner::parse("X").is_err());
        assert!(EstadoPartner::parse("activo").is_err());
    }
}
