//! The AlpesPartners platform as a library: settings and the wiring that runs services in one
//! process. The `alpes` binary is a thin shell over it; end-to-end tests start it in-process.

pub mod bench;
pub mod platform;
pub mod scheduling;
pub mod settings;
