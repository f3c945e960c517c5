//! Two replicas, as operators run them: two `switchyard serve` processes on one PostgreSQL
//! database and one Redis (`SWITCHYARD_REDIS_URL`). A tenant's rate limit, login failures
//! and agents' circuits hold across both; with Redis gone mid-test (or a Redis that answers
//! nothing) requests are still served, with a warning and a metric, and shared limits
//! resume when it returns.
//!
//! Redis is found at `SWITCHYARD_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`); where it
//! cannot be reached these tests say so loudly and skip, unless `SWITCHYARD_REQUIRE_REDIS=1`
//! (CI sets it). The replicas reach it through a small proxy in the test, which the test cuts
//! to play Redis stopping.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[path = "support/serve.rs"]
mod serve;
#[path = "support/tenant.rs"]
mod tenant;

use serve::Server;
use tenant::{PASSWORD, login};

const OPERATOR: &str = "operator-token-for-replica-tests";
const JWT_SECRET: &str = "a-jwt-secret-shared-by-both-replicas-0123456789";

/// The test Redis's `HOST:PORT`, or `None` (skipped) when it does not answer.
fn redis_address() -> Option<String> {
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = url
        .strip_prefix("redis://")
        .unwrap_or(&url)
        .trim_end_matches('/')
        .to_string();
    let answered = std::net::TcpStream::connect(&address).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"PING\r\n")?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf)?;
        Ok(buf == *b"+PONG\r\n")
    });
    match answered {
        Ok(true) => Some(address),
        outcome => {
            let required =
                std::env::var("SWITCHYARD_REQUIRE_REDIS").is_ok_and(|v| v == "1" || v == "true");
            assert!(
                !required,
                "Redis is required (SWITCHYARD_REQUIRE_REDIS) but does not answer at {address}: {outcome:?}"
            );
            switchyard_store::testing::loud_skip(&format!(
                "Redis does not answer at {address} ({outcome:?}): the replica tests are SKIPPED. \
                 Set SWITCHYARD_TEST_REDIS_URL, or SWITCHYARD_REQUIRE_REDIS=1 to fail instead."
            ));
            None
        }
    }
}

/// A TCP proxy in front of Redis that the test can cut (every connection closed, new ones
/// refused at once, as when Redis stops) and restore.
struct Proxy {
    address: String,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up_, links_) = (up.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up_.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                links_.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut redis) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut redis).await;
                    }
                }));
            }
        });
        Self { address, up, links }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.address)
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A replica: `switchyard serve` on the shared database and Redis.
struct Replica(Server);

impl std::ops::Deref for Replica {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.0
    }
}

