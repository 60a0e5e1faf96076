//! `gateway`: the service and its tools.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use gateway::clock::SystemClock;
use gateway::config::Config;
use gateway::{demo, ops, server};

/// jemalloc, not glibc's malloc: 1,000,000 items through bank A peak at 238-242 MiB against 363 MiB (glibc's
/// per-thread arenas keep what rows crossing threads free), and run faster (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "Bank integration gateway of the subsidy-supervision platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The TOML config (see docs/configuration.md).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the whole path on this machine with SQLite and the built-in bank simulator.
    Demo {
        /// Items in the generated roster.
        #[arg(long, default_value_t = 2000)]
        items: u64,
        /// Items broken on purpose (each rule in turn).
        #[arg(long, default_value_t = 25)]
        bad: u64,
        /// Keep serving after the summary.
        #[arg(long)]
        keep_running: bool,
        /// API listen address.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Measure one roster end to end on this machine: a fresh SQLite file (or --store-url), the bank's
    /// simulator as a child process on loopback.
    Bench {
        /// Items in the roster.
        #[arg(long, default_value_t = 100_000)]
        items: u64,
        /// The payout bank: a (fixed-width over TCP) or c (ISO 8583 over TCP).
        #[arg(long, value_enum, default_value = "a")]
        bank: gateway::bench::BenchBank,
        /// The store (e.g. postgres://...; a database of its own: nothing else should run on it).
        #[arg(long)]
        store_url: Option<String>,
        /// Milliseconds the simulator holds a bank batch before its results are final.
        #[arg(long, default_value_t = 500)]
        processing_ms: u64,
        /// Milliseconds between the gateway's result polls.
        #[arg(long, default_value_t = 200)]
        poll_ms: u64,
    },
    /// Run a simulator.
    Simulate {
        #[command(subcommand)]
        what: Simulate,
    },
    /// Bank profiles.
    Profile {
        #[command(subcommand)]
        what: ProfileCmd,
    },
    /// A bank's frames and documents to JSON and back (see `gateway codec decode --help`).
    Codec {
        #[command(subcommand)]
        what: gateway::cli::codec::CodecCommand,
    },
    /// The audit log (`gateway audit verify --config FILE`: exit 1 when its hash chain is broken).
    Audit {
        #[command(subcommand)]
        what: gateway::cli::audit::AuditCommand,
    },
    /// The data keyring (docs/encryption.md): `keys new --id ID`, `keys rotate --config FILE`,
    /// `keys status --config FILE`.
    Keys {
        #[command(subcommand)]
        what: gateway::cli::keys::KeysCommand,
    },
}

