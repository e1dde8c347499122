//! Topic names. The original's names are kept where it had one; new ones follow its kebab-case.

pub const CREATE_PARTNER: &str = "comando-crear-partner";
pub const DEACTIVATE_PARTNER: &str = "comando-desactivar-partner";
pub const PARTNER_CREATED: &str = "PartnerCreado";
pub const PARTNER_CREATION_FAILED: &str = "partner-creation-failed";
pub const PARTNER_DEACTIVATED: &str = "partner-desactivado";
pub const PARTNER_EVENTS: &str = "eventos-partners";
