//! Connections kept warm between single-statement calls.
//!
//! sqlx tests every connection it takes back into its pool with a round trip (a `Sync`
//! answered by `ReadyForQuery`), to flush what a dropped query or transaction may have left
//! behind. The hot path's calls are single statements in their own implicit transactions;
//! one that ran to completion has read its answer up to `ReadyForQuery` and leaves nothing
//! behind, so the test is a wasted round trip on every call (and two context switches on
//! each side). A connection whose statement completed is therefore kept here, still checked
//! out of the sqlx pool, and the next call takes it without either round trip. Everything
//! else goes back through sqlx as before: a statement that failed, a call dropped half-way
//! (sqlx waits out its answer), every transaction.
//!
//! Callers wait for a lease in turn, one lease per connection the pool may open, so when
//! every connection is busy a finished call's connection goes straight to the next caller,
//! still without a round trip. A lease that finds nothing kept takes a connection from sqlx;
//! while anyone waits for sqlx that way (or for a transaction's connection, which always
//! comes from sqlx), a finished call hands its connection back to sqlx instead of keeping
//! it, and a transaction first hands one kept connection back, so no connection sits here
//! while someone waits for one. A connection is kept at most [`KEEP_AT_MOST`] after it left
//! sqlx (one found older is handed back to sqlx instead of used), so that sqlx's lifetime
//! and idle limits still apply to it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgConnection, PgPool, Postgres};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a connection may be kept out of the sqlx pool before it goes back to it.
const KEEP_AT_MOST: Duration = Duration::from_secs(30);

/// The pool with the connections kept warm beside it.
#[derive(Clone, Debug)]
pub(super) struct Conns {
    pool: PgPool,
    /// One permit per connection the pool may open: a lease holds one.
    leases: Arc<Semaphore>,
    kept: Arc<Mutex<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    /// Connections whose last statement completed, newest last, with the time each left
    /// the sqlx pool.
    idle: Vec<(PoolConnection<Postgres>, Instant)>,
    /// Callers waiting for the sqlx pool.
    waiting: usize,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.give_back_all();
    }
}

/// Hands a connection back to sqlx, which returns it to its pool on a task of the runtime;
/// where there is no runtime (the last store dropped after a test's runtime ended), the
/// connection is closed instead.
fn give_back(conn: PoolConnection<Postgres>) {
    if tokio::runtime::Handle::try_current().is_ok() {
        drop(conn);
    } else {
        drop(conn.detach());
    }
}

/// A connection taken for one statement.
struct Lease<'a> {
    conn: Option<(PoolConnection<Postgres>, Instant)>,
    kept: &'a Mutex<Kept>,
    /// Given back (after the connection is kept or returned) when the lease ends.
    _permit: SemaphorePermit<'a>,
}

/// Counts a caller as waiting for the sqlx pool until dropped.
struct Waiting<'a>(&'a Mutex<Kept>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.0).waiting -= 1;
    }
}

fn lock(kept: &Mutex<Kept>) -> MutexGuard<'_, Kept> {
    // The lock guards two plain fields that every holder leaves consistent; a panic while
    // holding it cannot break them.
    kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Kept {
    /// Takes out the connections kept too long, oldest first, to be handed back to sqlx.
    fn take_stale(&mut self) -> Vec<PoolConnection<Postgres>> {
        let fresh = self
            .idle
            .iter()
            .position(|(_, since)| since.elapsed() < KEEP_AT_MOST)
            .unwrap_or(self.idle.len());
        self.idle.drain(..fresh).map(|(conn, _)| conn).collect()
    }

    /// Hands every kept connection back to sqlx.
    fn give_back_all(&mut self) {
        for (conn, _) in self.idle.drain(..) {
            give_back(conn);
        }
    }
}

impl Conns {
    /// Keeps connections of `pool`, within its size bound and its acquire timeout.
    pub(super) fn new(pool: PgPool) -> Self {
        Self {
            leases: Arc::new(Semaphore::new(pool.options().get_max_connections() as usize)),
            pool,
            kept: Arc::default(),
        }
    }