#[derive(Subcommand)]
enum Simulate {
    /// A payout bank's test endpoint, of the profile's family: fixed-width over TCP (bank A), ISO 20022
    /// over HTTPS with mutual TLS (bank B), ISO 8583 over TCP with MACs (bank C).
    Bank {
        /// The bank code whose profile to serve.
        #[arg(long)]
        profile: String,
        /// Listen address.
        #[arg(long)]
        listen: String,
        /// Extra profiles folder.
        #[arg(long)]
        profiles_dir: Option<PathBuf>,
        /// Seed of results and faults.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds a batch stays processing.
        #[arg(long, default_value_t = 2)]
        processing_secs: u64,
        /// Milliseconds a batch stays processing (instead of --processing-secs).
        #[arg(long)]
        processing_ms: Option<u64>,
        /// Share of failing items, permille.
        #[arg(long, default_value_t = 50)]
        fail_permille: u32,
        /// Faults as TOML (e.g. 'busy_submit_permille = 200').
        #[arg(long)]
        faults: Option<String>,
        /// ISO 20022: the folder of the test PKI (ca.pem, client.pem, client.key, server.pem,
        /// server.key); made and written there when it holds none. Give the gateway its ca, client.pem and
        /// client.key.
        #[arg(long)]
        pki_dir: Option<PathBuf>,
        /// ISO 20022: validate every document against this pain.001 XSD (needs xmllint).
        #[arg(long)]
        xsd: Option<PathBuf>,
        /// ISO 8583: the MAC key, from this environment variable (hex); the spec's test key otherwise.
        #[arg(long)]
        mac_key_env: Option<String>,
    },
    /// The SMS centre's test endpoint (SMPP 3.4): binds, window, 100 messages/s, delivery receipts.
    Smsc {
        /// Listen address.
        #[arg(long)]
        listen: String,
        /// The system_id it accepts.
        #[arg(long, default_value = "gw")]
        system_id: String,
        /// The environment variable holding the password it accepts.
        #[arg(long, default_value = "SMPP_PASSWORD")]
        password_env: String,
        /// Messages per second per client.
        #[arg(long, default_value_t = 100)]
        rate: usize,
        /// Seed of receipts and faults.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum ProfileCmd {
    /// Load and check every profile of a folder.
    Check {
        /// The folder.
        dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let cfg = Config::load(&config)?;
            ops::logging::init(cfg.log.json, cfg.log.filter.as_deref());
            let clock = Arc::new(SystemClock::shifted(cfg.gateway.clock_offset_ms));
            let running = server::start(cfg, clock).await?;
            running.until_signal().await;
        }
        Command::Bench {
            items,
            bank,
            store_url,
            processing_ms,
            poll_ms,
        } => {
            ops::logging::init(false, Some("warn,sqlx=error"));
            gateway::bench::run(gateway::bench::BenchOptions {
                items,
                bank,
                store_url,
                processing: Duration::from_millis(processing_ms),
                poll: Duration::from_millis(poll_ms),
            })
            .await?;
        }
        Command::Demo {
            items,
            bad,
            keep_running,
            listen,
        } => {
            ops::logging::init(false, Some("warn"));
            demo::run(demo::DemoOptions {
                items,
                bad,
                keep_running,
                listen,
            })
            .await?;
        }
        Command::Simulate {
            what:
                Simulate::Bank {
                    profile,
                    listen,
                    profiles_dir,
                    seed,
                    processing_secs,
                    processing_ms,
                    fail_permille,
                    faults,
                    pki_dir,
                    xsd,
                    mac_key_env,
                },
        } => {
            ops::logging::init(false, None);
            let mut profiles = bank_profiles::builtin()?;
            if let Some(dir) = profiles_dir {
                profiles.extend(bank_profiles::load_dir(&dir)?);
            }
            let p = profiles
                .get(&profile)
                .cloned()
                .with_context(|| format!("no profile for bank {profile}"))?;
            let processing =
                processing_ms.map_or(Duration::from_secs(processing_secs), Duration::from_millis);
            let faults: simulators::faults::Faults = match faults {
                Some(f) => toml::from_str(&f).context("--faults")?,
                None => Default::default(),
            };
            match p.family {
                bank_profiles::Family::FixedWidth => {
                    let mut cfg = simulators::FixedWidthSimConfig::new(p);
                    cfg.seed = seed;
                    cfg.processing = processing;
                    cfg.fail_permille = fail_permille;
                    cfg.faults = faults;
                    simulators::fixed_width::run(cfg, &listen).await?;
                }
                bank_profiles::Family::Iso20022 => {
                    server::install_crypto();
                    let mut cfg = simulators::Iso20022SimConfig::new(p);
                    cfg.seed = seed;
                    cfg.processing = processing;
                    cfg.fail_permille = fail_permille;
                    cfg.faults = faults;
                    cfg.xsd = xsd;
                    let dir = pki_dir.context("--pki-dir: required for an HTTPS bank")?;
                    let pki = if dir.join("ca.pem").exists() {
                        simulators::TestPki::load(&dir)?
                    } else {
                        let pki = simulators::TestPki::generate("bank simulator test CA")?;
                        pki.write_to(&dir)?;
                        pki
                    };
                    println!(
                        "bank {profile}: https://{listen}  ca = {0}/ca.pem  client_cert = {0}/client.pem  client_key = {0}/client.key",
                        dir.display()
                    );
                    cfg.pki = Some(pki);
                    simulators::iso20022::run(cfg, &listen).await?;
                }
                bank_profiles::Family::Iso8583 => {
                    let mut cfg = simulators::Iso8583SimConfig::new(p);
                    cfg.seed = seed;
                    cfg.processing = processing;
                    cfg.fail_permille = fail_permille;
                    cfg.faults = faults;
                    if let Some(v) = mac_key_env {
                        let hex = std::env::var(&v)
                            .with_context(|| format!("--mac-key-env: {v} is not set"))?;
                        cfg.mac_key = codecs::mac::MacKey::from_hex(hex.trim())
                            .map_err(|e| anyhow::anyhow!("MAC key in {v}: {e}"))?;
                    }
                    simulators::iso8583::run(cfg, &listen).await?;
                }
            }
        }
        Command::Simulate {
            what:
                Simulate::Smsc {
                    listen,
                    system_id,
                    password_env,
                    rate,
                    seed,
                },
        } => {
            ops::logging::init(false, None);
            let password = std::env::var(&password_env)
                .with_context(|| format!("--password-env: {password_env} is not set"))?;
            let mut cfg = simulators::smsc::SmscSimConfig::new(&system_id, &password);
            cfg.rate_per_second = rate;
            cfg.seed = seed;
            let sim = simulators::smsc::SmscSim::start(
                cfg,
                tokio::net::TcpListener::bind(&listen).await?,
            )?;
            println!("SMS centre (SMPP 3.4) on {}", sim.addr);
            tokio::signal::ctrl_c().await?;
            sim.shutdown().await;
        }
        Command::Profile {
            what: ProfileCmd::Check { dir },
        } => {
            let profiles = bank_profiles::load_dir(&dir)?;
            for (code, p) in &profiles {
                println!("{code}  {:?}  {}  ok", p.family, p.name);
            }
            println!("{} profile(s) valid", profiles.len());
        }
        Command::Codec { what } => gateway::cli::codec::run(what)?,
        Command::Keys { what } => {
            ops::logging::init(false, Some("warn,sqlx=error"));
            print!("{}", gateway::cli::keys::run(what).await?);
        }
        Command::Audit { what } => {
            ops::logging::init(false, Some("warn,sqlx=error"));
            // Exit 1 is a broken chain; a check that could not run exits 2.
            match gateway::cli::audit::run(what).await {
                Ok(report) => {
                    print!("{}", report.text);
                    if report.exit_code != 0 {
                        std::process::exit(report.exit_code);
                    }
                }
                Err(e) => {
                    eprintln!("gateway audit: {e}");
                    std::process::exit(2);
                }
            }
        }
    }
    Ok(())
}
