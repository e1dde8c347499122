//! Closed vocabularies with their wire names: `wire_enum!` declares an enum whose variants are
//! spelled one way on the wire and in storage, with `ALL`, `as_str`, `Display` and an exact
//! `parse` that reports unknown names in the caller's own error type. Pure, no I/O.

/// Declares a `Copy` enum and its wire names. `parse` accepts a name exactly as published and
/// otherwise returns `$error("unknown value \"…\"; expected one of A, B, …")`, where `$error`
/// is the calling context's tuple-struct error over a `String` (the text the client sees).
///
/// ```
/// #[derive(Debug)]
/// pub struct ValueError(pub String);
///
/// kernel::wire_enum!(
///     /// A traffic light.
///     Luz: ValueError {
///         Roja => "ROJA",
///         Verde => "VERDE",
///     }
/// );
///
/// assert_eq!(Luz::parse("ROJA").unwrap(), Luz::Roja);
/// assert_eq!(Luz::Verde.to_string(), "VERDE");
/// assert_eq!(
///     Luz::parse("roja").unwrap_err().0,
///     "unknown value \"roja\"; expected one of ROJA, VERDE"
/// );
/// ```
#[macro_export]
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident : $error:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
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

            /// Parses a wire name exactly, as published.
            pub fn parse(raw: &str) -> ::std::result::Result<Self, $error> {
                match raw {
                    $($wire => ::std::result::Result::Ok($name::$variant),)+
                    _ => ::std::result::Result::Err($error(::std::format!(
                        "unknown value {:?}; expected one of {}",
                        raw,
                        [$($wire),+].join(", ")
                    ))),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, Eq)]
    pub struct ValueError(pub String);

    crate::wire_enum!(
        /// A test vocabulary with a name that is not its variant's spelling.
        Modo: ValueError {
            Rapido => "RAPIDO",
            TiempoReal => "REAL_TIME",
        }
    );

    #[test]
    fn every_wire_name_round_trips_in_declaration_order() {
        assert_eq!(Modo::ALL, &[Modo::Rapido, Modo::TiempoReal]);
        for modo in Modo::ALL {
            assert_eq!(Modo::parse(modo.as_str()), Ok(*modo));
            assert_eq!(modo.to_string(), modo.as_str());
        }
    }

    #[test]
    fn an_unknown_name_lists_the_expected_ones() {
        assert_eq!(
            Modo::parse("rapido"),
            Err(ValueError(
                "unknown value \"rapido\"; expected one of RAPIDO, REAL_TIME".to_owned()
            ))
        );
    }
}
