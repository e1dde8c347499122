//! Topic names. The original's names are kept where it had one; new ones follow its kebab-case.

pub const CREATE_PARTNER: &str = "comando-crear-partner";
pub const DEACTIVATE_PARTNER: &str = "comando-desactivar-partner";
pub const PARTNER_CREATED: &str = "PartnerCreado";
pub const PARTNER_CREATION_FAILED: &str = "partner-creation-failed";
pub const PARTNER_DEACTIVATED: &str = "partner-desactivado";
pub const PARTNER_EVENTS: &str = "eventos-partners";

pub const CONTRACT_CREATED: &str = "ContratoCreado";
pub const CONTRACT_CREATION_FAILED: &str = "contrato-creado-failed";
/// Contract lifecycle changes other services may follow (suspended, reactivated, …).
pub const CONTRACT_EVENTS: &str = "eventos-contratos";
pub const CONTRACT_APPROVED: &str = "contrato-aprobado";
pub const CONTRACT_REJECTED: &str = "contrato-rechazado";
pub const CONTRACT_REVIEW: &str = "revision-contrato";
pub const REVIEW_RESOLVED: &str = "revision-resuelta";
/// The saga's outcomes (completed, failed, awaiting review), for notifications and campaigns.
pub const ONBOARDING_EVENTS: &str = "eventos-onboarding";
pub const PROGRAM_EVENTS: &str = "eventos-programas";
