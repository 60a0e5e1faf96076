//! A fourth bank from a profile file alone: a copy of bank A's profile under another code, with other
//! field widths (a wider `account_name`, a narrower `memo`, every offset after them moved, longer
//! records), written to the gateway's `profiles_dir`. Bank A's simulator serves it (it reads the layouts
//! from the profile), the gateway pays a roster through it, and the simulator's books show every item
//! paid exactly once. No Rust knows about this bank.
mod common;

use std::time::Duration;

use bank_profiles::Profile;
use codecs::format::fixed_width::FieldSpec;
use common::*;

const BANK_D: &str = "402241000099";
/// Record length of the new bank (bank A: 200).
const RECORD_LEN: usize = 240;

/// Sets the widths of `layout`'s fields named in `widths`, moves the offsets after them, and gives the
/// last field (`reserved`) what is left of `RECORD_LEN`.
fn resize(layout: &mut [FieldSpec], widths: &[(&str, usize)]) {
    for f in layout.iter_mut() {
        if let Some((_, w)) = widths.iter().find(|(n, _)| *n == f.name) {
            f.width = *w;
        }
    }
    let used: usize = layout.iter().rev().skip(1).map(|f| f.width).sum();
    let last = layout.last_mut().expect("a layout has fields");
    assert_eq!(
        last.name, "reserved",
        "bank A's layouts end with `reserved`"
    );
    last.width = RECORD_LEN - used;
    let mut at = 0;
    for f in layout.iter_mut() {
        f.at = at;
        at += f.width;
    }
}

/// Bank A's profile as a new bank: other code, name, record length and detail layout.
fn fourth_bank_profile() -> String {
    let mut p: Profile = bank_a_profile();
    p.code = BANK_D.into();
    p.name = "代发银行D（测试：仅由档案定义）".into();
    let fw = p.fixed_width.as_mut().expect("fixed-width table");
    fw.record_len = RECORD_LEN;
    for (name, layout) in fw.layouts.iter_mut() {
        let widths: &[(&str, usize)] = if name == "submit_detail" {
            &[("account_name", 80), ("memo", 20)]
        } else {
            &[]
        };
        resize(layout, widths);
    }
    bank_profiles::to_toml(&p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_bank_from_a_profile_file_alone_pays_each_item_once() {
    let dir = TempDir::new("fourth-bank");
    let profiles = dir.0.join("profiles");
    std::fs::create_dir_all(&profiles).expect("mkdir");
    let file = profiles.join(format!("{BANK_D}.toml"));
    std::fs::write(&file, fourth_bank_profile()).expect("write profile");

    // The profile loads from the folder like any other, with its own layout.
    let loaded = bank_profiles::load_dir(&profiles).expect("the new profile is valid");
    let profile = loaded[BANK_D].clone();
    let detail = profile
        .fixed_width
        .as_ref()
        .expect("fixed-width")
        .layout("submit_detail")
        .expect("layout");
    let name = detail.field("account_name").expect("account_name");
    assert_eq!((name.at, name.width), (41, 80));
    let memo = detail.field("memo").expect("memo");
    assert_eq!((memo.at, memo.width), (179, 20));
    assert_eq!(detail.record_len(), RECORD_LEN);

    let sim = {
        let mut cfg = simulators::FixedWidthSimConfig::new(profile);
        cfg.processing = Duration::from_millis(500);
        cfg.fail_permille = 40;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        simulators::FixedWidthSim::start(cfg, listener).expect("simulator")
    };
    let db = dir.0.join("gw.db");
    let mut cfg = config(&db, &sim.addr.to_string());
    let settings = cfg.banks.remove(BANK_A).expect("bank A's entry");
    cfg.banks.insert(BANK_D.into(), settings);
    cfg.gateway.profiles_dir = Some(profiles.clone());
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);

    let roster = gen_roster(&[
        "--items",
        "3000",
        "--bad",
        "10",
        "--seed",
        "44",
        "--payout-bank",
        BANK_D,
    ]);
    let (status, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(status, 202, "{answer}");
    let accepted = answer["accepted_count"].as_u64().expect("accepted_count");
    let rejected = answer["rejected_count"].as_u64().expect("rejected_count");
    assert_eq!(accepted + rejected, 3000);
    assert!(accepted >= 2990, "{answer}");
    let batch_id = answer["batch_id"].as_str().expect("batch_id").to_owned();
    let (click, q) = api
        .post(SUBMITTER, &format!("/v1/batches/{batch_id}/query"), None)
        .await;
    assert!(click == 202 || click == 200, "{q}");

    let batch = api.wait_final(&batch_id, Duration::from_secs(300)).await;
    let ledger = &sim.ledger;
    assert_eq!(ledger.accepted_batches(), 1, "{batch}");
    assert_eq!(
        ledger.items_paid() as u64,
        accepted,
        "each accepted item paid"
    );
    assert_eq!(ledger.max_payments_per_id(), 1, "nobody paid twice");
    let c = &batch["counts"];
    assert_eq!(
        c["succeeded"].as_u64(),
        Some(ledger.credited() as u64),
        "{batch}"
    );
    assert_eq!(
        c["failed"].as_u64(),
        Some(ledger.failed() as u64),
        "{batch}"
    );
    assert!(ledger.failed() > 0, "some items fail at 40 permille");
    assert_eq!(c["review"].as_u64(), Some(0), "{batch}");
    assert_eq!(c["pending"].as_u64(), Some(0), "{batch}");
    assert_eq!(
        batch["amounts_fen"]["succeeded"].as_u64(),
        Some(ledger.credited_amount())
    );

    gw.shutdown().await;
    sim.shutdown().await;
}
