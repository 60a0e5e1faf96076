//! The text of a notice (`sms-smpp.md`, "The notice"): a per-subsidy template, the default one of the
//! spec otherwise, filled with masked data only: the account's last 4 digits, never an ID or a full
//! account number.
//!
//! ```text
//! 【惠民惠农】您的{subsidy_name}{amount}元已于{date}发放至您尾号{last4}的{account_desc}，请注意查收。
//!   amount 1,234.56 (yuan, from fen)   date 3月7日 (the day the account bank credited it, Beijing)
//!   account_desc 社保卡 (social security card) | 银行账户 (otherwise)
//! ```
use std::collections::BTreeMap;

use crate::clock::SHANGHAI;
use crate::store::NoticeJob;

/// The spec's default template.
pub const DEFAULT_TEMPLATE: &str = "【惠民惠农】您的{subsidy_name}{amount}元已于{date}发放至您尾号{last4}的{account_desc}，请注意查收。";

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "{subsidy_name}",
    "{amount}",
    "{date}",
    "{last4}",
    "{account_desc}",
];

/// Checks a template: every `{...}` is a known placeholder, and the braces balance.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{after}`: a `{{` without `}}`"))?;
        let name = &after[..=close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {name} (known: {})",
                PLACEHOLDERS.join(" ")
            ));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("a `}` without `{`".into());
    }
    Ok(())
}

/// Yuan with thousands separators and 2 decimals, from fen: `123456` -> `1,234.56`.
pub fn yuan(fen: i64) -> String {
    let neg = fen < 0;
    let f = fen.unsigned_abs();
    let whole = (f / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{:02}", if neg { "-" } else { "" }, f % 100)
}

/// `M月D日` of a Unix-ms time, Beijing.
pub fn month_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(SHANGHAI);
    format!("{}月{}日", u8::from(t.month()), t.day())
}

/// The last 4 characters of an account number.
pub fn last4(account_no: &str) -> &str {
    let n = account_no.len();
    account_no.get(n.saturating_sub(4)..).unwrap_or(account_no)
}

/// Templates by subsidy code.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    by_subsidy: BTreeMap<String, String>,
}

impl Templates {
    /// Checked templates.
    pub fn new(by_subsidy: BTreeMap<String, String>) -> Result<Self, String> {
        for (code, t) in &by_subsidy {
            check_template(t).map_err(|e| format!("sms.templates.{code}: {e}"))?;
        }
        Ok(Self { by_subsidy })
    }

    /// The text of a notice.
    pub fn render(&self, n: &NoticeJob) -> String {
        let t = self
            .by_subsidy
            .get(&n.subsidy_code)
            .map_or(DEFAULT_TEMPLATE, String::as_str);
        let desc = if n.account_kind == "ssc" {
            "社保卡"
        } else {
            "银行账户"
        };
        t.replace("{subsidy_name}", &n.subsidy_name)
            .replace("{amount}", &yuan(n.amount_fen))
            .replace("{date}", &month_day(n.credited_at))
            .replace("{last4}", last4(&n.account_no))
            .replace("{account_desc}", desc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> NoticeJob {
        NoticeJob {
            batch_id: "b".into(),
            seq: 1,
            phone: "13912345678".into(),
            account_no: "6217000010001234567".into(),
            account_kind: "ssc".into(),
            amount_fen: 123_456,
            // 2026-03-07 01:30 Beijing = 2026-03-06 17:30 UTC
            credited_at: 1_772_818_200_000,
            subsidy_code: "GDBZ".into(),
            subsidy_name: "耕地地力保护补贴".into(),
            attempts: 1,
        }
    }

    #[test]
    fn renders_the_default_template_of_the_spec() {
        let t = Templates::default().render(&job());
        assert_eq!(
            t,
            "【惠民惠农】您的耕地地力保护补贴1,234.56元已于3月7日发放至您尾号4567的社保卡，请注意查收。"
        );
        assert!(!t.contains("6217000010001234567"));
    }

    #[test]
    fn amounts_and_dates() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(100_000), "1,000.00");
        assert_eq!(yuan(123_456_789), "1,234,567.89");
        assert_eq!(month_day(1_772_818_200_000), "3月7日");
        assert_eq!(last4("123"), "123");
    }

    #[test]
    fn per_subsidy_templates_are_checked() {
        let mut m = BTreeMap::new();
        m.insert("X".to_owned(), "{amount}元 {id_no}".to_owned());
        assert!(
            Templates::new(m)
                .expect_err("unknown placeholder")
                .contains("{id_no}")
        );
        let mut m = BTreeMap::new();
        m.insert("GDBZ".to_owned(), "到账{amount}元，尾号{last4}".to_owned());
        let t = Templates::new(m).expect("valid");
        let mut j = job();
        j.account_kind = "personal".into();
        assert_eq!(t.render(&j), "到账1,234.56元，尾号4567");
        j.subsidy_code = "OTHER".into();
        assert!(t.render(&j).contains("银行账户"));
    }
}
