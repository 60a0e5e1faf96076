//! `gateway`: the service and its tools.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use gateway::clock::SystemClock;
use gateway::config::Config;
use gateway::{demo, ops, server};

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
    /// Measure one roster end to end on this machine (SQLite, bank A's simulator on loopback).
    Bench {
        /// Items in the roster.
        #[arg(long, default_value_t = 100_000)]
        items: u64,
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
}

#[derive(Subcommand)]
enum Simulate {
    /// A payout bank's test endpoint.
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
        /// Share of failing items, permille.
        #[arg(long, default_value_t = 50)]
        fail_permille: u32,
        /// Faults as TOML (e.g. 'busy_submit_permille = 200').
        #[arg(long)]
        faults: Option<String>,
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
        Command::Bench { items } => {
            ops::logging::init(false, Some("warn,sqlx=error"));
            gateway::bench::run(items).await?;
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
                    fail_permille,
                    faults,
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
            let mut cfg = simulators::FixedWidthSimConfig::new(p);
            cfg.seed = seed;
            cfg.processing = Duration::from_secs(processing_secs);
            cfg.fail_permille = fail_permille;
            if let Some(f) = faults {
                cfg.faults = toml::from_str(&f).context("--faults")?;
            }
            simulators::fixed_width::run(cfg, &listen).await?;
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
    }
    Ok(())
}
