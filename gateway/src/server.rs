//! Starting and stopping a gateway: store, banks, workers, API.
mod listen;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, ApiState, Tokens};
use crate::app::App;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::dispatch::{Banks, worker};
use crate::sla::{Calendar, DeadlinePolicy};
use crate::store::Store;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The listener could not be bound.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running gateway.
pub struct Running {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The shared state.
    pub app: Arc<App>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// Installs the process-wide TLS crypto provider (ring) once.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SMPP session and sender settings from `[sms]`; the password from its file or variable.
fn sms_setup(
    s: &crate::config::Sms,
) -> Result<(crate::sms::SmppConfig, crate::sms::sender::SenderConfig), StartError> {
    let password = match (&s.password_env, &s.password_file) {
        (Some(v), _) => std::env::var(v)
            .map_err(|_| StartError::Config(format!("sms.password_env: {v} is not set")))?,
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| StartError::Config(format!("sms.password_file {}: {e}", f.display())))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        (None, None) => {
            return Err(StartError::Config(
                "sms: password_env or password_file is required".into(),
            ));
        }
    };
    // SMPP 3.4's bind fields are C-octet strings of fixed size: a longer value could never bind, and
    // the session would only retry and warn.
    if s.system_id.is_empty() || s.system_id.len() > 15 {
        return Err(StartError::Config(
            "sms.system_id: 1 to 15 octets (SMPP bind)".into(),
        ));
    }
    if password.len() > 8 {
        return Err(StartError::Config(
            "sms: the password has more than 8 octets, which an SMPP bind cannot carry".into(),
        ));
    }
    let mut smpp = crate::sms::SmppConfig::new(
        s.endpoint.clone(),
        s.system_id.clone(),
        crate::sms::SmscPassword::new(password),
        s.service_number.clone(),
    );
    if let Some(r) = s.max_rate {
        smpp.max_rate_per_second = Some(r.max(1));
    }
    if let Some(t) = s.key_tlv {
        if !(0x1400..=0x3FFF).contains(&t) {
            return Err(StartError::Config(
                "sms.key_tlv: a vendor tag 0x1400..=0x3FFF".into(),
            ));
        }
        smpp.key_tlv = Some(t);
    }
    if let Some(d) = s.enquire_link {
        smpp.enquire_link_interval = d.0;
        smpp.dead_after = d.0 * 2;
    }
    let templates =
        crate::sms::notice::Templates::new(s.templates.clone()).map_err(StartError::Config)?;
    let quiet = s
        .quiet_hours
        .as_deref()
        .map(crate::sms::sender::parse_quiet)
        .transpose()
        .map_err(|e| StartError::Config(format!("sms.quiet_hours: {e}")))?;
    let sender = crate::sms::sender::SenderConfig {
        templates,
        quiet,
        unknown_grace: s
            .unknown_grace
            .map_or(std::time::Duration::from_secs(600), |d| d.0),
        batch: 20,
    };
    Ok((smpp, sender))
}

