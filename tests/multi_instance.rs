//! Several gateway instances on one PostgreSQL store (issue 7): two or three `gateway serve` processes
//! share rosters to the three banks; one of them is killed (SIGKILL) while it holds bank work, and the
//! others finish it. Afterwards every bank simulator's books show each accepted item paid exactly
//! once, the SMS centre's books exactly one complete notice per credited item (the notice key travels
//! in a vendor TLV), every batch is final, and no limit the banks and the centre set per client was
//! passed in total: no bank closed a connection over its `max_connections`, the centre refused no
//! bind and never took more parts in a second than its rate.
//!
//! The size is a parameter: `GW_MULTI_ITEMS` items in each scenario (default 20,000, split over nine
//! rosters, three per bank). The full-size run of docs/operations.md:
//!
//! ```sh
//! GW_MULTI_ITEMS=200000 cargo test -p gateway --test multi_instance -- --nocapture
//! ```
//!
//! The SMS centre's rate is raised for the run (`GW_MULTI_SMS_RATE`, default 1,000 parts/s: 100/s
//! would make the notices alone take minutes); the instances that send notices divide it as they
//! would divide the real centre's 100/s. With two instances the killed one is the one without
//! `[sms]` (`GW_MULTI_KILL_SMS=1`: both send and one of them is killed); with three, a notice sender
//! is killed while it has notices in flight, and the other sender settles them once their lease
//! has run out (docs/operations.md "After an instance dies").
//! A third test runs deploy/gateway-1.toml and gateway-2.toml as deploy/compose.yaml would.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::*;
use gateway::clock::{Clock, SystemClock, date_str};
use gateway::roster::{self, RosterSpec};
use serde_json::Value;
use simulators::smsc::{SmscHandle, SmscSim, SmscSimConfig};

const KEY_TLV: u16 = 0x1400;
const SYSTEM_ID: &str = "gwmulti";
const ROSTERS_PER_BANK: u64 = 3;

/// The scenarios run one after the other: each starts a cluster, four simulators and its instances,
/// and the kill must come while work is in flight, which a machine shared with another scenario
/// makes hard to time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

/// One `gateway serve` child process; killed (by its own pid) if the test ends without stopping it.
struct Instance {
    node: String,
    api: Api,
    child: Option<Child>,
}

impl Instance {
    fn spawn(node: &str, config: &Path, port: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(["serve", "--config"])
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("GW_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gateway starts");
        Self {
            node: node.to_owned(),
            api: Api::new(format!("127.0.0.1:{port}")),
            child: Some(child),
        }
    }

    async fn wait_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(r) = self
                .api
                .http
                .get(format!("{}/healthz", self.api.base))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("{} exited at start: {status}", self.node);
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} did not come up",
                self.node
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            let _ = c.wait();
        }
    }

    /// SIGTERM (a clean stop hands its leases over), SIGKILL after 30 s.
    async fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let started = Instant::now();
        while c.try_wait().ok().flatten().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = c.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the store says the instance `node` holds right now: `(part leases, parts sending, notices
/// sending)`.
async fn held_by(pool: &sqlx::AnyPool, node: &str) -> (i64, i64, i64) {
    use sqlx::Row;
    let now = now_ms();
    let parts = sqlx::query(
        "select count(*) as n, count(*) filter (where state = 'sending') as s from parts \
         where lease_owner = $1 and lease_until > $2 and state in ('sending', 'accepted', 'unknown')",
    )
    .bind(node)
    .bind(now)
    .fetch_one(pool)
    .await
    .expect("parts held");
    let notices = sqlx::query(
        "select count(*) as n from notices where lease_owner = $1 and state = 'sending'",
    )
    .bind(node)
    .fetch_one(pool)
    .await
    .expect("notices held");
    (
        parts.try_get::<i64, _>("n").expect("n"),
        parts.try_get::<i64, _>("s").expect("s"),
        notices.try_get::<i64, _>("n").expect("n"),
    )
}

/// A bank's built-in profile with `edits` (`(from, to)` text replacements), for a profiles folder.
fn edited_profile(code: &str, edits: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../bank-profiles/profiles/{code}.toml")),
    )
    .expect("profile");
    for (from, to) in edits {
        assert!(text.contains(from), "{code}: `{from}` not in its profile");
        text = text.replace(from, to);
    }
    text
}

