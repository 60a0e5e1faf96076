//! Dates and times of bank B's documents: ISO 8601 as the XSD's `xs:date` / `xs:dateTime`, Beijing time.
//!
//! ```text
//! write  CreDtTm        2026-03-03T09:15:00           no fraction, no offset (bank B's spec)
//!        ReqdExctnDt/Dt 2026-03-03
//!        pain.002 times 2026-03-04T10:20:30+08:00     or without the offset
//! read   YYYY-MM-DDThh:mm:ss[.fff...][Z|(+|-)hh:mm]   -> BeijingTime (UTC+08:00, whole seconds)
//! ```
//! A time without an offset is Beijing time (the spec says so); a time with any other offset is moved to
//! +08:00, so `2026-03-04T02:20:30Z` reads as `2026-03-04T10:20:30`. Fractions of a second are dropped
//! (the gateway keeps whole seconds). `24:00:00` is the next day's `00:00:00`, as `xs:dateTime` says.
//! Years outside 0001..=9999 are refused. Integer arithmetic on days, no time zone database needed:
//! Beijing has had no daylight saving time since 1991, and the documents only carry recent times.
use std::fmt;
use std::str::FromStr;

/// Why a text is not a date or time of the expected form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateTimeError {
    /// Not of the expected shape (digits and separators).
    #[error("not of the form {expected}")]
    Shape {
        /// The form expected.
        expected: &'static str,
    },
    /// A part is out of its range (month 13, day 30 of February, hour 25...).
    #[error("{part} out of range")]
    Range {
        /// Which part.
        part: &'static str,
    },
}

/// A wall-clock time in Beijing (UTC+08:00), to the second, year 0001..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BeijingTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

const OFFSET_SECONDS: i64 = 8 * 3600;
const DAY: i64 = 86_400;

impl BeijingTime {
    /// 1970-01-01T00:00:00, a stand-in until a real value is read.
    pub(crate) const PLACEHOLDER: Self = Self {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };

