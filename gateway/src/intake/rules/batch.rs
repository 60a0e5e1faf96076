//! Batch-level rules: eligible payout bank, current budget year, indicator and supervised flag.
use super::{Violation, codes};
use crate::intake::parse::HeaderIn;

/// The header rules in code-table order. `eligible` says whether the payout bank is shortlisted and not
/// disqualified for the department (`Err(reason)` otherwise).
pub fn check_header(
    h: &HeaderIn,
    current_year: i32,
    eligible: Result<(), String>,
) -> Result<(), Violation> {
    if let Err(why) = eligible {
        return Err(Violation {
            code: codes::BANK_NOT_ELIGIBLE,
            message: why,
        });
    }
    if h.budget_year != i64::from(current_year) {
        return Err(Violation {
            code: codes::PRIOR_YEAR,
            message: format!(
                "budget_year {} is not the current year {current_year}",
                h.budget_year
            ),
        });
    }
    if h.indicator_no
        .as_deref()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(Violation {
            code: codes::INDICATOR,
            message: "indicator_no (指标文号) is missing".into(),
        });
    }
    if h.supervised != Some(true) {
        return Err(Violation {
            code: codes::INDICATOR,
            message: "supervised (惠民惠农监管资金标识) must be true".into(),
        });
    }
    Ok(())
}