async fn smsc(rate: usize) -> SmscHandle {
    let mut cfg = SmscSimConfig::new(SYSTEM_ID, "pw");
    cfg.key_tlv = KEY_TLV;
    cfg.rate_per_second = rate;
    cfg.receipt_delay = Duration::from_millis(200);
    SmscSim::start(
        cfg,
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    )
    .expect("smsc")
}

struct Files {
    profiles: PathBuf,
    lookup_key: PathBuf,
    mac_key: PathBuf,
    smpp_password: PathBuf,
    pki: simulators::PkiFiles,
}

#[allow(clippy::too_many_arguments)]
fn instance_config(
    node: &str,
    instances: usize,
    port: u16,
    store_url: &str,
    files: &Files,
    banks: [&str; 3],
    sms: Option<(&str, u64)>,
) -> String {
    let [a, b, c] = banks;
    let mut text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "{store_url}"
[[tokens]]
token = "{SUBMITTER}"
role = "submitter"
[[tokens]]
token = "{ADMIN}"
role = "admin"
[gateway]
node_id = "{node}"
instances = {instances}
profiles_dir = "{profiles}"
lookup_key_file = "{lookup}"
[banks."{BANK_A}"]
endpoint = "{a}"
poll_interval = "500ms"
[banks."{BANK_B}"]
endpoint = "https://{b}"
ca = "{ca}"
client_cert = "{cert}"
client_key = "{key}"
poll_interval = "500ms"
[banks."{BANK_C}"]
endpoint = "{c}"
mac_key_file = "{mac}"
poll_interval = "500ms"
"#,
        profiles = files.profiles.display(),
        lookup = files.lookup_key.display(),
        ca = files.pki.ca.display(),
        cert = files.pki.client_cert.display(),
        key = files.pki.client_key.display(),
        mac = files.mac_key.display(),
    );
    if let Some((centre, rate)) = sms {
        text.push_str(&format!(
            r#"
[sms]
endpoint = "{centre}"
system_id = "{SYSTEM_ID}"
password_file = "{pw}"
service_number = "10690000"
# Longer than the centre takes to send a receipt again (5 s): a dead sender's notices the centre
# took are settled by their receipts, not sent twice.
unknown_grace = "15s"
max_rate = {rate}
key_tlv = {KEY_TLV}
"#,
            pw = files.smpp_password.display(),
        ));
    }
    text
}

/// A submitted roster.
struct Submitted {
    bank: &'static str,
    batch_id: String,
    accepted: u64,
}