impl Replica {
    fn start(database: &str, redis: &str) -> Self {
        Self(Server::start(&[
            ("SWITCHYARD_DATABASE_URL", database),
            ("SWITCHYARD_REDIS_URL", redis),
            ("SWITCHYARD_JWT_SECRET", JWT_SECRET),
            ("SWITCHYARD_ADMIN_TOKEN", OPERATOR),
            ("SWITCHYARD_CIRCUIT_FAILURE_THRESHOLD", "2"),
            ("SWITCHYARD_CIRCUIT_OPEN_SECONDS", "60"),
        ]))
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A value of the metrics scrape: the first sample whose line starts with `series`.
    async fn metric(&self, client: &reqwest::Client, series: &str) -> Option<f64> {
        let text = client
            .get(format!("{}/metrics", self.url))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// A client whose requests come from an address of their own (anywhere in 127.0.0.0/8), so
/// that the address's login counts in the shared Redis are this test's alone.
fn client() -> reqwest::Client {
    let [a, b, c] = rand::random::<[u8; 3]>();
    switchyard_agents::install_tls_provider();
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, a, b, c.max(2))))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Two replicas on this process's PostgreSQL database and `redis`; `None` when skipped.
async fn two_replicas(redis: &str) -> Option<(Replica, Replica)> {
    let database = switchyard_store::testing::postgres_database_url().await?;
    // One after the other: the first applies the migrations.
    let first = Replica::start(&database, redis);
    let second = Replica::start(&database, redis);
    Some((first, second))
}

/// A tenant (with `settings`): its slug and its admin's token from a real login.
async fn tenant(client: &reqwest::Client, url: &str, settings: Value) -> (String, String) {
    let slug = format!("r-{:08x}", rand::random::<u32>());
    let (_, token) = tenant::tenant(client, url, OPERATOR, &slug, settings).await;
    (slug, token)
}

async fn status(client: &reqwest::Client, url: &str, token: &str) -> u16 {
    client
        .get(format!("{url}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_rate_limit_holds_across_both_replicas_under_load() {
    let Some(redis) = redis_address() else { return };
    let Some((a, b)) = two_replicas(&format!("redis://{redis}")).await else {
        return;
    };
    let client = client();
    let (rate, burst) = (20.0, 5.0);
    let (_, token) = tenant(
        &client,
        &a.url,
        json!({"rate_limit_per_second": 20, "rate_limit_burst": 5}),
    )
    .await;
    // Let the bucket fill after the setup's requests.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let admitted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let run_for = Duration::from_secs(3);
    let mut load = Vec::new();
    for worker in 0..8 {
        let url = if worker % 2 == 0 { &a.url } else { &b.url };
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        let (admitted, refused) = (admitted.clone(), refused.clone());
        load.push(tokio::spawn(async move {
            while started.elapsed() < run_for {
                match status(&client, &url, &token).await {
                    200 => admitted.fetch_add(1, Ordering::SeqCst),
                    429 => refused.fetch_add(1, Ordering::SeqCst),
                    other => panic!("unexpected status {other}"),
                };
            }
        }));
    }
    for worker in load {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = admitted.load(Ordering::SeqCst) as f64;
    let refused = refused.load(Ordering::SeqCst) as f64;
    let expected = burst + rate * elapsed;
    assert!(
        refused > admitted,
        "the load is well over the limit: {admitted} admitted, {refused} refused"
    );
    assert!(
        (admitted - expected).abs() <= 0.2 * expected,
        "{admitted} requests admitted in {elapsed:.2} s across both replicas; the limit allows \
         {expected:.0} (each replica alone would allow about twice that)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_and_circuits_count_across_both_replicas() {
    let Some(redis) = redis_address() else { return };
    let Some((a, b)) = two_replicas(&format!("redis://{redis}")).await else {
        return;
    };
    let client = client();
    let (slug, token) = tenant(&client, &a.url, json!({"rate_limit_per_second": 0})).await;

    // Ten failures, five on each replica: the account is locked on both, though neither saw
    // ten itself.
    for n in 0..10 {
        let url = if n % 2 == 0 { &a.url } else { &b.url };
        assert_eq!(login(&client, url, &slug, "wrong").await.status(), 401);
    }
    for url in [&a.url, &b.url] {
        let locked = login(&client, url, &slug, PASSWORD).await;
        assert_eq!(locked.status(), 429, "locked on {url}");
        assert!(locked.headers().contains_key("retry-after"));
    }

    // An agent that fails: one failure on each replica opens its circuit (threshold 2) for
    // both, and neither calls it again.
    let (agent_url, calls) = failing_agent().await;
    let created = tenant::agent(
        &client,
        &a.url,
        &token,
        &json!({"name": "flaky", "kind": "http", "config": {"url": agent_url}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let chat = async |url: &str| {
        client
            .post(format!("{url}/v1/chat"))
            .bearer_auth(&token)
            .json(&json!({"message": "hello", "agent_id": id}))
            .send()
            .await
            .unwrap()
    };
    let health = async |url: &str| -> Value {
        client
            .get(format!("{url}/v1/agents/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    assert_eq!(chat(&a.url).await.status(), 502);
    // A call's outcome reaches Redis in a task of its own, a moment after the answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&b.url).await["health"]["consecutive_failures"] != 1 {
        assert!(Instant::now() < deadline, "b sees a's failure");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chat(&b.url).await.status(), 502);
    while health(&a.url).await["health"]["state"] != "open" {
        assert!(Instant::now() < deadline, "a sees the circuit b opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    for url in [&a.url, &b.url] {
        let open = chat(url).await;
        assert_eq!(open.status(), 503, "open on {url}");
        let body: Value = open.json().await.unwrap();
        assert_eq!(body["type"], "https://switchyard.dev/problems/circuit-open");
        let agent = health(url).await;
        assert_eq!(agent["health"]["state"], "open", "{agent}");
        assert_eq!(agent["health"]["consecutive_failures"], 2, "{agent}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "not called while open");
}

/// An agent that always fails with a 500, and how many calls it has had.
async fn failing_agent() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/fail",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/fail"), calls)
}

/// Whether the replicas share one bucket now: with a burst of 3 and a rate of 1 a second,
/// three requests on `a` leave `b` nothing.
async fn shared_now(client: &reqwest::Client, a: &Replica, b: &Replica, token: &str) -> bool {
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..3 {
        assert_eq!(status(client, &a.url, token).await, 200);
    }
    status(client, &b.url, token).await == 429
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_requests_are_served_and_shared_limits_resume_when_it_returns() {
    let Some(redis) = redis_address() else { return };
    let proxy = Proxy::start(redis).await;
    let Some((a, b)) = two_replicas(&proxy.url()).await else {
        return;
    };
    let client = client();
    let (_, token) = tenant(
        &client,
        &a.url,
        json!({"rate_limit_per_second": 1, "rate_limit_burst": 3}),
    )
    .await;
    assert!(shared_now(&client, &a, &b, &token).await, "shared at first");

    proxy.cut();
    // Every request is answered (each replica's own bucket decides), none waits on Redis.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for replica in [&a, &b] {
        let served = tokio::time::timeout(Duration::from_secs(5), async {
            let mut admitted = 0;
            for _ in 0..4 {
                match status(&client, &replica.url, &token).await {
                    200 => admitted += 1,
                    429 => {}
                    other => panic!("unexpected status {other}"),
                }
            }
            admitted
        })
        .await
        .expect("requests are answered while Redis is gone");
        assert_eq!(served, 3, "the replica's own bucket of 3");
        assert_eq!(
            replica.metric(&client, "switchyard_redis_up").await,
            Some(0.0)
        );
        assert!(
            replica
                .metric(
                    &client,
                    "switchyard_redis_fallbacks_total{operation=\"rate\"}"
                )
                .await
                .is_some_and(|n| n >= 1.0)
        );
        assert!(
            replica.log().contains("Redis does not answer"),
            "{}",
            replica.log()
        );
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    for replica in [&a, &b] {
        while replica.metric(&client, "switchyard_redis_up").await != Some(1.0) {
            assert!(Instant::now() < deadline, "Redis seen again in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(shared_now(&client, &a, &b, &token).await, "shared again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_answers_nothing_costs_requests_nothing_but_a_warning() {
    // A listener that takes connections and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let replica = Replica::start(
        &format!(
            "sqlite://{}",
            switchyard_store::testing::sqlite_path().display()
        ),
        &format!("redis://{address}"),
    );
    let client = client();
    let (_, token) = tenant(&client, &replica.url, json!({"rate_limit_per_second": 0})).await;
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..20 {
            assert_eq!(status(&client, &replica.url, &token).await, 200);
        }
    })
    .await;
    assert!(answered.is_ok(), "requests are answered without Redis");
    assert!(
        replica.log().contains("Redis does not answer"),
        "{}",
        replica.log()
    );
    assert_eq!(
        replica.metric(&client, "switchyard_redis_up").await,
        Some(0.0)
    );
}