    /// A checked time; `None` if a part is out of range.
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let ok = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        ok.then_some(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// `(year, month, day, hour, minute, second)`, Beijing time.
    pub fn parts(&self) -> (u16, u8, u8, u8, u8, u8) {
        (
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        )
    }

    /// The date as `YYYY-MM-DD`.
    pub fn date_string(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// Reads any `xs:dateTime` with a 4-digit year, with or without an offset, and moves it to Beijing
    /// time. No surrounding whitespace.
    pub fn parse_iso(text: &str) -> Result<Self, DateTimeError> {
        const SHAPE: DateTimeError = DateTimeError::Shape {
            expected: "YYYY-MM-DDThh:mm:ss[.s][Z|+hh:mm|-hh:mm]",
        };
        let b = text.as_bytes();
        let (y, mo, d, h, mi, s) = split_datetime(b).ok_or(SHAPE)?;
        let mut rest = &b[19..];
        // Fraction: dropped, but `24:00:00.5` is not a time.
        let mut fraction_zero = true;
        if let Some(after) = rest.strip_prefix(b".") {
            let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(SHAPE);
            }
            fraction_zero = after[..n].iter().all(|&c| c == b'0');
            rest = &after[n..];
        }
        let offset = match rest {
            [] => OFFSET_SECONDS,
            [b'Z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let oh = two(*h1, *h2).ok_or(SHAPE)?;
                let om = two(*m1, *m2).ok_or(SHAPE)?;
                if om > 59 || oh > 14 || (oh == 14 && om > 0) {
                    return Err(DateTimeError::Range { part: "offset" });
                }
                let secs = i64::from(oh) * 3600 + i64::from(om) * 60;
                if *sign == b'-' { -secs } else { secs }
            }
            _ => return Err(SHAPE),
        };
        if y == 0 {
            return Err(DateTimeError::Range { part: "year" });
        }
        check_date_parts(y, mo, d)?;
        let end_of_day = h == 24 && mi == 0 && s == 0 && fraction_zero;
        if h > 23 && !end_of_day {
            return Err(DateTimeError::Range { part: "hour" });
        }
        if mi > 59 {
            return Err(DateTimeError::Range { part: "minute" });
        }
        if s > 59 {
            return Err(DateTimeError::Range { part: "second" });
        }
        let local = days_from_civil(i64::from(y), i64::from(mo), i64::from(d)) * DAY
            + i64::from(h) * 3600
            + i64::from(mi) * 60
            + i64::from(s);
        Self::from_beijing_seconds(local - offset + OFFSET_SECONDS)
            .ok_or(DateTimeError::Range { part: "year" })
    }

    /// Reads exactly `YYYY-MM-DDThh:mm:ss` (no fraction, no offset): the form bank B wants in
    /// `CreDtTm`.
    pub fn parse_local(text: &str) -> Result<Self, DateTimeError> {
        let shape = DateTimeError::Shape {
            expected: "YYYY-MM-DDThh:mm:ss",
        };
        let b = text.as_bytes();
        if b.len() != 19 {
            return Err(shape);
        }
        let (y, mo, d, h, mi, s) = split_datetime(b).ok_or(shape)?;
        if y == 0 {
            return Err(DateTimeError::Range { part: "year" });
        }
        check_date_parts(y, mo, d)?;
        for (v, max, part) in [(h, 23, "hour"), (mi, 59, "minute"), (s, 59, "second")] {
            if v > max {
                return Err(DateTimeError::Range { part });
            }
        }
        Self::new(y, mo, d, h, mi, s).ok_or(DateTimeError::Range { part: "year" })
    }

    fn from_beijing_seconds(t: i64) -> Option<Self> {
        let days = t.div_euclid(DAY);
        let secs = t.rem_euclid(DAY);
        let (y, m, d) = civil_from_days(days);
        Self::new(
            u16::try_from(y).ok()?,
            u8::try_from(m).ok()?,
            u8::try_from(d).ok()?,
            u8::try_from(secs / 3600).ok()?,
            u8::try_from(secs % 3600 / 60).ok()?,
            u8::try_from(secs % 60).ok()?,
        )
    }
}

impl fmt::Display for BeijingTime {
    /// `YYYY-MM-DDThh:mm:ss` (Beijing time, no offset).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl FromStr for BeijingTime {
    type Err = DateTimeError;

    /// Same as [`BeijingTime::parse_iso`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_iso(s)
    }
}

impl serde::Serialize for BeijingTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for BeijingTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse_iso(&s).map_err(serde::de::Error::custom)
    }
}

/// Checks `YYYY-MM-DD` (`xs:date` without offset, year 0001..=9999).
pub(crate) fn check_date(text: &str) -> Result<(), DateTimeError> {
    let b = text.as_bytes();
    let shape = DateTimeError::Shape {
        expected: "YYYY-MM-DD",
    };
    if b.len() != 10 {
        return Err(shape);
    }
    let (y, m, d) = split_date(b).ok_or(shape)?;
    if y == 0 {
        return Err(DateTimeError::Range { part: "year" });
    }
    check_date_parts(y, m, d)
}

fn check_date_parts(y: u16, m: u8, d: u8) -> Result<(), DateTimeError> {
    if !(1..=12).contains(&m) {
        return Err(DateTimeError::Range { part: "month" });
    }
    if d == 0 || d > days_in_month(y, m) {
        return Err(DateTimeError::Range { part: "day" });
    }
    Ok(())
}

fn two(a: u8, b: u8) -> Option<u8> {
    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'))
}

/// `YYYY-MM-DD` at the start of `b`.
fn split_date(b: &[u8]) -> Option<(u16, u8, u8)> {
    match b {
        [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2, ..] => {
            let hi = two(*y1, *y2)?;
            let lo = two(*y3, *y4)?;
            Some((
                u16::from(hi) * 100 + u16::from(lo),
                two(*m1, *m2)?,
                two(*d1, *d2)?,
            ))
        }
        _ => None,
    }
}