/// Starts a gateway with `config` and `clock`.
pub async fn start(mut config: Config, clock: SharedClock) -> Result<Running, StartError> {
    install_crypto();
    let metrics = crate::ops::metrics::install();
    let mut profiles = bank_profiles::builtin().map_err(|e| StartError::Config(e.to_string()))?;
    if let Some(dir) = &config.gateway.profiles_dir {
        let extra = bank_profiles::load_dir(dir).map_err(|e| StartError::Config(e.to_string()))?;
        profiles.extend(extra);
    }
    // Several instances divide what a bank and the SMS centre allow one client (docs/operations.md).
    let shares = config
        .apply_instance_shares(|code| profiles.get(code).map(|p| p.transport.max_connections))
        .map_err(StartError::Config)?;
    for w in shares {
        warn!("{w}");
    }
    let banks =
        Banks::build(&profiles, &config.banks, &config.gateway).map_err(StartError::Config)?;
    let calendar = match &config.sla.calendar {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StartError::Config(format!("sla.calendar: {}: {e}", path.display()))
            })?;
            Calendar::parse(&text).map_err(|e| StartError::Config(format!("sla.calendar: {e}")))?
        }
        None => Calendar::builtin(),
    };
    let year = clock.today().year();
    for y in [year, year + 1] {
        if !calendar.covers(y) {
            warn!(
                year = y,
                "the working calendar has no schedule for this year: weekends only are rest days until it is added"
            );
        }
    }
    let deadline = DeadlinePolicy::parse(&config.sla.deadline).map_err(StartError::Config)?;
    let keys = crate::keys::load(&config.gateway).map_err(|e| StartError::Config(e.to_string()))?;
    let lookup = keys.lookup.clone();
    let store = Store::open_with_keys(&config.store.url, keys).await?;
    let recovered = store.recover_leases(&config.gateway.node_id).await?;
    if recovered > 0 {
        info!(
            parts = recovered,
            "sends interrupted by the last stop will be resolved by asking the banks"
        );
    }
    let sms = match &config.sms {
        Some(s) => Some(sms_setup(s)?),
        None => None,
    };
    let tokens = Arc::new(
        Tokens::from_config(&config.tokens)
            .with_rate_limit(api::auth::RateLimit::from_config(&config.server)),
    );
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(StartError::Config)?),
        (None, None) => None,
        _ => {
            return Err(StartError::Config(
                "server.tls_cert and server.tls_key go together".into(),
            ));
        }
    };
    let listen = config.server.listen.clone();
    let app = Arc::new(App {
        result_polls: App::result_polls_for(&store),
        node_id: config.gateway.node_id.clone(),
        config,
        store,
        clock,
        banks,
        lookup,
        calendar,
        deadline,
        work: tokio::sync::Notify::new(),
    });
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for bank in app.banks.all() {
        tasks.spawn(worker::run(app.clone(), bank.clone(), stop.child_token()));
    }
    tasks.spawn(crate::sla::evaluator::run(app.clone(), stop.child_token()));
    tasks.spawn(crate::keys::rotation::run(app.clone(), stop.child_token()));
    if let Some((smpp, sender)) = sms {
        let (handle, receipts) = crate::sms::SmppClient::start(smpp);
        tasks.spawn(crate::sms::sender::run(
            app.clone(),
            handle,
            receipts,
            sender,
            stop.child_token(),
        ));
    }
    if let Some(url) = app.config.events.callback_url.clone() {
        tasks.spawn(crate::events::run(app.clone(), url, stop.child_token()));
    }
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: listen,
        source,
    })?;
    let router = api::router(ApiState {
        app: app.clone(),
        tokens,
        metrics,
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tasks.spawn(listen::serve(
        listener,
        tls,
        router,
        app.config.server.header_read_timeout.0,
        stop.child_token(),
    ));
    info!(%addr, scheme, "gateway listening");
    Ok(Running {
        addr,
        app,
        stop,
        tasks,
    })
}

impl Running {
    /// Stops workers and the API, waits for them, closes the store.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.app.store.close().await;
    }

    /// Waits until Ctrl-C or SIGTERM, then shuts down.
    pub async fn until_signal(self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = ctrl_c => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        info!("stopping");
        self.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(system_id: &str, password_file: &std::path::Path) -> crate::config::Sms {
        crate::config::Sms {
            endpoint: "127.0.0.1:2775".into(),
            system_id: system_id.into(),
            password_env: None,
            password_file: Some(password_file.to_owned()),
            service_number: "10690000".into(),
            templates: Default::default(),
            quiet_hours: None,
            unknown_grace: None,
            max_rate: None,
            key_tlv: None,
            enquire_link: None,
        }
    }

    #[test]
    fn smpp_bind_fields_that_cannot_bind_stop_the_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let short = dir.path().join("short");
        let long = dir.path().join("long");
        std::fs::write(&short, "pw345678\n").expect("write");
        std::fs::write(&long, "pw3456789").expect("write");
        assert!(sms_setup(&sms("gw", &short)).is_ok());
        let Err(err) = sms_setup(&sms("gw", &long)) else {
            panic!("a 9-octet password was taken");
        };
        assert!(err.to_string().contains("8 octets"), "{err}");
        let Err(err) = sms_setup(&sms("a-system-id-of-16", &short)) else {
            panic!("a 17-octet system_id was taken");
        };
        assert!(err.to_string().contains("sms.system_id"), "{err}");
    }
}
