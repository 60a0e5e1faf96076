//! The API's accept loop, plain HTTP or TLS: hyper's HTTP/1.1 connection driver with the limits a
//! listener open to the network needs.
//!
//! - A request's headers must arrive within `server.header_read_timeout` of the connection opening
//!   or of the previous answer; the connection is closed after that (so a client that opens
//!   connections and trickles headers, slowloris, holds none for long, and an idle kept-alive
//!   connection is closed too). A request's body and handling have their own limits
//!   (`server.request_timeout`, the body sizes).
//! - Over TLS, the handshake must finish within [`HANDSHAKE_TIMEOUT`].
//! - At most [`MAX_CONNECTIONS`] connections are served at once; more wait in the kernel's backlog.
//! - On stop, no new connection is accepted and open ones finish their request (at most [`DRAIN`]).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Time a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long open connections may take to finish on stop.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (over TLS with `tls`) until `stop`; a request's headers must arrive
/// within `header_timeout`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Answers are small and written whole: send them at once.
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(%peer, error = %e, "API connection: TCP_NODELAY not set");
        }
        let tls = tls.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => drive(tcp, router, header_timeout, watcher, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => drive(s, router, header_timeout, watcher, peer).await,
                        Ok(Err(e)) => debug!(%peer, error = %e, "API TLS handshake failed"),
                        Err(_) => debug!(%peer, "API TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("API connections still open after the drain time: dropped");
    }
}

/// Serves one connection to its end.
async fn drive<I>(
    io: I,
    router: Router,
    header_timeout: Duration,
    watcher: Watcher,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Some(header_timeout))
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    if let Err(e) = watcher.watch(conn).await {
        // A header timeout ends here too: the client is gone or too slow, nothing to answer.
        debug!(%peer, error = %e, "API connection ended with an error");
    }
}
