//! Injectable time. Domain code never reads the wall clock: it asks a [`Clock`], so tests can cross
//! midnights, holidays and year ends instantly.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Date, OffsetDateTime, UtcOffset};

/// Asia/Shanghai: UTC+8 all year (no daylight saving since 1991).
pub const SHANGHAI: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> OffsetDateTime;

    /// Now in Asia/Shanghai.
    fn now_shanghai(&self) -> OffsetDateTime {
        self.now().to_offset(SHANGHAI)
    }

    /// Today's date in Asia/Shanghai.
    fn today(&self) -> Date {
        self.now_shanghai().date()
    }

    /// Now as Unix milliseconds (the store's time unit).
    fn now_ms(&self) -> i64 {
        to_ms(self.now())
    }
}

/// Shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock, optionally shifted (drills, tests of a running process).
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_ms: AtomicI64,
}

impl SystemClock {
    /// The system clock shifted by `offset_ms`.
    pub fn shifted(offset_ms: i64) -> Self {
        Self {
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    /// Moves this clock forward (or back) by `delta_ms`.
    pub fn advance_ms(&self, delta_ms: i64) {
        self.offset_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// Unix milliseconds of a time.
pub fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The time of Unix milliseconds.
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 in Asia/Shanghai, e.g. `2026-03-03T10:00:00+08:00` (milliseconds when not whole).
pub fn rfc3339(ms: i64) -> String {
    let t = from_ms(ms).to_offset(SHANGHAI);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s, milli) = (t.hour(), t.minute(), t.second(), t.millisecond());
    if milli == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+08:00")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}+08:00")
    }
}

/// `YYYY-MM-DD`.
pub fn date_str(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `YYYY-MM-DD` strictly.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))?
            .parse::<u32>()
            .ok()
    };
    let y = i32::try_from(num(0..4)?).ok()?;
    let m = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let d = u8::try_from(num(8..10)?).ok()?;
    Date::from_calendar_date(y, m, d).ok()
}

/// Start of a Shanghai day, as Unix milliseconds.
pub fn day_start_ms(d: Date) -> i64 {
    to_ms(d.midnight().assume_offset(SHANGHAI))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_shanghai_time() {
        let ms = day_start_ms(Date::from_calendar_date(2026, time::Month::March, 3).expect("date"));
        assert_eq!(rfc3339(ms), "2026-03-03T00:00:00+08:00");
        assert_eq!(rfc3339(ms + 1_500), "2026-03-03T00:00:01.500+08:00");
        assert_eq!(from_ms(ms).to_offset(SHANGHAI).hour(), 0);
    }

    #[test]
    fn parses_dates_strictly() {
        assert!(parse_date("2026-02-28").is_some());
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("2026-2-28").is_none());
        assert!(parse_date("２026-02-28").is_none());
    }
}
