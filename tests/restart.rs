//! The gateway process is killed (SIGKILL) while bank batches are being sent and restarted on the same
//! store (a SQLite file; a PostgreSQL database with fewer items): nothing is lost, no item is paid
//! twice, and what the bank may have received is asked about before anything is sent again.
mod common;

use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_sending_loses_nothing_and_pays_nobody_twice() {
    scenario(StoreBackend::Sqlite, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_sigkill_while_sending_loses_nothing_and_pays_nobody_twice() {
    scenario(StoreBackend::Postgres, 8_000).await;
}

/// `items` in ten bank batches.
async fn scenario(backend: StoreBackend, items: u64) {
    let dir = TempDir::new("restart");
    let store = TestStore::new(backend, &dir.0);
    // Bank A's profile with smaller bank batches, loaded from a folder (it replaces the built-in one).
    let profiles = dir.0.join("profiles");
    std::fs::create_dir_all(&profiles).expect("mkdir");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bank-profiles/profiles/402241000015.toml"
    ))
    .expect("profile")
    .replace(
        "items_per_part = 50000",
        &format!("items_per_part = {}", items / 10),
    );
    std::fs::write(profiles.join("402241000015.toml"), &text).expect("write profile");
    let profile =
        bank_profiles::parse(&profiles.join("402241000015.toml"), &text).expect("profile parses");

    let sim = {
        let mut cfg = simulators::FixedWidthSimConfig::new(profile);
        cfg.processing = Duration::from_millis(500);
        cfg.faults.reply_delay = Duration::from_millis(700);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        simulators::FixedWidthSim::start(cfg, listener).expect("sim")
    };
    let port = free_port();
    let config_path = dir.0.join("gateway.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "{url}"
[[tokens]]
token = "{SUBMITTER}"
role = "submitter"
[gateway]
node_id = "GW01"
profiles_dir = "{profiles}"
[banks."{BANK_A}"]
endpoint = "{sim}"
poll_interval = "500ms"
"#,
            url = store.url,
            profiles = profiles.display(),
            sim = sim.addr
        ),
    )
    .expect("config");
    let api = Api::new(format!("127.0.0.1:{port}"));

    let mut child = spawn_gateway(&config_path);
    wait_healthy(&api).await;
    let roster = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        "31",
        "--payout-bank",
        BANK_A,
    ]);
    let (s, answer) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(s, 202, "{answer}");
    let accepted = answer["accepted_count"].as_u64().expect("accepted");
    let batch_id = answer["batch_id"].as_str().expect("id").to_owned();

    // Kill it while parts are on the wire: some read by the bank, their replies not yet back.
    let started = Instant::now();
    while sim.ledger.submits_seen() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no submit reached the bank"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let paid_at_kill = sim.ledger.accepted_batches();
    assert!(
        paid_at_kill < 10,
        "killed before every part was sent ({paid_at_kill} accepted)"
    );

    let mut child = spawn_gateway(&config_path);
    wait_healthy(&api).await;
    let batch = api.wait_final(&batch_id, Duration::from_secs(300)).await;
    child.kill().expect("stop");
    let _ = child.wait();

    let ledger = &sim.ledger;
    assert_eq!(ledger.accepted_batches(), 10, "{:?}", batch["parts"]);
    assert_eq!(ledger.items_paid() as u64, accepted);
    assert_eq!(ledger.max_payments_per_id(), 1, "nobody paid twice");
    assert_eq!(
        ledger.duplicate_submits(),
        0,
        "an interrupted send was asked about, never blindly resent"
    );
    let c = &batch["counts"];
    assert_eq!(c["succeeded"].as_u64(), Some(ledger.credited() as u64));
    assert_eq!(c["failed"].as_u64(), Some(ledger.failed() as u64));
    assert_eq!(
        c["succeeded"].as_u64().unwrap_or(0) + c["failed"].as_u64().unwrap_or(0),
        accepted
    );
    sim.shutdown().await;
    drop(store);
}
