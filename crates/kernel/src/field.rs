//! One invalid input field, the unit every context reports bad input in. Defined once here
//! (pure, no I/O) so each context's domain names it and the HTTP edge renders it the same way.

/// One invalid input field, named as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub campo: &'static str,
    pub mensaje: String,
}

impl FieldIssue {
    pub fn new(campo: &'static str, mensaje: impl Into<String>) -> Self {
        Self {
            campo,
            mensaje: mensaje.into(),
        }
    }
}
