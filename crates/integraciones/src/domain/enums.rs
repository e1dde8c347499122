//! The closed vocabularies of the partner context with their Spanish wire names. Parsing an
//! unknown name is an error the edge reports against the field, never a 500.

use super::values::ValueError;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire (and stored) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// Parses a wire name exactly (upper-case, as published).
            pub fn parse(raw: &str) -> Result<Self, ValueError> {
                match raw {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(ValueError(format!(
                        "unknown value {:?}; expected one of {}",
                        raw,
                        [$($wire),+].join(", ")
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// What kind of partner this is; `AFILIADO` when not said.
    TipoPartner {
        Afiliado => "AFILIADO",
        Influencer => "INFLUENCER",
        Embajador => "EMBAJADOR",
        Corporativo => "CORPORATIVO",
    }
);

wire_enum!(
    /// A partner's lifecycle. `ELIMINADO` is a soft delete and is final.
    EstadoPartner {
        Activo => "ACTIVO",
        Inactivo => "INACTIVO",
        Suspendido => "SUSPENDIDO",
        Eliminado => "ELIMINADO",
    }
);

wire_enum!(
    /// The outcome of the KYC check.
    EstadoKyc {
        Pendiente => "PENDIENTE",
        Aprobado => "APROBADO",
        Rechazado => "RECHAZADO",
        RequiereDocumentos => "REQUIERE_DOCUMENTOS",
    }
);

wire_enum!(
    /// How a partner's systems talk to the platform.
    TipoIntegracion {
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
