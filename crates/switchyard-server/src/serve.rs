//! The listener: HTTP/1.1 with keep-alive, a cap on open connections, a header read timeout
//! for slow senders and a write timeout for clients that do not read, and a graceful stop
//! on SIGTERM or SIGINT that lets in-flight requests (streams included) finish within the
//! grace period.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// What a connection may take of the server.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// How long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// How long one write may wait for the client to take the bytes.
    pub write_timeout: Duration,
    /// How many connections may be open at once; beyond, new ones wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
}

/// Binds `addr`; the error names the address.
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    // An IP address or a host name (`localhost:8080`), resolved here.
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
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
    grace: Duration,
    drain: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        // A slot first: at the cap, nothing more is accepted until a connection closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
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
                let stream = TimedWrites::new(stream, limits.write_timeout);
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(slot);
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

/// A stream whose writes fail with `TimedOut` when the peer has not taken the bytes within
/// the timeout (its receive window stays full): a client that stops reading cannot hold a
/// connection, and the task behind it, for ever. Reads are untouched (the header read
/// timeout and the body read limit cover slow senders). The timer exists only while a
/// write waits.
#[derive(Debug)]
pub struct TimedWrites<S> {
    inner: S,
    timeout: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedWrites<S> {
    /// `inner`, its writes bounded by `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
        }
    }

    /// Runs a write-side poll: its outcome when ready (the timer is reset), `TimedOut` when
    /// it has waited too long.
    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>>
    where
        S: Unpin,
    {
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Ready(outcome) => {
                self.waiting = None;
                Poll::Ready(outcome)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let timer = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(timer.as_mut().poll(cx));
                self.waiting = None;
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client did not read the answer in time",
                )))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedWrites<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedWrites<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.bounded(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.bounded(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.bounded(cx, AsyncWrite::poll_flush)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.bounded(cx, AsyncWrite::poll_shutdown)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn a_write_nobody_takes_times_out_and_one_taken_does_not() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut timed = TimedWrites::new(near, Duration::from_millis(100));
        // Within what the pipe holds: written at once.
        timed.write_all(&[1; 64]).await.unwrap();
        // Nobody reads: the next write waits, then fails.
        let err = timed.write_all(&[2; 64]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        let mut first = [0; 64];
        far.read_exact(&mut first).await.unwrap();
        assert_eq!(
            first, [1; 64],
            "what was written before the timeout arrives"
        );

        // A reader that takes the bytes, however slowly in all, keeps each write short.
        let (near, mut far2) = tokio::io::duplex(64);
        let mut timed = TimedWrites::new(near, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0; 64];
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                match far2.read(&mut chunk).await.unwrap() {
                    0 => break got,
                    n => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        timed.write_all(&[3; 64 * 20]).await.unwrap();
        timed.shutdown().await.unwrap();
        drop(timed);
        assert_eq!(reader.await.unwrap(), vec![3; 64 * 20]);
    }
}
