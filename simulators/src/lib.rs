//! Bank simulators for tests, drills and demos, built on the real codecs and profiles.
//!
//! A simulator speaks a bank's interface exactly as its document says, keeps [`ledger::Ledger`] books
//! of what it paid (so a test can check "nobody paid twice" from the bank's side), and injects faults
//! given as data ([`faults::Faults`]) with a fixed seed, so a scenario is reproducible.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use simulators::{FixedWidthSim, FixedWidthSimConfig};
//! let profile = bank_profiles::builtin().map_err(std::io::Error::other)?.remove("402241000015");
//! let cfg = FixedWidthSimConfig::new(profile.ok_or_else(|| std::io::Error::other("no bank A"))?);
//! let sim = FixedWidthSim::start(cfg, tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
//! // ... point the gateway at sim.addr, run the scenario ...
//! assert_eq!(sim.ledger.max_payments_per_id(), 1);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod faults;
pub mod fixed_width;
pub mod iso20022;
pub mod iso8583;
pub mod ledger;
pub mod smsc;
pub mod tls;

pub use fixed_width::{FixedWidthSim, FixedWidthSimConfig, SimHandle};
pub use iso8583::{Iso8583Sim, Iso8583SimConfig};
pub use iso20022::{Iso20022Sim, Iso20022SimConfig, Iso20022SimHandle, Iso20022Stats};
pub use tls::{PkiFiles, TestPki, TlsError};
