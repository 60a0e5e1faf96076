//! The dashboard in headless Chromium (Debian `chromium`, installed by `.ci/run`): it loads without
//! console errors, shows the seeded banks' figures, and a screenshot is saved as a test artifact
//! (`target/test-artifacts/dashboard.png`).
mod common;

use std::process::Command;
use std::time::Duration;

use bank_profiles::DurationText;
use common::*;

fn chromium(args: &[&str]) -> std::process::Output {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new("which")
                .arg(b)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("headless Chromium is needed: apt-get install -y chromium");
    let profile = std::env::temp_dir().join(format!("gw-chromium-{}", std::process::id()));
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_the_banks_figures_without_errors() {
    let dir = TempDir::new("dash");
    let db = dir.0.join("gw.db");
    let sim = bank_a(|c| {
        c.processing = Duration::from_secs(2);
        c.fail_permille = 200;
    })
    .await;
    let mut cfg = config(&db, &sim.addr.to_string());
    cfg.sla.deadline = "1s".into();
    if let Some(b) = cfg.banks.get_mut(BANK_A) {
        b.poll_interval = Some(DurationText(Duration::from_millis(300)));
    }
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);
    let roster = gen_roster(&["--items", "200", "--seed", "81", "--payout-bank", BANK_A]);
    let (s, a) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{a}");
    let id = a["batch_id"].as_str().expect("id").to_owned();
    api.post(SUBMITTER, &format!("/v1/batches/{id}/query"), None)
        .await;
    api.wait_final(&id, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // let the evaluator record the strike

    let url = format!("{}/dashboard", api.base);
    let dom = chromium(&["--dump-dom", &url]);
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {log}");
    assert!(
        !log.contains("Uncaught") && !log.contains(":CONSOLE("),
        "console messages: {log}"
    );
    assert!(html.contains("惠民惠农财政资金代发看板"), "{html}");
    assert!(html.contains(BANK_A), "the bank is listed");
    assert!(html.contains("代发银行A（农信）"));
    assert!(html.contains("不合格") || html.contains("合格"));
    assert!(html.contains("<svg"), "charts are drawn");
    assert!(html.contains("耕地地力保护补贴"), "payouts by subsidy");

    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&[
        "--window-size=1280,1100",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    gw.shutdown().await;
    sim.shutdown().await;
}
