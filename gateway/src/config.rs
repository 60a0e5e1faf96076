//! The deployment configuration (`gateway serve --config FILE`), per `specs/config.md`.
//!
//! Unknown keys are refused with the key's name. Secrets never live in this file: it names a file or
//! an environment variable that holds them.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bank_profiles::DurationText;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The platform API listener.
    #[serde(default)]
    pub server: Server,
    /// The store.
    #[serde(default)]
    pub store: Store,
    /// API tokens with their roles.
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// Who the gateway is.
    #[serde(default)]
    pub gateway: Gateway,
    /// One table per shortlisted bank, keyed by its 12-digit code.
    #[serde(default)]
    pub banks: BTreeMap<String, Bank>,
    /// The feedback SLA.
    #[serde(default)]
    pub sla: Sla,
    /// The SMS centre.
    #[serde(default)]
    pub sms: Option<Sms>,
    /// Platform events.
    #[serde(default)]
    pub events: Events,
    /// Logging (added by the gateway).
    #[serde(default)]
    pub log: Log,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Listen address of the API, `/metrics` and `/dashboard`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Optional API TLS certificate.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// Optional API TLS key.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Largest JSON body (default 64 MiB, the contract's limit).
    #[serde(default = "default_json_limit")]
    pub max_json_bytes: usize,
    /// Largest NDJSON body (default 1 GiB; read as a stream).
    #[serde(default = "default_ndjson_limit")]
    pub max_ndjson_bytes: usize,
    /// Requests per second each token may make on average (token bucket; 0: no limit).
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_second: u32,
    /// Requests a token may make at once above the average (the bucket's size).
    #[serde(default = "default_rate_burst")]
    pub rate_limit_burst: u32,
    /// Time to answer a request (default 30 s). A roster submission, whose size bounds its time,
    /// instead may not leave its body idle that long.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: DurationText,
    /// Time a client has to send a request's headers once the connection is open or the previous
    /// answer was sent (default 30 s); the connection is closed after it. A client that opens
    /// connections and trickles headers (slowloris) holds none of them longer than this.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: DurationText,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_json_limit() -> usize {
    64 * 1024 * 1024
}
fn default_ndjson_limit() -> usize {
    1024 * 1024 * 1024
}
fn default_rate_limit() -> u32 {
    50
}
fn default_rate_burst() -> u32 {
    100
}
fn default_request_timeout() -> DurationText {
    DurationText(std::time::Duration::from_secs(30))
}
fn default_header_read_timeout() -> DurationText {
    DurationText(std::time::Duration::from_secs(30))
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            max_json_bytes: default_json_limit(),
            max_ndjson_bytes: default_ndjson_limit(),
            rate_limit_per_second: default_rate_limit(),
            rate_limit_burst: default_rate_burst(),
            request_timeout: default_request_timeout(),
            header_read_timeout: default_header_read_timeout(),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `sqlite://var/gateway.db` (default) or `postgres://...`.
    #[serde(default = "default_store_url")]
    pub url: String,
}

fn default_store_url() -> String {
    "sqlite://var/gateway.db".into()
}

impl Default for Store {
    fn default() -> Self {
        Self {
            url: default_store_url(),
        }
    }
}

/// API roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Batches, queries, corrections, reads.
    Submitter,
    /// Read-only: batches, assessments, events, audit log.
    Auditor,
    /// Everything, including blacklist, disqualification, full personal data.
    Admin,
}

impl Role {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitter => "submitter",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }
}

/// `[[tokens]]`: exactly one of `token` (development) or `token_sha256` (production).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Plain token (development only).
    #[serde(default)]
    pub token: Option<String>,
    /// Hex SHA-256 of the token.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Role.
    pub role: Role,
    /// Optional name shown in the audit log (default: a fingerprint of the token).
    #[serde(default)]
    pub name: Option<String>,
}

