//! Amounts: integer fen <-> yuan text with exactly two decimals.
//!
//! ```text
//! fen 3549761  <->  "35497.61"      fen 5  <->  "0.05"      fen 0  <->  "0.00"
//!     ^^^^^ ^^           ^^^^^ ^^
//!     yuan  fen          integer part, '.', always two fraction digits
//! ```
//! Integer arithmetic only: there is no float anywhere on the path (rules: amounts are integers in fen).
//! Writing always gives two decimals. Reading takes the `xs:decimal` forms a bank may send — `35497.61`,
//! `35497.6`, `35497`, `035497.61`, `.5`, `5.` — but refuses what is not a whole number of fen or not an
//! unsigned plain decimal: more than two decimals (even `1.000`), a sign, an exponent, spaces, an empty
//! text, and a value beyond the target integer. Errors say which problem, never echo the text.
use std::fmt;

/// Yuan text for `fen`, exactly two decimals: `Yuan(3549761).to_string() == "35497.61"`.
///
/// A `Display` wrapper so a writer can format straight into its output without an intermediate `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Yuan(pub u64);

impl fmt::Display for Yuan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Why a text is not an amount (or an amount has no yuan text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// The text is empty.
    #[error("amount is empty")]
    Empty,
    /// The text has no digit at all (`.`).
    #[error("amount has no digits")]
    NoDigits,
    /// A `+` or `-`: amounts are written unsigned.
    #[error("amount has a sign at byte {offset} (amounts are unsigned)")]
    Sign {
        /// Byte offset of the sign.
        offset: usize,
    },
    /// An `e` or `E`: exponents are not decimal amounts.
    #[error("amount has an exponent at byte {offset}")]
    Exponent {
        /// Byte offset of the exponent mark.
        offset: usize,
    },
    /// A second decimal point.
    #[error("amount has a second decimal point at byte {offset}")]
    SecondPoint {
        /// Byte offset of the second point.
        offset: usize,
    },
    /// Any other byte that is not an ASCII digit (spaces, commas, letters...).
    #[error("amount has a byte that is not a digit at byte {offset}")]
    NotDigit {
        /// Byte offset of the byte.
        offset: usize,
    },
    /// More than two fraction digits: not a whole number of fen as written.
    #[error("amount has {decimals} decimals, at most 2 (whole fen)")]
    TooManyDecimals {
        /// Number of fraction digits found.
        decimals: usize,
    },
    /// The value does not fit the target integer of fen.
    #[error("amount is larger than {max_fen} fen")]
    Overflow {
        /// The largest amount the target holds, in fen.
        max_fen: u64,
    },
    /// A negative number of fen has no yuan text here (ISO 20022 amounts are `minInclusive 0`).
    #[error("amount is negative")]
    Negative,
}

/// Yuan text of `fen`, exactly two decimals (`35497.61`).
pub fn fen_to_yuan(fen: u64) -> String {
    Yuan(fen).to_string()
}

/// Yuan text of a signed number of fen (as a database may hold it); negative amounts are refused.
pub fn fen_i64_to_yuan(fen: i64) -> Result<String, AmountError> {
    u64::try_from(fen)
        .map(fen_to_yuan)
        .map_err(|_| AmountError::Negative)
}

/// Reads yuan text into fen, refusing anything over `u64::MAX` fen.
pub fn parse_yuan(text: &str) -> Result<u64, AmountError> {
    parse_with_max(text, u64::MAX)
}

/// Reads yuan text into fen as an `i64` (never negative), refusing anything over `i64::MAX` fen.
pub fn parse_yuan_i64(text: &str) -> Result<i64, AmountError> {
    let max = i64::MAX.unsigned_abs();
    let fen = parse_with_max(text, max)?;
    i64::try_from(fen).map_err(|_| AmountError::Overflow { max_fen: max })
}

