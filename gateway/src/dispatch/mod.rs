//! Sending parts to the payout banks and polling their results.
//!
//! Each shortlisted bank gets a [`BankEntry`]: its profile, its deployment settings and its link, one of
//! the codec families (a plain enum, not `Box<dyn>`). [`worker`] runs one loop per bank that claims due
//! work from the store with leases.
pub mod fixed_width;
pub mod iso20022;
pub mod iso8583;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use bank_profiles::{Family, Profile};

use crate::config;
use crate::intake::parse::{HeaderIn, ItemIn};

/// A bank's link, by codec family.
#[derive(Debug)]
pub enum BankLink {
    /// Fixed-width GBK records over a length-framed TCP stream (bank A's family).
    FixedWidth(fixed_width::FixedWidthLink),
    /// ISO 20022 documents over HTTPS with mutual TLS (bank B's family).
    Iso20022(iso20022::Iso20022Link),
    /// ISO 8583-like messages over a pipelined TCP channel, one payment per message (bank C's family).
    Iso8583(Box<iso8583::Iso8583Link>),
}

impl BankLink {
    /// Checks that an item can be carried by this bank's interface: `Err((field, problem))`.
    pub fn check_item(&self, it: &ItemIn) -> Result<(), (String, String)> {
        match self {
            Self::FixedWidth(l) => l.family().check_item(it),
            Self::Iso20022(l) => l.check_item(it),
            Self::Iso8583(l) => l.check_item(it),
        }
    }

    /// Whether the bank's endpoint accepts a connection now (readiness).
    pub async fn reachable(&self) -> bool {
        match self {
            Self::FixedWidth(l) => l.reachable().await,
            Self::Iso20022(l) => probe(l.host_port()).await,
            Self::Iso8583(l) => probe(l.endpoint()).await,
        }
    }

    /// Checks that a batch header can be carried: `Err((field, problem))`.
    pub fn check_header(&self, h: &HeaderIn) -> Result<(), (String, String)> {
        match self {
            Self::FixedWidth(l) => l.family().check_header(h),
            Self::Iso20022(l) => l.check_header(h),
            Self::Iso8583(l) => l.check_header(h),
        }
    }
}

/// A shortlisted bank as the gateway runs it.
#[derive(Debug)]
pub struct BankEntry {
    /// 12-digit code.
    pub code: String,
    /// Its profile.
    pub profile: Profile,
    /// Its deployment settings.
    pub settings: config::Bank,
    /// Its link.
    pub link: BankLink,
}

impl BankEntry {
    /// The poll interval (deployment override, else the profile's).
    pub fn poll_interval(&self) -> std::time::Duration {
        self.settings
            .poll_interval
            .map_or(self.profile.timers.poll_interval.0, |d| d.0)
    }

    /// The time one request may take (deployment override, else the profile's).
    pub fn request_timeout(&self) -> std::time::Duration {
        self.settings
            .request_timeout
            .map_or(self.profile.transport.request_timeout.0, |d| d.0)
    }

    /// Connections to use (at most the profile's).
    pub fn max_connections(&self) -> u32 {
        let p = self.profile.transport.max_connections;
        self.settings.max_connections.map_or(p, |c| c.clamp(1, p))
    }
}

/// The shortlisted banks: every `[banks."code"]` of the config that has a profile.
#[derive(Debug, Default)]
pub struct Banks {
    by_code: BTreeMap<String, Arc<BankEntry>>,
}

impl Banks {
    /// Builds the links of every configured bank. A configured bank without a profile, or whose
    /// settings do not fit its family (no CA for an HTTPS bank, no MAC key for bank C), is an error
    /// naming it.
    pub fn build(
        profiles: &BTreeMap<String, Profile>,
        banks: &BTreeMap<String, config::Bank>,
        gateway: &config::Gateway,
    ) -> Result<Self, String> {
        let mut by_code = BTreeMap::new();
        for (code, settings) in banks {
            let profile = profiles
                .get(code)
                .ok_or_else(|| format!("banks.{code}: no bank profile has this code"))?
                .clone();
            let link = match profile.family {
                Family::FixedWidth => {
                    fixed_width::FixedWidthLink::new(&profile, settings).map(BankLink::FixedWidth)
                }
                Family::Iso20022 => {
                    iso20022::Iso20022Link::new(&profile, settings).map(BankLink::Iso20022)
                }
                Family::Iso8583 => iso8583::Iso8583Link::new(&profile, settings, gateway)
                    .map(|l| BankLink::Iso8583(Box::new(l))),
            }
            .map_err(|e| format!("banks.{code}: {e}"))?;
            by_code.insert(
                code.clone(),
                Arc::new(BankEntry {
                    code: code.clone(),
                    profile,
                    settings: settings.clone(),
                    link,
                }),
            );
        }
        Ok(Self { by_code })
    }

    /// The bank with this code.
    pub fn get(&self, code: &str) -> Option<&Arc<BankEntry>> {
        self.by_code.get(code)
    }

    /// All banks.
    pub fn all(&self) -> impl Iterator<Item = &Arc<BankEntry>> {
        self.by_code.values()
    }
}

/// A TCP connection to `host:port` can be opened (and is closed at once).
async fn probe(host_port: &str) -> bool {
    tokio::net::TcpStream::connect(host_port).await.is_ok()
}