/// Waits until every credited item's notice of the batch is settled at the gateway.
async fn wait_notices(api: &Api, batch_id: &str, credited: u64, limit: Duration) {
    let started = Instant::now();
    loop {
        let (_, n) = api
            .get(
                SUBMITTER,
                &format!("/v1/batches/{batch_id}/notices?limit=1"),
            )
            .await;
        let c = &n["counts"];
        let settled: u64 = ["submitted", "delivered"]
            .iter()
            .map(|s| c[*s].as_u64().unwrap_or(0))
            .sum();
        if settled == credited
            && c["pending"].is_null()
            && c["sending"].is_null()
            && c["unknown"].is_null()
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "notices of {batch_id} not settled after {limit:?}: {n}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints the parts by bank, state and lease holder, and the notices by state, every 5 s until no
/// part is open (`GW_MULTI_PROGRESS=1`: to watch a long run).
async fn progress(pool: &sqlx::AnyPool, started: Instant) {
    use sqlx::Row;
    loop {
        let parts = sqlx::query(
            "select bank_code, state, coalesce(lease_owner, '-') as owner, count(*) as n from parts \
             group by 1, 2, 3 order by 1, 2, 3",
        )
        .fetch_all(pool)
        .await
        .expect("parts");
        let notices = sqlx::query("select state, count(*) as n from notices group by 1 order by 1")
            .fetch_all(pool)
            .await
            .expect("notices");
        let mut line = format!("{:6.1} s  parts", started.elapsed().as_secs_f64());
        let mut open = 0;
        for r in &parts {
            let state: String = r.try_get("state").expect("state");
            let n: i64 = r.try_get("n").expect("n");
            if state != "final" {
                open += n;
            }
            let bank: String = r.try_get("bank_code").expect("bank");
            let owner: String = r.try_get("owner").expect("owner");
            line.push_str(&format!(" {}:{state}:{owner}={n}", &bank[..3]));
        }
        line.push_str("  notices");
        for r in &notices {
            let state: String = r.try_get("state").expect("state");
            let n: i64 = r.try_get("n").expect("n");
            line.push_str(&format!(" {state}={n}"));
        }
        println!("{line}");
        if open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Runs the scenario with `instances` gateways; `sms_on[i]` says whether instance `i` sends notices;
/// instance `victim` is killed mid-way.
async fn share_and_kill(instances: usize, sms_on: &[bool], victim: usize) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let total = env_u64("GW_MULTI_ITEMS", 20_000);
    let sms_rate = env_u64("GW_MULTI_SMS_RATE", 1_000);
    let per_roster = total.div_ceil(3 * ROSTERS_PER_BANK);
    // Parts of about a tenth of a roster (at least 1,000 items): enough parts to share and to be
    // caught holding some at the kill. Bank C's profile already has 2,000 items per part.
    let part = (per_roster / 10).max(1_000);
    let started = Instant::now();
    let dir = TempDir::new(&format!("multi-{instances}"));
    let pg = Pg::start();
    let url = pg.url();

    let a = bank_a(|_| {}).await;
    // No XSD check here (bank_b_e2e does it): xmllint per document would only slow this run down.
    let b = bank_b(|c| c.xsd = None).await;
    let c = bank_c(|_| {}).await;
    let centre = smsc(usize::try_from(sms_rate).expect("rate")).await;

    let profiles = dir.0.join("profiles");
    std::fs::create_dir_all(&profiles).expect("mkdir");
    // Smaller bank batches, so that a roster is several parts to share, and shorter request
    // timeouts: a part's lease is one request timeout plus 15 s (A, B: 135 s, C: 45 s with the
    // built-in profiles), and a dead instance's parts are taken over only when their leases run out.
    let timeout = |t: &str| {
        (
            "request_timeout = \"120s\"",
            format!("request_timeout = \"{t}\""),
        )
    };
    for (code, edits) in [
        (
            BANK_A,
            vec![
                ("items_per_part = 50000", format!("items_per_part = {part}")),
                timeout("3s"),
            ],
        ),
        (
            BANK_B,
            vec![
                ("items_per_part = 10000", format!("items_per_part = {part}")),
                timeout("5s"),
            ],
        ),
        (
            BANK_C,
            vec![(
                "request_timeout = \"30s\"",
                "request_timeout = \"2s\"".to_owned(),
            )],
        ),
    ] {
        std::fs::write(
            profiles.join(format!("{code}.toml")),
            edited_profile(code, &edits),
        )
        .expect("profile");
    }
    let files = Files {
        profiles,
        lookup_key: dir.0.join("lookup.key"),
        mac_key: dir.0.join("bank-c.key"),
        smpp_password: dir.0.join("smpp.pw"),
        pki: b.pki.write_to(&dir.0.join("pki-b")).expect("PEM files"),
    };
    // One lookup key for every instance: duplicate claims are keyed hashes.
    std::fs::write(&files.lookup_key, "00112233445566778899aabbccddeeff\n").expect("key");
    std::fs::write(&files.mac_key, format!("{BANK_C_TEST_KEY}\n")).expect("MAC key");
    std::fs::write(&files.smpp_password, "pw").expect("password");

    let senders = sms_on.iter().filter(|s| **s).count() as u64;
    let mut gws = Vec::new();
    for (i, &sms) in sms_on.iter().enumerate().take(instances) {
        let node = format!("GW0{}", i + 1);
        let port = free_port();
        let config = dir.0.join(format!("{node}.toml"));
        let centre_addr = centre.addr.to_string();
        std::fs::write(
            &config,
            instance_config(
                &node,
                instances,
                port,
                &url,
                &files,
                [
                    &a.addr.to_string(),
                    &b.addr.to_string(),
                    &c.addr.to_string(),
                ],
                sms.then_some((centre_addr.as_str(), sms_rate / senders)),
            ),
        )
        .expect("config");
        gws.push(Instance::spawn(&node, &config, port));
    }
    for g in &mut gws {
        g.wait_healthy().await;
    }
    let up = started.elapsed();

    // Nine rosters, three per bank, handed to the instances in turn and submitted at once.
    let clock = SystemClock::default();
    let today = clock.today();
    let mut submits = tokio::task::JoinSet::new();
    let mut k = 0u64;
    for bank in [BANK_A, BANK_B, BANK_C] {
        for r in 0..ROSTERS_PER_BANK {
            let spec = RosterSpec {
                items: per_roster,
                seed: 500 + 10 * instances as u64 + k,
                bad: 0,
                batch_no: format!("MULTI-{instances}-{bank}-{r}-{}", std::process::id()),
                year: today.year(),
                payout_bank: bank.into(),
                funds_arrived_on: date_str(today),
            };
            let api = gws[k as usize % instances].api.clone();
            k += 1;
            submits.spawn(async move {
                let items = roster::items(&spec);
                let mut body = roster::header(&spec, &items);
                body["items"] = Value::Array(items);
                let (s, v) = api
                    .submit_json(SUBMITTER, serde_json::to_vec(&body).expect("json"))
                    .await;
                assert_eq!(s, 202, "{v}");
                Submitted {
                    bank,
                    batch_id: v["batch_id"].as_str().expect("id").to_owned(),
                    accepted: v["accepted_count"].as_u64().expect("accepted"),
                }
            });
        }
    }
    let mut batches = Vec::new();
    while let Some(r) = submits.join_next().await {
        batches.push(r.expect("submit"));
    }
    let accepted: u64 = batches.iter().map(|s| s.accepted).sum();
    assert_eq!(accepted, 9 * per_roster, "every item accepted");
    let submitted = started.elapsed();

    // Kill the victim once about a third of the items are paid, while it holds bank work.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("store");
    let paid = || a.ledger.items_paid() + b.ledger.items_paid() + c.ledger.items_paid();
    let victim_node = gws[victim].node.clone();
    let limit = Duration::from_secs(120 + total / 500);
    // A notice sender is killed once it has notices in flight instead (GW_MULTI_KILL_SMS=1).
    let sender = sms_on[victim];
    let held = loop {
        let held = held_by(&pool, &victim_node).await;
        let enough = paid() as u64 >= accepted / 3;
        if enough && (if sender { held.2 > 0 } else { held.0 > 0 }) {
            break held;
        }
        assert!(
            (sender || (paid() as u64) < accepted) && started.elapsed() < limit,
            "{victim_node} never held work mid-way (paid {} of {accepted}, holds {held:?})",
            paid()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    gws[victim].kill();
    let paid_at_kill = paid();
    let killed_at = started.elapsed();
    assert!(
        sender || (paid_at_kill as u64) < accepted,
        "killed mid-way ({paid_at_kill} of {accepted} paid)"
    );

    if std::env::var("GW_MULTI_PROGRESS").is_ok() {
        progress(&pool, started).await;
    }
    // The others finish: every batch final, read through a survivor.
    let survivor = gws
        .iter()
        .position(|g| g.child.is_some())
        .expect("a survivor");
    let api = gws[survivor].api.clone();
    let mut finals = Vec::new();
    for s in &batches {
        finals.push(api.wait_final(&s.batch_id, limit).await);
    }
    let all_final = started.elapsed();
    let mut credited_keys = BTreeSet::new();
    let mut per_bank: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for (s, f) in batches.iter().zip(&finals) {
        let cnt = &f["counts"];
        let ok = cnt["succeeded"].as_u64().unwrap_or(0);
        let failed = cnt["failed"].as_u64().unwrap_or(0);
        assert_eq!(
            ok + failed,
            s.accepted,
            "{}: every item settled: {f}",
            s.bank
        );
        let e = per_bank.entry(s.bank).or_default();
        e.0 += s.accepted;
        e.1 += ok;
        e.2 += failed;
        for it in api.all_items(&s.batch_id, Some("succeeded")).await {
            credited_keys.insert(format!("{}:{}", s.batch_id, it["seq"]));
        }
        wait_notices(&api, &s.batch_id, ok, limit).await;
    }
    let notices_settled = started.elapsed();

    // The banks' books: each item paid once, the results as the gateway reports them, and never a
    // connection over the bank's limit from all instances together.
    for (name, code, ledger) in [
        ("A", BANK_A, &a.ledger),
        ("B", BANK_B, &b.ledger),
        ("C", BANK_C, &c.ledger),
    ] {
        let (acc, ok, failed) = per_bank[code];
        assert_eq!(ledger.items_paid() as u64, acc, "bank {name}: items paid");
        assert_eq!(
            ledger.max_payments_per_id(),
            1,
            "bank {name}: nobody paid twice"
        );
        assert_eq!(ledger.credited() as u64, ok, "bank {name}: credited");
        assert_eq!(ledger.failed() as u64, failed, "bank {name}: failed");
        assert_eq!(
            ledger.refused_connections(),
            0,
            "bank {name}: a connection over the limit"
        );
        // Bank B limits requests at once (8), bank C requests outstanding on a connection (32).
        assert_eq!(
            ledger.overloaded_replies(),
            0,
            "bank {name}: requests over the limit"
        );
        println!(
            "bank {name}: {acc} items paid once ({ok} credited, {failed} failed), {} bank batches, \
             duplicate submits answered {}, queries {}, connections refused {}",
            ledger.accepted_batches(),
            ledger.duplicate_submits(),
            ledger.queries_seen(),
            ledger.refused_connections()
        );
    }

    // The SMS centre's books: exactly one complete notice per credited item, nothing else.
    let mut got: BTreeMap<String, Vec<simulators::smsc::AssembledMessage>> = BTreeMap::new();
    for m in centre.ledger.messages() {
        got.entry(m.notice_key.clone().unwrap_or_default())
            .or_default()
            .push(m);
    }
    let got_keys: BTreeSet<String> = got.keys().cloned().collect();
    assert_eq!(
        got_keys.len(),
        credited_keys.len(),
        "as many notices as credited items"
    );
    assert!(got_keys == credited_keys, "exactly the credited items");
    for (k, msgs) in &got {
        assert_eq!(msgs.len(), 1, "{k}: exactly one notice");
        assert!(msgs[0].complete(), "{k}: every part: {:?}", msgs[0]);
    }
    assert_eq!(centre.ledger.binds_refused(), 0, "never more than 2 binds");
    let peak = centre.ledger.max_parts_in_any_second(SYSTEM_ID);
    assert!(
        peak as u64 <= sms_rate,
        "{peak} parts in one second, above the centre's {sms_rate}"
    );
    println!(
        "SMS centre: {} notices, one each ({} parts), peak {peak} parts/s of {sms_rate}, binds {} \
         (refused {}), throttled {}",
        got.len(),
        centre.ledger.accepted(),
        centre.ledger.binds(),
        centre.ledger.binds_refused(),
        centre.ledger.throttled_rate()
    );
    println!(
        "{instances} instances, {accepted} items in 9 rosters (parts of {part}; bank C 2,000): up in \
         {:.1} s, accepted (202) at {:.1} s; {victim_node} killed at {:.1} s holding {} part leases \
         ({} sending) and {} notices sending, {paid_at_kill} items paid then; every batch final at \
         {:.1} s, every notice settled at {:.1} s",
        up.as_secs_f64(),
        submitted.as_secs_f64(),
        killed_at.as_secs_f64(),
        held.0,
        held.1,
        held.2,
        all_final.as_secs_f64(),
        notices_settled.as_secs_f64(),
    );

    pool.close().await;
    for g in &mut gws {
        g.stop().await;
    }
    centre.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_finish_it_when_one_is_killed() {
    if std::env::var("GW_MULTI_KILL_SMS").is_ok_and(|v| v == "1") {
        // Both send notices; GW01 is killed.
        share_and_kill(2, &[true, true], 0).await;
    } else {
        // GW01 sends the notices; GW02 only works for the banks and is killed.
        share_and_kill(2, &[true, false], 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_work_and_finish_it_when_one_is_killed() {
    // The centre takes two binds: GW01 and GW02 send the notices; GW03 only works for the banks.
    // GW01 is killed with notices in flight: GW02 settles them once their lease has run out.
    share_and_kill(3, &[true, true, false], 0).await;
}

/// A `gateway simulate ...` child process (as deploy/compose.yaml runs the simulators).
fn simulate(args: &[&str], env: &[(&str, &str)]) -> Instance {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.arg("simulate")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Instance {
        node: format!("simulate {}", args.join(" ")),
        api: Api::new("127.0.0.1:1"),
        child: Some(cmd.spawn().expect("simulator starts")),
    }
}

async fn wait_listening(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} does not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// deploy/gateway-1.toml and gateway-2.toml load, differ only in `gateway.node_id`, and run as they
/// would under deploy/compose.yaml: two instances on a PostgreSQL database owned by a `gateway` role,
/// the simulators started with compose's commands (bank B's from the PKI of deploy/test-pki.sh, whose
/// server certificate names the host), every secret from the environment variables compose sets.
/// Only the host names and ports are rewritten to loopback, and the banks polled every second. Each
/// instance is ready (store and every bank answer), rosters to the three banks end final and every
/// credited item's notice is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_configurations_run_two_instances_as_compose_does() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let texts: Vec<String> = ["gateway-1.toml", "gateway-2.toml"]
        .iter()
        .map(|f| std::fs::read_to_string(deploy.join(f)).expect("deploy config"))
        .collect();
    let mut loaded = Vec::new();
    for f in ["gateway-1.toml", "gateway-2.toml"] {
        let c = gateway::config::Config::load(&deploy.join(f)).expect("loads");
        assert_eq!(c.gateway.instances, 2, "{f}");
        assert!(c.sms.is_some(), "{f}: both send notices");
        assert!(
            c.tokens.iter().all(|t| t.token.is_none()),
            "{f}: hashed tokens only"
        );
        loaded.push(c);
    }
    assert_eq!(
        (
            loaded[0].gateway.node_id.as_str(),
            loaded[1].gateway.node_id.as_str()
        ),
        ("GW01", "GW02")
    );
    loaded[1].gateway.node_id = loaded[0].gateway.node_id.clone();
    assert_eq!(
        toml::to_string(&loaded[0]).expect("toml"),
        toml::to_string(&loaded[1]).expect("toml"),
        "the two instances differ in node_id only"
    );

    let dir = TempDir::new("deploy");
    let pki = dir.0.join("pki-b");
    let out = Command::new("sh")
        .arg(deploy.join("test-pki.sh"))
        .arg(&pki)
        .output()
        .expect("sh runs deploy/test-pki.sh");
    assert!(
        out.status.success(),
        "deploy/test-pki.sh failed (it needs the openssl command): {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // PostgreSQL as compose's postgres service makes it: a `gateway` role owning a UTF8, C-collated
    // database; the gateways migrate it as that role.
    let pg = Pg::start();
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&pg.url()).await.expect("postgres");
    for sql in [
        "create role gateway login",
        "create database gateway owner gateway encoding 'UTF8' lc_collate 'C' lc_ctype 'C' \
         template template0",
    ] {
        sqlx::query(sql).execute(&admin).await.expect(sql);
    }
    admin.close().await;
    let store_url = format!(
        "postgres://gateway@localhost/gateway?host={}&port=5432",
        pg.socket_dir().display()
    );

    let [pa, pb, pc, ps] = [free_port(), free_port(), free_port(), free_port()];
    let keyring = format!("k2026={}", "5a".repeat(32));
    let secrets: [(&str, &str); 5] = [
        ("PGPASSWORD", "unused-with-trust-auth"),
        ("GATEWAY_LOOKUP_KEY", "00112233445566778899aabbccddeeff"),
        ("GATEWAY_DATA_KEYRING", &keyring),
        ("BANK_C_MAC_KEY", BANK_C_TEST_KEY),
        ("SMPP_PASSWORD", "cmpTest1"),
    ];
    let listen = |p: u16| format!("127.0.0.1:{p}");
    let (la, lb, lc, ls) = (listen(pa), listen(pb), listen(pc), listen(ps));
    let pki_arg = pki.display().to_string();
    let mut sims = vec![
        simulate(&["bank", "--profile", BANK_A, "--listen", &la], &[]),
        simulate(
            &[
                "bank",
                "--profile",
                BANK_B,
                "--listen",
                &lb,
                "--pki-dir",
                &pki_arg,
            ],
            &[],
        ),
        simulate(
            &[
                "bank",
                "--profile",
                BANK_C,
                "--listen",
                &lc,
                "--mac-key-env",
                "BANK_C_MAC_KEY",
            ],
            &secrets,
        ),
        simulate(
            &[
                "smsc",
                "--listen",
                &ls,
                "--system-id",
                "gw",
                "--password-env",
                "SMPP_PASSWORD",
            ],
            &secrets,
        ),
    ];
    for (port, what) in [
        (pa, "bank A"),
        (pb, "bank B"),
        (pc, "bank C"),
        (ps, "SMS centre"),
    ] {
        wait_listening(port, what).await;
    }

    let mut gws = Vec::new();
    // The profiles poll every 30 to 60 s; a second keeps the test short.
    let poll = "\npoll_interval = \"1s\"";
    for (i, text) in texts.iter().enumerate() {
        let port = free_port();
        let text = text
            .replace("postgres://gateway@postgres:5432/gateway", &store_url)
            .replace("0.0.0.0:8080", &listen(port))
            .replace("\"bank-a:7001\"", &format!("\"{la}\"{poll}"))
            .replace(
                "\"https://bank-b:7443\"",
                &format!("\"https://localhost:{pb}\"{poll}"),
            )
            .replace("\"bank-c:7003\"", &format!("\"{lc}\"{poll}"))
            .replace("\"smsc:2775\"", &format!("\"{ls}\""))
            .replace("/etc/gateway/pki-b", &pki_arg);
        let config = dir.0.join(format!("gateway-{}.toml", i + 1));
        std::fs::write(&config, text).expect("config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
        cmd.args(["serve", "--config"])
            .arg(&config)
            .env(
                "RUST_LOG",
                std::env::var("GW_TEST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &secrets {
            cmd.env(k, v);
        }
        gws.push(Instance {
            node: format!("GW0{}", i + 1),
            api: Api::new(listen(port)),
            child: Some(cmd.spawn().expect("gateway starts")),
        });
    }
    for g in &mut gws {
        g.wait_healthy().await;
        let started = Instant::now();
        loop {
            let (s, v) = g.api.get(SUBMITTER, "/readyz").await;
            if s == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} not ready: {s} {v}",
                g.node
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // The submitter token whose hash the deploy configurations hold.
    const TOKEN: &str = "dev-only-submitter-token";
    let clock = SystemClock::default();
    let today = clock.today();
    let mut batches = Vec::new();
    for (k, bank) in [BANK_A, BANK_B, BANK_C].into_iter().enumerate() {
        let spec = RosterSpec {
            items: 200,
            seed: 900 + k as u64,
            bad: 0,
            batch_no: format!("DEPLOY-{bank}-{}", std::process::id()),
            year: today.year(),
            payout_bank: bank.into(),
            funds_arrived_on: date_str(today),
        };
        let items = roster::items(&spec);
        let mut body = roster::header(&spec, &items);
        body["items"] = Value::Array(items);
        let (s, v) = gws[k % 2]
            .api
            .submit_json(TOKEN, serde_json::to_vec(&body).expect("json"))
            .await;
        assert_eq!(s, 202, "{bank}: {v}");
        batches.push(v["batch_id"].as_str().expect("id").to_owned());
    }
    for (k, id) in batches.iter().enumerate() {
        let api = &gws[(k + 1) % 2].api;
        let started = Instant::now();
        let b = loop {
            let (s, b) = api.get(TOKEN, &format!("/v1/batches/{id}")).await;
            assert_eq!(s, 200, "{b}");
            if b["status"] == "final" {
                break b;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not final: {b}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let c = &b["counts"];
        let ok = c["succeeded"].as_u64().unwrap_or(0);
        assert_eq!(ok + c["failed"].as_u64().unwrap_or(0), 200, "{b}");
        // Notices go out at 50/s per instance (their share of the centre's 100/s).
        let started = Instant::now();
        loop {
            let (_, n) = api
                .get(TOKEN, &format!("/v1/batches/{id}/notices?limit=1"))
                .await;
            let sent = ["submitted", "delivered"]
                .iter()
                .map(|s| n["counts"][*s].as_u64().unwrap_or(0))
                .sum::<u64>();
            if sent == ok {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "notices: {n}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for g in &mut gws {
        g.stop().await;
    }
    for s in &mut sims {
        s.kill();
    }
    drop(pg);
}
