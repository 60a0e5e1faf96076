//! `GET /dashboard`: bank payouts and punctuality for people, in Chinese, server-rendered HTML with
//! inline CSS and SVG charts: no script, no external asset, so it works on a closed network.
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;

use super::{ApiResult, ApiState};
use crate::clock::rfc3339;
use crate::domain::Fen;
use crate::sla::assessment;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart: (label, value, value text).
fn bars(rows: &[(String, i64, String)], color: &str) -> String {
    if rows.is_empty() {
        return "<p class=\"empty\">暂无数据 (no data)</p>".into();
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let h = 26 * rows.len() + 4;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 640 {h}\" width=\"640\" height=\"{h}\" role=\"img\">"
    );
    for (i, (label, v, text)) in rows.iter().enumerate() {
        let y = 4 + i * 26;
        let w = (*v as f64 / max as f64 * 380.0).round().max(1.0);
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" class=\"lbl\">{}</text><rect x=\"170\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"val\">{}</text>",
            y + 14,
            esc(label),
            178.0 + w,
            y + 14,
            esc(text)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The page.
pub async fn page(State(st): State<ApiState>) -> ApiResult<Html<String>> {
    let app = &st.app;
    let year = app.clock.today().year();
    let banks: Vec<String> = app.banks.all().map(|b| b.code.clone()).collect();
    let name = |code: &str| {
        app.banks
            .get(code)
            .map(|b| b.profile.name.clone())
            .unwrap_or_else(|| code.to_owned())
    };
    let rows = assessment::assess(&app.store, &banks, year, None).await?;
    let mut punct = String::new();
    let mut strike_bars = Vec::new();
    for r in rows.iter().filter(|r| r.department_code.is_none()) {
        let share = if r.queries > 0 {
            format!("{:.0}%", r.on_time as f64 * 100.0 / r.queries as f64)
        } else {
            "—".into()
        };
        let rating = if r.rating == "unqualified" {
            "<b class=\"bad\">不合格</b>"
        } else {
            "合格"
        };
        let _ = write!(
            punct,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{share}</td>\
             <td class=\"n\">{}</td><td>{rating}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&r.bank_code),
            esc(&name(&r.bank_code)),
            r.queries,
            r.on_time,
            r.strikes,
            r.departments_unqualified,
            if r.disqualified {
                "已取消资格"
            } else if r.disqualification_due {
                "待确认取消"
            } else {
                ""
            }
        );
        strike_bars.push((r.bank_code.clone(), r.strikes, format!("{} 次", r.strikes)));
    }
    let mut flight = String::new();
    for b in app.store.in_flight(100).await? {
        let _ = write!(
            flight,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{} / {}</td><td>{}</td></tr>",
            esc(&b.batch_no),
            esc(&b.bank_code),
            esc(&b.department_code),
            b.done,
            b.items,
            b.due_at
                .map(rfc3339)
                .unwrap_or_else(|| "未查询 (not clicked)".into())
        );
    }
    let mut failed = String::new();
    for (batch_no, bank, n, oldest) in app.store.failed_awaiting().await? {
        let deadline = crate::sla::deadline::working_days_end_ms(oldest, 2, &app.calendar);
        let _ = write!(
            failed,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{n}</td><td>{}</td><td>{}</td></tr>",
            esc(&batch_no),
            esc(&bank),
            rfc3339(oldest),
            rfc3339(deadline)
        );
    }
    let by_bank: Vec<_> = app
        .store
        .payouts(false)
        .await?
        .into_iter()
        .map(|(k, n, a)| (k, a, format!("{} 元 / {n} 笔", Fen(a).yuan_grouped())))
        .collect();
    let by_subsidy: Vec<_> = app
        .store
        .payouts(true)
        .await?
        .into_iter()
        .map(|(k, n, a)| (k, a, format!("{} 元 / {n} 笔", Fen(a).yuan_grouped())))
        .collect();
    let empty_row =
        |cols: usize| format!("<tr><td colspan=\"{cols}\" class=\"empty\">无 (none)</td></tr>");
    Ok(Html(format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>惠民惠农资金代发看板 · Payout dashboard</title>
<style>
body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.5em auto;max-width:1200px;color:#222}}
h1{{font-size:1.5em}} h2{{font-size:1.15em;margin-top:1.6em;border-bottom:2px solid #c33;padding-bottom:.2em}}
table{{border-collapse:collapse;width:100%;font-size:.92em}} th,td{{border:1px solid #ddd;padding:.35em .6em;text-align:left}}
th{{background:#f4f4f4}} td.n{{text-align:right}} .bad{{color:#c00}} .empty{{color:#888}}
.grid{{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}} .chart text{{font-size:12px}} .chart .val{{fill:#333}}
</style></head><body>
<h1>惠民惠农财政资金代发看板 <small>{year} 年</small></h1>
<h2>代发银行次日反馈考核 Bank punctuality</h2>
<table><tr><th>银行代码</th><th>名称</th><th>查询次数</th><th>按时</th><th>按时率</th><th>未及时反馈(次)</th><th>年度评价</th><th>评为不合格的部门</th><th>代发资格</th></tr>{punct}</table>
<div class="grid"><div><h2>未及时反馈次数 Strikes</h2>{strikes}</div><div><h2>按银行发放金额 Paid by bank</h2>{by_bank}</div></div>
<h2>按补贴项目发放金额 Paid by subsidy</h2>{by_subsidy}
<h2>在途批次及反馈时限 Batches in flight</h2>
<table><tr><th>批次号</th><th>代发银行</th><th>部门</th><th>已反馈/笔数</th><th>反馈时限</th></tr>{flight}</table>
<h2>待处理失败明细 Failed items awaiting correction or return</h2>
<table><tr><th>批次号</th><th>代发银行</th><th>失败笔数</th><th>最早失败时间</th><th>处理时限(2个工作日)</th></tr>{failed}</table>
</body></html>"#,
        punct = if punct.is_empty() {
            empty_row(9)
        } else {
            punct
        },
        strikes = bars(&strike_bars, "#c33"),
        by_bank = bars(&by_bank, "#36c"),
        by_subsidy = bars(&by_subsidy, "#396"),
        flight = if flight.is_empty() {
            empty_row(5)
        } else {
            flight
        },
        failed = if failed.is_empty() {
            empty_row(5)
        } else {
            failed
        },
    )))
}
