//! The PRC working calendar (Asia/Shanghai): weekdays work, weekends rest, except the listed public
//! holidays and adjusted working weekends (调休). Loaded from data, one table per year.
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use time::{Date, Weekday};

use crate::clock::parse_date;

/// The calendar shipped with the gateway (a copy of `shared/data/cn-working-calendar.toml`).
pub const BUILTIN: &str = include_str!("../../../data/cn-working-calendar.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    years: BTreeMap<String, Year>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Year {
    holidays: Vec<String>,
    working_weekends: Vec<String>,
}

/// A working-day calendar.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    holidays: BTreeSet<Date>,
    working_weekends: BTreeSet<Date>,
    years: BTreeSet<i32>,
}

impl Calendar {
    /// Parses the TOML format of `cn-working-calendar.toml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut cal = Calendar::default();
        for (year, y) in file.years {
            let yn: i32 = year
                .parse()
                .map_err(|_| format!("years.{year}: not a year"))?;
            cal.years.insert(yn);
            for (list, set, what) in [
                (&y.holidays, &mut cal.holidays, "holidays"),
                (
                    &y.working_weekends,
                    &mut cal.working_weekends,
                    "working_weekends",
                ),
            ] {
                for d in list {
                    let date = parse_date(d)
                        .ok_or_else(|| format!("years.{year}.{what}: `{d}` is not a date"))?;
                    if date.year() != yn {
                        return Err(format!("years.{year}.{what}: `{d}` is not in {year}"));
                    }
                    set.insert(date);
                }
            }
            if let Some(d) = y
                .working_weekends
                .iter()
                .filter_map(|d| parse_date(d))
                .find(|d| !is_weekend(*d))
            {
                return Err(format!(
                    "years.{year}.working_weekends: {d} is not a weekend day"
                ));
            }
        }
        Ok(cal)
    }

    /// The built-in calendar.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).unwrap_or_default()
    }

    /// Whether the calendar has the official schedule of `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Years covered.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: Date) -> bool {
        if self.holidays.contains(&d) {
            return false;
        }
        if self.working_weekends.contains(&d) {
            return true;
        }
        !is_weekend(d)
    }

    /// The `n`-th working day after `d` (`n` >= 1).
    pub fn nth_working_day_after(&self, d: Date, n: u32) -> Date {
        let mut day = d;
        let mut left = n;
        // A year has at most a few dozen non-working days in a row: 400 steps is ample.
        for _ in 0..(400 * n.max(1)) {
            day = day.next_day().unwrap_or(day);
            if self.is_working_day(day) {
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        day
    }
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn knows_2026_spring_festival_and_adjusted_days() {
        let c = Calendar::builtin();
        assert!(c.covers(2025) && c.covers(2026) && !c.covers(2027));
        assert!(!c.is_working_day(date!(2026 - 02 - 16)));
        assert!(c.is_working_day(date!(2026 - 02 - 14))); // Saturday worked (调休)
        assert!(c.is_working_day(date!(2026 - 02 - 13)));
        // The working day after Friday 2026-02-13 is Saturday 2026-02-14 (调休), then 2026-02-24.
        assert_eq!(
            c.nth_working_day_after(date!(2026 - 02 - 13), 1),
            date!(2026 - 02 - 14)
        );
        assert_eq!(
            c.nth_working_day_after(date!(2026 - 02 - 14), 1),
            date!(2026 - 02 - 24)
        );
        // 2025: Friday 2025-09-26 + 2 working days crosses the 调休 Sunday 2025-09-28.
        assert_eq!(
            c.nth_working_day_after(date!(2025 - 09 - 26), 1),
            date!(2025 - 09 - 28)
        );
        assert_eq!(
            c.nth_working_day_after(date!(2025 - 09 - 26), 2),
            date!(2025 - 09 - 29)
        );
    }

    #[test]
    fn refuses_bad_calendars() {
        assert!(
            Calendar::parse("[years.2026]\nholidays=[\"2026-13-01\"]\nworking_weekends=[]")
                .is_err()
        );
        assert!(
            Calendar::parse("[years.2026]\nholidays=[]\nworking_weekends=[\"2026-01-05\"]")
                .is_err()
        );
        assert!(
            Calendar::parse("[years.2026]\nholidays=[]\nworking_weekends=[]\nextra=1").is_err()
        );
    }
}
