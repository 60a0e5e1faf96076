//! Deadline policies of the next-day feedback SLA (rules.md): `next-day` (default: 24:00 Asia/Shanghai of
//! the calendar day after the click), `next-working-day` (24:00 of the next working day after the click's
//! day), or a fixed duration (drills and tests).
use std::time::Duration;

use bank_profiles::DurationText;

use super::Calendar;
use crate::clock::{SHANGHAI, day_start_ms, from_ms};

/// How the deadline of a query is computed from its click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlinePolicy {
    /// End of the next calendar day.
    NextDay,
    /// End of the next working day.
    NextWorkingDay,
    /// A fixed duration after the click.
    Fixed(Duration),
}

impl DeadlinePolicy {
    /// Parses the config value.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "next-day" => Ok(Self::NextDay),
            "next-working-day" => Ok(Self::NextWorkingDay),
            other => DurationText::parse(other)
                .map(|d| Self::Fixed(d.0))
                .map_err(|_| {
                    format!("`{other}` is not next-day, next-working-day or a duration such as 30s")
                }),
        }
    }

    /// The deadline (Unix ms) of a click at `clicked_ms`.
    pub fn due_ms(self, clicked_ms: i64, calendar: &Calendar) -> i64 {
        let day = from_ms(clicked_ms).to_offset(SHANGHAI).date();
        match self {
            Self::NextDay => day
                .next_day()
                .and_then(|d| d.next_day())
                .map_or(i64::MAX, day_start_ms),
            Self::NextWorkingDay => {
                let d = calendar.nth_working_day_after(day, 1);
                d.next_day().map_or(i64::MAX, day_start_ms)
            }
            Self::Fixed(d) => {
                clicked_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
        }
    }
}

/// The end (24:00) of the `n`-th working day after the day of `at_ms`, as Unix ms: the correction window
/// of a failed item is `n = 2`.
pub fn working_days_end_ms(at_ms: i64, n: u32, calendar: &Calendar) -> i64 {
    let day = from_ms(at_ms).to_offset(SHANGHAI).date();
    calendar
        .nth_working_day_after(day, n)
        .next_day()
        .map_or(i64::MAX, day_start_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339;
    use time::macros::datetime;

    fn ms(t: time::OffsetDateTime) -> i64 {
        crate::clock::to_ms(t)
    }

    #[test]
    fn next_day_ends_at_midnight_after_tomorrow() {
        let c = Calendar::builtin();
        let click = ms(datetime!(2026-03-03 23:59:00 +08:00));
        assert_eq!(
            rfc3339(DeadlinePolicy::NextDay.due_ms(click, &c)),
            "2026-03-05T00:00:00+08:00"
        );
    }

    #[test]
    fn next_working_day_before_spring_festival() {
        let c = Calendar::builtin();
        // Clicked on Friday 2026-02-13: next working day is the 调休 Saturday 2026-02-14.
        let click = ms(datetime!(2026-02-13 10:00:00 +08:00));
        assert_eq!(
            rfc3339(DeadlinePolicy::NextWorkingDay.due_ms(click, &c)),
            "2026-02-15T00:00:00+08:00"
        );
        // Clicked on that Saturday: the holiday runs to 02-23, so the deadline is the end of 02-24.
        let click = ms(datetime!(2026-02-14 10:00:00 +08:00));
        assert_eq!(
            rfc3339(DeadlinePolicy::NextWorkingDay.due_ms(click, &c)),
            "2026-02-25T00:00:00+08:00"
        );
    }

    #[test]
    fn correction_window_crosses_adjusted_saturday() {
        let c = Calendar::builtin();
        // Failure received Thursday 2026-10-08: working days after are Friday 10-09 and Saturday 10-10 (调休).
        let at = ms(datetime!(2026-10-08 16:00:00 +08:00));
        assert_eq!(
            rfc3339(working_days_end_ms(at, 2, &c)),
            "2026-10-11T00:00:00+08:00"
        );
    }

    #[test]
    fn parses_policies() {
        assert_eq!(
            DeadlinePolicy::parse("30s"),
            Ok(DeadlinePolicy::Fixed(Duration::from_secs(30)))
        );
        assert!(DeadlinePolicy::parse("soon").is_err());
    }
}