/// `YYYY-MM-DDThh:mm:ss` at the start of `b`.
fn split_datetime(b: &[u8]) -> Option<(u16, u8, u8, u8, u8, u8)> {
    let (y, mo, d) = split_date(b)?;
    match b.get(10..19)? {
        [b'T', h1, h2, b':', m1, m2, b':', s1, s2] => {
            Some((y, mo, d, two(*h1, *h2)?, two(*m1, *m2)?, two(*s1, *s2)?))
        }
        _ => None,
    }
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn is_leap(y: u16) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Result<String, DateTimeError> {
        BeijingTime::parse_iso(text).map(|t| t.to_string())
    }

    #[test]
    fn reads_with_and_without_offset() {
        assert_eq!(t("2026-03-04T10:20:30"), Ok("2026-03-04T10:20:30".into()));
        assert_eq!(
            t("2026-03-04T10:20:30+08:00"),
            Ok("2026-03-04T10:20:30".into())
        );
        assert_eq!(t("2026-03-04T02:20:30Z"), Ok("2026-03-04T10:20:30".into()));
        assert_eq!(
            t("2026-03-03T20:20:30-06:00"),
            Ok("2026-03-04T10:20:30".into())
        );
        assert_eq!(
            t("2026-03-04T10:20:30.999+08:00"),
            Ok("2026-03-04T10:20:30".into())
        );
        // day, month, year and leap-day rollovers
        assert_eq!(t("2025-12-31T16:00:00Z"), Ok("2026-01-01T00:00:00".into()));
        assert_eq!(t("2024-02-28T16:30:00Z"), Ok("2024-02-29T00:30:00".into()));
        assert_eq!(
            t("2026-03-01T07:59:59+14:00"),
            Ok("2026-03-01T01:59:59".into())
        );
        assert_eq!(t("2026-03-04T24:00:00"), Ok("2026-03-05T00:00:00".into()));
    }

    #[test]
    fn refuses_bad_times() {
        for bad in [
            "",
            "2026-03-04",
            "2026-03-04 10:20:30",
            "2026-3-04T10:20:30",
            "2026-03-04T10:20:30+0800",
            "2026-03-04T10:20:30+08",
            "2026-03-04T10:20:30.",
            "2026-03-04T10:20:30 ",
            "-2026-03-04T10:20:30",
            "12026-03-04T10:20:30",
        ] {
            assert!(
                matches!(t(bad), Err(DateTimeError::Shape { .. })),
                "{bad:?}"
            );
        }
        for (bad, part) in [
            ("2026-13-04T10:20:30", "month"),
            ("2026-02-29T10:20:30", "day"),
            ("2026-03-04T25:20:30", "hour"),
            ("2026-03-04T24:00:01", "hour"),
            ("2026-03-04T24:00:00.5", "hour"),
            ("2026-03-04T10:60:30", "minute"),
            ("2026-03-04T10:20:60", "second"),
            ("2026-03-04T10:20:30+15:00", "offset"),
            ("0000-03-04T10:20:30", "year"),
            ("9999-12-31T23:00:00Z", "year"),
        ] {
            assert_eq!(t(bad), Err(DateTimeError::Range { part }), "{bad:?}");
        }
    }

    #[test]
    fn strict_local_form() {
        assert!(BeijingTime::parse_local("2026-03-03T09:15:00").is_ok());
        assert!(BeijingTime::parse_local("2026-03-03T09:15:00+08:00").is_err());
        assert!(BeijingTime::parse_local("2026-03-03T09:15:00.1").is_err());
        assert!(BeijingTime::parse_local("2026-03-03T24:00:00").is_err());
        assert!(check_date("2024-02-29").is_ok());
        assert!(check_date("2100-02-29").is_err());
        assert!(check_date("2026-03-03Z").is_err());
    }

    #[test]
    fn day_arithmetic_round_trips() {
        for z in [-719_468, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
