//! The yearly assessment: per bank x department (the agreement) and province-wide per bank.
//!
//! A bank with 3 or more strikes in a calendar year in a department's batches is rated unqualified by
//! that department for that year (or an admin recorded that rating for a year before the gateway ran).
//! Unqualified two years running: disqualification due, until an admin confirms it.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::evaluator::STRIKES_UNQUALIFIED;
use crate::clock::day_start_ms;
use crate::store::{Store, StoreError};

/// One row of the assessment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    /// Bank.
    pub bank_code: String,
    /// Department, `None` on the province-wide row.
    pub department_code: Option<String>,
    /// Queries whose deadline fell in the year.
    pub queries: i64,
    /// Of which fed back on time.
    pub on_time: i64,
    /// Strikes in the year.
    pub strikes: i64,
    /// `qualified` or `unqualified`.
    pub rating: &'static str,
    /// The previous year's rating, `None` without any data.
    pub previous_rating: Option<&'static str>,
    /// Unqualified this year and the previous one, not yet confirmed.
    pub disqualification_due: bool,
    /// Confirmed by an admin.
    pub disqualified: bool,
    /// Departments rating the bank unqualified (province row); 1 or 0 on an agreement row.
    pub departments_unqualified: i64,
}

fn year_bounds(year: i32) -> (i64, i64) {
    let start = |y: i32| {
        time::Date::from_calendar_date(y, time::Month::January, 1).map_or(i64::MAX, day_start_ms)
    };
    (start(year), start(year + 1))
}

/// The rating of (bank, dept) in a year from strikes and recorded ratings; `None` without any data.
fn rating_of(
    strikes: Option<i64>,
    recorded: Option<&String>,
    has_queries: bool,
) -> Option<&'static str> {
    let by_strikes = strikes.unwrap_or(0) >= STRIKES_UNQUALIFIED;
    match recorded.map(String::as_str) {
        Some("unqualified") => Some("unqualified"),
        _ if by_strikes => Some("unqualified"),
        Some(_) => Some("qualified"),
        None if has_queries || strikes.is_some() => Some("qualified"),
        None => None,
    }
}

/// The assessment of `year` (all banks in `banks`, every department with data), optionally one department.
pub async fn assess(
    store: &Store,
    banks: &[String],
    year: i32,
    department: Option<&str>,
) -> Result<Vec<Row>, StoreError> {
    let (from, to) = year_bounds(year);
    let (pfrom, pto) = year_bounds(year - 1);
    let figures = store.agreement_figures(year, from, to).await?;
    let prev_figures = store.agreement_figures(year - 1, pfrom, pto).await?;
    let recorded = store.past_ratings(year).await?;
    let prev_recorded = store.past_ratings(year - 1).await?;
    let disq = store.disqualifications().await?;
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    keys.extend(figures.keys().cloned());
    keys.extend(recorded.keys().cloned());
    keys.extend(prev_figures.keys().cloned());
    keys.extend(prev_recorded.keys().cloned());
    keys.extend(disq.iter().cloned());
    let mut rows = Vec::new();
    let zero = |bank: &str| Row {
        bank_code: bank.to_owned(),
        department_code: None,
        queries: 0,
        on_time: 0,
        strikes: 0,
        rating: "qualified",
        previous_rating: None,
        disqualification_due: false,
        disqualified: false,
        departments_unqualified: 0,
    };
    // Every shortlisted bank has a province-wide row; account banks get one when they have data.
    let mut province: BTreeMap<String, Row> = banks.iter().map(|b| (b.clone(), zero(b))).collect();
    let mut prev_unqualified_depts: BTreeMap<String, i64> = BTreeMap::new();
    for (bank, dept) in keys {
        if department.is_some_and(|d| d != dept) {
            continue;
        }
        let f = figures
            .get(&(bank.clone(), dept.clone()))
            .cloned()
            .unwrap_or_default();
        let pf = prev_figures.get(&(bank.clone(), dept.clone()));
        let this = rating_of(
            figures
                .get(&(bank.clone(), dept.clone()))
                .map(|f| f.strikes),
            recorded.get(&(bank.clone(), dept.clone())),
            f.queries > 0,
        )
        .unwrap_or("qualified");
        let prev = rating_of(
            pf.map(|f| f.strikes),
            prev_recorded.get(&(bank.clone(), dept.clone())),
            pf.is_some_and(|f| f.queries > 0),
        );
        let disqualified = disq.contains(&(bank.clone(), dept.clone()));
        let row = Row {
            bank_code: bank.clone(),
            department_code: Some(dept.clone()),
            queries: f.queries,
            on_time: f.queries - f.struck_queries,
            strikes: f.strikes,
            rating: this,
            previous_rating: prev,
            disqualification_due: this == "unqualified"
                && prev == Some("unqualified")
                && !disqualified,
            disqualified,
            departments_unqualified: i64::from(this == "unqualified"),
        };
        let p = province.entry(bank.clone()).or_insert_with(|| zero(&bank));
        p.queries += row.queries;
        p.on_time += row.on_time;
        p.strikes += row.strikes;
        p.departments_unqualified += row.departments_unqualified;
        p.disqualification_due |= row.disqualification_due;
        p.disqualified |= row.disqualified;
        if prev == Some("unqualified") {
            *prev_unqualified_depts.entry(bank.clone()).or_default() += 1;
        }
        if prev.is_some() && p.previous_rating.is_none() {
            p.previous_rating = Some("qualified");
        }
        rows.push(row);
    }
    for (bank, p) in province.iter_mut() {
        p.rating = if p.departments_unqualified > 0 {
            "unqualified"
        } else {
            "qualified"
        };
        if prev_unqualified_depts.get(bank).copied().unwrap_or(0) > 0 {
            p.previous_rating = Some("unqualified");
        }
    }
    rows.extend(province.into_values());
    rows.sort_by(|a, b| {
        (
            &a.bank_code,
            a.department_code.is_none(),
            &a.department_code,
        )
            .cmp(&(
                &b.bank_code,
                b.department_code.is_none(),
                &b.department_code,
            ))
    });
    Ok(rows)
}

/// Whether a disqualification of (bank, dept) is due now: unqualified in a year and the one before,
/// for the current or the previous year.
pub async fn disqualification_due(
    store: &Store,
    bank: &str,
    dept: &str,
    current_year: i32,
) -> Result<bool, StoreError> {
    for y in [current_year, current_year - 1] {
        if store.unqualified_in(bank, dept, y).await?
            && store.unqualified_in(bank, dept, y - 1).await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The rows as CSV: UTF-8 with a byte-order mark, a header row, the same fields as the JSON.
pub fn to_csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "\u{FEFF}bank_code,department_code,queries,on_time,strikes,rating,previous_rating,disqualification_due,disqualified,departments_unqualified\r\n",
    );
    for r in rows {
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        };
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\r\n",
            field(&r.bank_code),
            field(r.department_code.as_deref().unwrap_or("")),
            r.queries,
            r.on_time,
            r.strikes,
            r.rating,
            r.previous_rating.unwrap_or(""),
            r.disqualification_due,
            r.disqualified,
            r.departments_unqualified
        ));
    }
    out
}
