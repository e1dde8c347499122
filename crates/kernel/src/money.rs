//! Exact money: an amount in hundredths, never binary floating point. It reads a JSON number or a
//! decimal string with at most two fractional digits and writes a decimal string ("60000.00"),
//! so no client ever parses it into a float by accident.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative or negative amount with two decimal places, stored as hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("is not a decimal number")]
    NotANumber,
    #[error("has more than two decimal places")]
    TooPrecise,
    #[error("is too large")]
    TooLarge,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn from_cents(cents: i64) -> Self {
        Amount(cents)
    }

    pub fn from_units(units: i64) -> Self {
        Amount(units.saturating_mul(100))
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (digits.contains('.') && fraction.is_empty())
        {
            return Err(AmountError::NotANumber);
        }
        if fraction.len() > 2 {
            // Trailing zeros beyond the cents (e.g. "1.500", or 1.5 printed as "1.50000") are exact.
            if fraction[2..].bytes().any(|b| b != b'0') {
                return Err(AmountError::TooPrecise);
            }
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| AmountError::TooLarge)?
        };
        let mut cents_text = fraction.chars().take(2).collect::<String>();
        while cents_text.len() < 2 {
            cents_text.push('0');
        }
        let cents: i64 = cents_text.parse().map_err(|_| AmountError::NotANumber)?;
        let total = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .ok_or(AmountError::TooLarge)?;
        Ok(Amount(if negative { -total } else { total }))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;

        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a decimal string with at most two decimal places")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Amount, E> {
                value
                    .checked_mul(100)
                    .map(Amount)
                    .ok_or_else(|| E::custom(AmountError::TooLarge))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Amount, E> {
                i64::try_from(value)
                    .map_err(|_| E::custom(AmountError::TooLarge))
                    .and_then(|v| self.visit_i64(v))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Amount, E> {
                // The shortest text that reads back as this f64 is the literal the client wrote
                // for any amount with two decimals in range, so parsing it is exact.
                if !value.is_finite() {
                    return Err(E::custom(AmountError::NotANumber));
                }
                format!("{value}").parse().map_err(E::custom)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Amount, E> {
                value.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(AmountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_with_up_to_two_places_parse_exactly() {
        assert_eq!("60000".parse::<Amount>().unwrap().cents(), 6_000_000);
        assert_eq!("0.1".parse::<Amount>().unwrap().cents(), 10);
        assert_eq!("12.34".parse::<Amount>().unwrap().cents(), 1234);
        assert_eq!("-5.5".parse::<Amount>().unwrap().cents(), -550);
        assert_eq!("1.500".parse::<Amount>().unwrap().cents(), 150);
    }

    #[test]
    fn more_places_or_garbage_are_refused() {
        assert_eq!("1.234".parse::<Amount>(), Err(AmountError::TooPrecise));
        for bad in ["", ".", "1.", "abc", "1e3", "1,5", "--1"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_numbers_and_strings_read_the_same_and_write_as_strings() {
        let from_number: Amount = serde_json::from_str("1234.5").unwrap();
        let from_string: Amount = serde_json::from_str("\"1234.50\"").unwrap();
        let from_integer: Amount = serde_json::from_str("60000").unwrap();
        assert_eq!(from_number, from_string);
        assert_eq!(from_integer.cents(), 6_000_000);
        assert_eq!(serde_json::to_string(&from_number).unwrap(), "\"1234.50\"");
        assert!(serde_json::from_str::<Amount>("0.123").is_err());
        assert_eq!(
            serde_json::from_str::<Amount>("0.1").unwrap(),
            Amount::from_cents(10)
        );
    }

    #[test]
    fn display_round_trips() {
        for cents in [0, 1, 99, 100, 123_456, -1, -250] {
            let amount = Amount::from_cents(cents);
            assert_eq!(amount.to_string().parse::<Amount>().unwrap(), amount);
        }
    }
}