    /// The sqlx pool with every kept connection handed back to it, for callers that take
    /// connections from it directly (tools and tests; connections kept after this call are
    /// handed back by the next one).
    pub(super) fn pool(&self) -> &PgPool {
        lock(&self.kept).give_back_all();
        &self.pool
    }

    /// Runs one statement that returns one row, on a kept connection if there is one.
    pub(super) async fn fetch_one<O>(
        &self,
        query: QueryAs<'_, Postgres, O, PgArguments>,
    ) -> Result<O, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        let mut lease = self.lease().await?;
        let result = query.fetch_one(lease.conn()).await;
        lease.finish(result)
    }

    /// Runs one statement that returns rows, on a kept connection if there is one.
    pub(super) async fn fetch_all<O>(
        &self,
        query: QueryAs<'_, Postgres, O, PgArguments>,
    ) -> Result<Vec<O>, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        let mut lease = self.lease().await?;
        let result = query.fetch_all(lease.conn()).await;
        lease.finish(result)
    }

    /// A connection for one statement: a kept one if there is one, else one from the pool;
    /// waits at most the pool's acquire timeout in all.
    async fn lease(&self) -> Result<Lease<'_>, sqlx::Error> {
        tokio::time::timeout(
            self.pool.options().get_acquire_timeout(),
            self.lease_untimed(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    async fn lease_untimed(&self) -> Result<Lease<'_>, sqlx::Error> {
        let permit = self
            .leases
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let (stale, taken) = {
            let mut kept = lock(&self.kept);
            let stale = kept.take_stale();
            let taken = kept.idle.pop().ok_or_else(|| {
                kept.waiting += 1;
                Waiting(&self.kept)
            });
            (stale, taken)
        };
        stale.into_iter().for_each(give_back);
        let conn = match taken {
            Ok(conn) => conn,
            Err(waiting) => {
                let conn = self.pool.acquire().await?;
                drop(waiting);
                (conn, Instant::now())
            }
        };
        Ok(Lease {
            conn: Some(conn),
            kept: &self.kept,
            _permit: permit,
        })
    }

    /// Begins a transaction on a connection from the pool, handing a kept connection back
    /// to it first when the pool has none idle and cannot open another.
    pub(super) async fn begin(
        &self,
        statement: String,
    ) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        let (waiting, mut spare) = {
            let mut kept = lock(&self.kept);
            kept.waiting += 1;
            let mut spare = kept.take_stale();
            let full = self.pool.size() >= self.pool.options().get_max_connections()
                && self.pool.num_idle() == 0;
            if spare.is_empty()
                && full
                && let Some((conn, _)) = kept.idle.pop()
            {
                spare.push(conn);
            }
            (Waiting(&self.kept), spare)
        };
        spare.drain(..).for_each(give_back);
        let tx = self.pool.begin_with(sqlx::AssertSqlSafe(statement)).await;
        drop(waiting);
        tx
    }
}

impl Lease<'_> {
    /// The connection, to run the statement on.
    fn conn(&mut self) -> &mut PgConnection {
        let (conn, _) = self
            .conn
            .as_mut()
            .expect("a lease holds its connection until it is finished");
        conn
    }

    /// Ends the lease with the statement's result: a connection whose statement completed
    /// is kept (unless someone waits for the pool, or it has been out of the pool long
    /// enough); after an error it goes back to the pool, which tests it.
    fn finish<T, E>(mut self, result: Result<T, E>) -> Result<T, E> {
        if result.is_ok()
            && let Some((conn, since)) = self.conn.take()
        {
            let mut kept = lock(self.kept);
            if kept.waiting == 0 && since.elapsed() < KEEP_AT_MOST {
                kept.idle.push((conn, since));
            } else {
                drop(kept);
                give_back(conn);
            }
        }
        result
    }
}