/// Reads yuan text into fen, refusing anything over `max_fen`.
pub fn parse_with_max(text: &str, max_fen: u64) -> Result<u64, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let mut point: Option<usize> = None;
    for (offset, b) in text.bytes().enumerate() {
        match b {
            b'0'..=b'9' => {}
            b'.' if point.is_none() => point = Some(offset),
            b'.' => return Err(AmountError::SecondPoint { offset }),
            b'+' | b'-' => return Err(AmountError::Sign { offset }),
            b'e' | b'E' => return Err(AmountError::Exponent { offset }),
            _ => return Err(AmountError::NotDigit { offset }),
        }
    }
    let (int, frac) = match point {
        Some(p) => (&text[..p], &text[p + 1..]),
        None => (text, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(AmountError::NoDigits);
    }
    if frac.len() > 2 {
        return Err(AmountError::TooManyDecimals {
            decimals: frac.len(),
        });
    }
    let overflow = AmountError::Overflow { max_fen };
    let mut fen: u64 = 0;
    // The integer part, then the fraction padded to two digits: "35497.6" is 3549760 fen.
    let frac_digits = frac.bytes().chain(std::iter::repeat(b'0')).take(2);
    for d in int.bytes().chain(frac_digits) {
        fen = fen
            .checked_mul(10)
            .and_then(|f| f.checked_add(u64::from(d - b'0')))
            .ok_or(overflow)?;
    }
    if fen > max_fen {
        return Err(overflow);
    }
    Ok(fen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_exactly_two_decimals() {
        assert_eq!(fen_to_yuan(3_549_761), "35497.61");
        assert_eq!(fen_to_yuan(5), "0.05");
        assert_eq!(fen_to_yuan(50), "0.50");
        assert_eq!(fen_to_yuan(0), "0.00");
        assert_eq!(fen_to_yuan(100), "1.00");
        assert_eq!(fen_to_yuan(u64::MAX), "184467440737095516.15");
        assert_eq!(fen_i64_to_yuan(288_265), Ok("2882.65".into()));
        assert_eq!(fen_i64_to_yuan(-1), Err(AmountError::Negative));
        assert_eq!(fen_i64_to_yuan(i64::MAX), Ok("92233720368547758.07".into()));
    }

    #[test]
    fn reads_decimal_forms() {
        assert_eq!(parse_yuan("35497.61"), Ok(3_549_761));
        assert_eq!(parse_yuan("35497.6"), Ok(3_549_760));
        assert_eq!(parse_yuan("35497"), Ok(3_549_700));
        assert_eq!(parse_yuan("35497."), Ok(3_549_700));
        assert_eq!(parse_yuan("035497.61"), Ok(3_549_761));
        assert_eq!(parse_yuan(".5"), Ok(50));
        assert_eq!(parse_yuan("0.00"), Ok(0));
        assert_eq!(parse_yuan("184467440737095516.15"), Ok(u64::MAX));
        assert_eq!(parse_yuan_i64("92233720368547758.07"), Ok(i64::MAX));
    }

    #[test]
    fn names_each_problem() {
        assert_eq!(parse_yuan(""), Err(AmountError::Empty));
        assert_eq!(parse_yuan("."), Err(AmountError::NoDigits));
        assert_eq!(
            parse_yuan("1.005"),
            Err(AmountError::TooManyDecimals { decimals: 3 })
        );
        assert_eq!(
            parse_yuan("1.000"),
            Err(AmountError::TooManyDecimals { decimals: 3 })
        );
        assert_eq!(parse_yuan("-1.00"), Err(AmountError::Sign { offset: 0 }));
        assert_eq!(parse_yuan("+1.00"), Err(AmountError::Sign { offset: 0 }));
        assert_eq!(parse_yuan("1e5"), Err(AmountError::Exponent { offset: 1 }));
        assert_eq!(
            parse_yuan("1.0E2"),
            Err(AmountError::Exponent { offset: 3 })
        );
        assert_eq!(
            parse_yuan("1.2.3"),
            Err(AmountError::SecondPoint { offset: 3 })
        );
        assert_eq!(
            parse_yuan(" 1.00"),
            Err(AmountError::NotDigit { offset: 0 })
        );
        assert_eq!(
            parse_yuan("1,000.00"),
            Err(AmountError::NotDigit { offset: 1 })
        );
        assert_eq!(
            parse_yuan("１.00"),
            Err(AmountError::NotDigit { offset: 0 })
        );
        assert_eq!(
            parse_yuan("184467440737095516.16"),
            Err(AmountError::Overflow { max_fen: u64::MAX })
        );
        assert_eq!(
            parse_yuan("99999999999999999999999"),
            Err(AmountError::Overflow { max_fen: u64::MAX })
        );
        assert_eq!(
            parse_yuan_i64("92233720368547758.08"),
            Err(AmountError::Overflow {
                max_fen: i64::MAX.unsigned_abs()
            })
        );
        assert_eq!(
            parse_with_max("10.00", 999),
            Err(AmountError::Overflow { max_fen: 999 })
        );
    }

    #[test]
    fn round_trips_edges() {
        for fen in [0, 1, 9, 10, 99, 100, 101, 999_999, u64::MAX - 1, u64::MAX] {
            assert_eq!(parse_yuan(&fen_to_yuan(fen)), Ok(fen));
        }
    }
}