/// `[gateway]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Who the gateway is to the banks (bank C F32).
    #[serde(default = "default_institution")]
    pub institution_code: String,
    /// This instance (bank C F41; logs; leases).
    #[serde(default = "default_node")]
    pub node_id: String,
    /// How many instances share the store, and with it the per-client limits of the banks and the SMS
    /// centre: each instance takes its share ([`Config::apply_instance_shares`]). Every instance is
    /// given the same number.
    #[serde(default = "one_instance")]
    pub instances: u32,
    /// Extra bank profiles (`*.toml`), on top of the built-in ones.
    #[serde(default)]
    pub profiles_dir: Option<PathBuf>,
    /// Environment variable holding the hex key of the keyed hashes used for look-ups.
    #[serde(default)]
    pub lookup_key_env: Option<String>,
    /// File holding that key.
    #[serde(default)]
    pub lookup_key_file: Option<PathBuf>,
    /// Environment variable holding the data keyring (`key_id=<64 hex>` entries, the current one
    /// first) that seals personal fields at rest.
    #[serde(default)]
    pub data_key_env: Option<String>,
    /// File holding the data keyring (one `key_id=<64 hex>` per line, the current one first).
    #[serde(default)]
    pub data_key_file: Option<PathBuf>,
    /// Shifts this instance's clock (drills only), e.g. `"-2h"` is not allowed; milliseconds.
    #[serde(default)]
    pub clock_offset_ms: i64,
}

fn default_institution() -> String {
    "12345678".into()
}
fn default_node() -> String {
    "GW01".into()
}
fn one_instance() -> u32 {
    1
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            institution_code: default_institution(),
            node_id: default_node(),
            instances: one_instance(),
            profiles_dir: None,
            lookup_key_env: None,
            lookup_key_file: None,
            data_key_env: None,
            data_key_file: None,
            clock_offset_ms: 0,
        }
    }
}

/// `[banks."<code>"]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bank {
    /// `host:port` (TCP banks) or `https://host:port` (HTTPS banks).
    pub endpoint: String,
    /// TLS: trust only this CA.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// TLS: the client certificate the bank issued.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// TLS: its key.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Bank C: `x919` or `sm4`.
    #[serde(default)]
    pub mac_alg: Option<String>,
    /// Bank C: hex MAC key in a file.
    #[serde(default)]
    pub mac_key_file: Option<PathBuf>,
    /// Bank C: hex MAC key in an environment variable.
    #[serde(default)]
    pub mac_key_env: Option<String>,
    /// Overrides the profile's poll interval (drills, demos).
    #[serde(default)]
    pub poll_interval: Option<DurationText>,
    /// Overrides the profile's connection count (at most the profile's).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Overrides the profile's per-request timeout (drills, tests).
    #[serde(default)]
    pub request_timeout: Option<DurationText>,
}

/// `[sla]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// `next-day`, `next-working-day` or a duration such as `30s`.
    #[serde(default = "default_deadline")]
    pub deadline: String,
    /// The working calendar (TOML).
    #[serde(default)]
    pub calendar: Option<PathBuf>,
}

fn default_deadline() -> String {
    "next-day".into()
}

impl Default for Sla {
    fn default() -> Self {
        Self {
            deadline: default_deadline(),
            calendar: None,
        }
    }
}

/// `[sms]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sms {
    /// `host:port`.
    pub endpoint: String,
    /// SMPP system_id.
    pub system_id: String,
    /// Environment variable with the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File with the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Source address.
    pub service_number: String,
    /// Notice templates by subsidy code (placeholders `{subsidy_name}` `{amount}` `{date}` `{last4}`
    /// `{account_desc}`); the spec's default text otherwise.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
    /// Quiet hours, Beijing time, `HH:MM-HH:MM` (may wrap midnight): no notice is sent inside them.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    /// How long a notice whose submit answer was lost waits for a receipt before it is sent again
    /// (default 10 minutes).
    #[serde(default)]
    pub unknown_grace: Option<DurationText>,
    /// Parts per second the gateway paces itself to (default 100, the centre's limit).
    #[serde(default)]
    pub max_rate: Option<u32>,
    /// Vendor TLV tag (0x1400..=0x3FFF) carrying the notice key on every part (drills with the
    /// simulator); off by default.
    #[serde(default)]
    pub key_tlv: Option<u16>,
    /// Our `enquire_link` period (default 30 s).
    #[serde(default)]
    pub enquire_link: Option<DurationText>,
}

