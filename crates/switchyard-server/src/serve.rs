//! The listener: HTTP/1.1 with keep-alive, a header read timeout for slow clients, and a
//! graceful stop on SIGTERM or SIGINT that lets in-flight requests (streams included)
//! finish within the grace period.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Binds `addr`; the error names the address.
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("`bind` {addr:?}: {e}"))?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Prints the first line of standard output, `listening on http://HOST:PORT`, flushed.
pub fn announce(listener: &TcpListener) -> Result<SocketAddr, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    Ok(addr)
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT).
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Serves `router` on `listener` until `stop` resolves, then stops accepting and waits up
/// to `grace` for open requests to finish and for `drain` (work that outlives its request,
/// such as a turn whose client went away).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()>,
    grace: Duration,
    drain: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // Each request knows its client's address (the login limits use it).
                let service = TowerToHyperService::new(tower::util::MapRequest::new(
                    router.clone(),
                    move |mut request: axum::http::Request<hyper::body::Incoming>| {
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        request
                    },
                ));
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "stopping: no new connections; finishing open requests"
    );
    // First the connections, then the work they left running: a request still open may
    // yet start such work, so `drain` only begins once every connection is done.
    let finished = async {
        graceful.shutdown().await;
        drain.await;
    };
    tokio::select! {
        () = finished => tracing::info!("all requests finished"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing the remaining connections"),
    }
}