/// `[events]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// Where events are POSTed.
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// JSON lines instead of text.
    #[serde(default)]
    pub json: bool,
    /// `RUST_LOG`-style filter (default `info`).
    #[serde(default)]
    pub filter: Option<String>,
}

/// Binds the SMS centre accepts from one client (`specs/sms-smpp.md`), over every instance.
pub const SMSC_BINDS_PER_CLIENT: u32 = 2;
/// Parts per second the SMS centre accepts from one client (`specs/sms-smpp.md`), over every instance.
pub const SMSC_RATE_PER_CLIENT: u32 = 100;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not the schema (the message names the key).
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// What toml said.
        message: String,
    },
    /// Parsed but not usable.
    #[error("{file}: `{key}`: {problem}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
            file: file.to_owned(),
            source,
        })?;
        Self::parse(file, &text)
    }

    /// Parses and checks config text.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        cfg.check().map_err(|(key, problem)| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            problem,
        })?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let server = &self.server;
        if server.rate_limit_per_second > 0 && server.rate_limit_burst == 0 {
            return Err((
                "server.rate_limit_burst".into(),
                "at least 1 while server.rate_limit_per_second is set".into(),
            ));
        }
        if server.header_read_timeout.0.is_zero() {
            return Err((
                "server.header_read_timeout".into(),
                "must be more than 0 (a connection must be given time to send its headers)".into(),
            ));
        }
        if server.tls_cert.is_some() != server.tls_key.is_some() {
            return Err((
                "server.tls_cert".into(),
                "give both server.tls_cert and server.tls_key, or neither".into(),
            ));
        }
        for (i, t) in self.tokens.iter().enumerate() {
            let key = format!("tokens[{i}]");
            match (&t.token, &t.token_sha256) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err((key, "give exactly one of `token` or `token_sha256`".into()));
                }
                (None, Some(h)) if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    return Err((format!("{key}.token_sha256"), "not 64 hex digits".into()));
                }
                (Some(tok), None) if tok.len() < 8 => {
                    return Err((format!("{key}.token"), "shorter than 8 characters".into()));
                }
                _ => {}
            }
        }
        for (code, b) in &self.banks {
            if code.len() != 12 || !code.bytes().all(|c| c.is_ascii_digit()) {
                return Err((format!("banks.{code}"), "not a 12-digit bank code".into()));
            }
            if b.endpoint.trim().is_empty() {
                return Err((format!("banks.{code}.endpoint"), "empty".into()));
            }
        }
        if self.gateway.node_id.is_empty() || self.gateway.node_id.len() > 8 {
            return Err((
                "gateway.node_id".into(),
                "1 to 8 characters (bank C F41 is ans8)".into(),
            ));
        }
        if !(1..=64).contains(&self.gateway.instances) {
            return Err(("gateway.instances".into(), "1 to 64".into()));
        }
        if self.gateway.instances > 1 && self.store.url.starts_with("sqlite:") {
            return Err((
                "gateway.instances".into(),
                "a SQLite store serves one instance: several need a postgres:// store".into(),
            ));
        }
        crate::sla::DeadlinePolicy::parse(&self.sla.deadline)
            .map_err(|e| ("sla.deadline".to_owned(), e))?;
        Ok(())
    }

    /// Gives this instance its share of what the banks and the SMS centre allow per client, in total
    /// over every instance, when `gateway.instances` is more than 1. A bank's connections
    /// (`limit_of(code)`: its profile's `transport.max_connections`) are divided among the instances:
    /// an unset `banks."<code>".max_connections` becomes the share, a larger one is lowered to it, and
    /// a bank that allows fewer connections than there are instances is an error. The SMS centre takes
    /// [`SMSC_BINDS_PER_CLIENT`] binds, so at most that many instances send notices, and they divide
    /// its [`SMSC_RATE_PER_CLIENT`] parts per second: an unset `sms.max_rate` becomes the share; a
    /// larger one is kept (the gateway cannot know the centre's real rate: a drill may raise it) and
    /// warned about. Returns the warnings to log.
    pub fn apply_instance_shares(
        &mut self,
        limit_of: impl Fn(&str) -> Option<u32>,
    ) -> Result<Vec<String>, String> {
        let n = self.gateway.instances.max(1);
        let mut warnings = Vec::new();
        if n == 1 {
            return Ok(warnings);
        }
        for (code, bank) in &mut self.banks {
            // A bank without a profile is refused later, naming it.
            let Some(limit) = limit_of(code) else {
                continue;
            };
            let share = limit / n;
            if share == 0 {
                return Err(format!(
                    "banks.{code}: the bank allows {limit} connections per client in total, fewer \
                     than gateway.instances = {n}"
                ));
            }
            match bank.max_connections {
                Some(c) if c > share => {
                    warnings.push(format!(
                        "banks.{code}.max_connections = {c} is more than this instance's share of the \
                         bank's {limit} ({n} instances): using {share}"
                    ));
                    bank.max_connections = Some(share);
                }
                Some(_) => {}
                None => bank.max_connections = Some(share),
            }
        }
        if let Some(sms) = &mut self.sms {
            let senders = n.min(SMSC_BINDS_PER_CLIENT);
            if n > SMSC_BINDS_PER_CLIENT {
                warnings.push(format!(
                    "gateway.instances = {n}: the SMS centre takes {SMSC_BINDS_PER_CLIENT} binds per \
                     client: configure [sms] on at most {SMSC_BINDS_PER_CLIENT} of the instances"
                ));
            }
            let share = SMSC_RATE_PER_CLIENT / senders;
            match sms.max_rate {
                Some(r) if r > share => warnings.push(format!(
                    "sms.max_rate = {r} is more than this instance's share of the SMS centre's \
                     {SMSC_RATE_PER_CLIENT} parts/s ({senders} sending instances: {share}); kept as \
                     configured"
                )),
                Some(_) => {}
                None => sms.max_rate = Some(share),
            }
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:8080"

[store]
url = "sqlite://var/gateway.db"

[[tokens]]
token = "dev-only-token"
role = "submitter"
[[tokens]]
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
role = "admin"

[gateway]
institution_code = "12345678"
node_id = "GW01"

[banks."402241000015"]
endpoint = "127.0.0.1:7001"

[sla]
deadline = "next-day"
calendar = "data/cn-working-calendar.toml"

[sms]
endpoint = "127.0.0.1:2775"
system_id = "gw"
password_env = "SMPP_PASSWORD"
service_number = "10690000"

[events]
"#;

    #[test]
    fn reads_the_spec_example() {
        let c = Config::parse(Path::new("x.toml"), SPEC_EXAMPLE).expect("spec example");
        assert_eq!(c.tokens.len(), 2);
        assert_eq!(c.banks["402241000015"].endpoint, "127.0.0.1:7001");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = SPEC_EXAMPLE.replace("node_id = \"GW01\"", "node_id = \"GW01\"\nnodeid = \"x\"");
        let err = Config::parse(Path::new("x.toml"), &text)
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("nodeid"), "{err}");
    }

    fn limits(code: &str) -> Option<u32> {
        match code {
            "402241000015" | "403241000011" => Some(4),
            "103241000018" => Some(8),
            _ => None,
        }
    }

    #[test]
    fn one_instance_keeps_every_limit() {
        let mut c = Config::parse(Path::new("x.toml"), SPEC_EXAMPLE).expect("spec example");
        assert_eq!(c.gateway.instances, 1);
        assert!(c.apply_instance_shares(limits).expect("shares").is_empty());
        assert_eq!(c.banks["402241000015"].max_connections, None);
        assert_eq!(c.sms.as_ref().and_then(|s| s.max_rate), None);
    }

    #[test]
    fn several_instances_share_the_per_client_limits() {
        let text = SPEC_EXAMPLE
            .replace("sqlite://var/gateway.db", "postgres://gw@db/gw")
            .replace("node_id = \"GW01\"", "node_id = \"GW01\"\ninstances = 3")
            .replace(
                "endpoint = \"127.0.0.1:7001\"",
                "endpoint = \"127.0.0.1:7001\"\n[banks.\"103241000018\"]\nendpoint = \"https://b:1\"\nmax_connections = 8\n[banks.\"403241000011\"]\nendpoint = \"c:1\"\nmax_connections = 1",
            );
        let mut c = Config::parse(Path::new("x.toml"), &text).expect("parses");
        let warnings = c.apply_instance_shares(limits).expect("shares");
        // A: 4 / 3 (unset: the share); B: 8 / 3 (a larger value lowered); C: 1 (below the share: kept).
        assert_eq!(c.banks["402241000015"].max_connections, Some(1));
        assert_eq!(c.banks["103241000018"].max_connections, Some(2));
        assert_eq!(c.banks["403241000011"].max_connections, Some(1));
        // Two binds: at most two instances send, 50 parts/s each.
        assert_eq!(c.sms.as_ref().and_then(|s| s.max_rate), Some(50));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("banks.103241000018.max_connections"));
        assert!(warnings[1].contains("2 binds"));

        // A rate above the share is kept, and said.
        let mut c = Config::parse(
            Path::new("x.toml"),
            &text.replace("instances = 3", "instances = 2"),
        )
        .expect("parses");
        if let Some(s) = c.sms.as_mut() {
            s.max_rate = Some(400);
        }
        let warnings = c.apply_instance_shares(limits).expect("shares");
        assert_eq!(c.sms.as_ref().and_then(|s| s.max_rate), Some(400));
        assert!(
            warnings.iter().any(|w| w.contains("sms.max_rate = 400")),
            "{warnings:?}"
        );
        assert_eq!(c.banks["402241000015"].max_connections, Some(2));

        // More instances than a bank has connections: refused, naming the bank.
        let mut c = Config::parse(
            Path::new("x.toml"),
            &text.replace("instances = 3", "instances = 5"),
        )
        .expect("parses");
        let err = c.apply_instance_shares(limits).expect_err("too many");
        assert!(err.contains("banks.402241000015"), "{err}");
    }

    #[test]
    fn several_instances_need_postgres() {
        let text = SPEC_EXAMPLE.replace("node_id = \"GW01\"", "node_id = \"GW01\"\ninstances = 2");
        let err = Config::parse(Path::new("x.toml"), &text)
            .expect_err("sqlite")
            .to_string();
        assert!(err.contains("gateway.instances"), "{err}");
        let err = Config::parse(
            Path::new("x.toml"),
            &text.replace("instances = 2", "instances = 0"),
        )
        .expect_err("zero")
        .to_string();
        assert!(err.contains("gateway.instances"), "{err}");
    }

    #[test]
    fn bad_deadline_is_named() {
        let text = SPEC_EXAMPLE.replace("deadline = \"next-day\"", "deadline = \"tomorrow\"");
        let err = Config::parse(Path::new("x.toml"), &text)
            .expect_err("bad deadline")
            .to_string();
        assert!(err.contains("sla.deadline"), "{err}");
    }
}
