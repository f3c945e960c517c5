//! The web console in a real browser: headless Chromium, driven over WebDriver (a
//! chromedriver process each test starts on a free port, talked to with fantoccini), against
//! the real `switchyard` binary on a fresh SQLite file. The tests do what a person does —
//! sign in, chat, read which agent answered, open the history, meet the error messages,
//! manage agents, look at analytics, and sign in to another tenant to find none of it — on a
//! desktop window and on a phone-sized one, saving a screenshot at each step under
//! `target/console-screenshots/`.
//!
//! Without Chromium or chromedriver the tests say so loudly and skip;
//! `SWITCHYARD_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

#[path = "support/serve.rs"]
mod serve;

use serve::Server;
const OPERATOR: &str = "operator-token-for-console-tests";
const PASSWORD: &str = "a long enough password";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing on the page may take to appear.
const PATIENCE: Duration = Duration::from_secs(20);

// ----- the server -----

/// `switchyard serve` on a free port and a fresh SQLite file, with the operator's token.
fn start() -> Server {
    let db = format!(
        "sqlite://{}",
        switchyard_store::testing::sqlite_path().display()
    );
    Server::start(&[
        ("SWITCHYARD_DATABASE_URL", db.as_str()),
        ("SWITCHYARD_ADMIN_TOKEN", OPERATOR),
    ])
}

/// An HTTP client for the tests (TLS through the same provider as the server's).
fn http_client() -> reqwest::Client {
    switchyard_agents::install_tls_provider();
    reqwest::Client::builder().build().unwrap()
}

/// A tenant made over the API: its admin, a member, and its agents.
struct Tenant {
    slug: String,
}

async fn tenant(
    client: &reqwest::Client,
    url: &str,
    prefix: &str,
    settings: Value,
    agents: &[Value],
) -> Tenant {
    let slug = format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut settings = settings;
    settings["rate_limit_per_second"] = json!(0);
    let created = client
        .post(format!("{url}/v1/tenants"))
        .bearer_auth(OPERATOR)
        .json(
            &json!({"slug": slug, "name": format!("{prefix} Inc."), "settings": settings,
                      "admin_email": format!("admin@{prefix}.test"), "admin_password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let login: Value = client
        .post(format!("{url}/v1/auth/login"))
        .json(
            &json!({"tenant": slug, "email": format!("admin@{prefix}.test"), "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = login["access_token"].as_str().unwrap().to_string();
    let user = client
        .post(format!("{url}/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": format!("member@{prefix}.test"), "display_name": format!("{prefix} member"),
                      "role": "member", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 201, "{}", user.text().await.unwrap());
    for agent in agents {
        let resp = client
            .post(format!("{url}/v1/agents"))
            .bearer_auth(&admin)
            .json(agent)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
    Tenant { slug }
}

fn echo(name: &str, intents: &[&str], keywords: &[&str], examples: &[&str]) -> Value {
    json!({"name": name, "kind": "echo", "description": format!("{name} questions"),
           "intents": intents, "keywords": keywords, "examples": examples,
           "config": {"template": "{agent} here: you said {message}"}})
}

/// A loopback URL where nothing listens (the port was free a moment ago).
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/answer")
}

// ----- the browser -----

/// Whether the browser can run here; otherwise says why (loudly) or fails under
/// `SWITCHYARD_REQUIRE_BROWSER=1`.
fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{} not installed (apt-get install chromium chromium-driver): the console's browser tests cannot run",
        missing.join(" and ")
    );
    if std::env::var("SWITCHYARD_REQUIRE_BROWSER").is_ok_and(|v| v == "1" || v == "true") {
        panic!("{message}, and SWITCHYARD_REQUIRE_BROWSER=1");
    }
    // Straight to the process's standard error, past the test harness's capture, so that a
    // skip is seen in a passing run too.
    switchyard_store::testing::loud_skip(&format!("SKIPPED: {message}"));
    false
}

/// chromedriver on a free port, in its own process group (Chromium too), all of which is
/// killed when dropped, with a fresh profile directory that is then removed.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    async fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        let profile = std::env::temp_dir().join(format!(
            "switchyard-console-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--log-level=SEVERE")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap();
        let driver = Self {
            child,
            port,
            profile,
        };
        let client = http_client();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = client
                .get(format!("{}/status", driver.url()))
                .send()
                .await
                .ok();
            if let Some(resp) = ready
                && let Ok(status) = resp.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new headless Chromium session with a window of `width`×`height`.
    async fn browser(&self, width: u32, height: u32) -> Client {
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", self.profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url())
            .await
            .unwrap();
        client.set_window_size(width, height).await.unwrap();
        client
    }
}

/// The processes of process group `group` (chromedriver's, which the Chromium it starts
/// joins), read from `/proc`.
fn processes_in_group(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `/proc/PID/stat`: "pid (comm) state ppid pgrp …"; comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(group)
        })
        .collect()
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started, whatever happened (a panic mid-story
        // leaves no browser behind): each by its own id.
        let group = self.child.id();
        let pids: Vec<String> = processes_in_group(group)
            .into_iter()
            .filter(|&pid| pid != group)
            .map(|pid| pid.to_string())
            .collect();
        if !pids.is_empty() {
            let _ = Command::new("kill")
                .arg("-s")
                .arg("KILL")
                .args(&pids)
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

// ----- acting on the page -----

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page as a person sees it, at one step of a story.
struct Page {
    client: Client,
    story: &'static str,
    step: u32,
}

impl Page {
    async fn shot(&mut self, name: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{}-{:02}-{name}.png", self.story, self.step));
        std::fs::write(&path, png).unwrap();
    }

    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// Waits until `script` returns something truthy, and returns it; on timeout, saves a
    /// screenshot and fails with what the page shows.
    async fn until(&mut self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.js(script, args.clone()).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                self.shot(&format!("FAILED-{}", what.replace(' ', "-")))
                    .await;
                let text = self.js("return document.body.innerText", vec![]).await;
                panic!(
                    "[{}] timed out waiting for {what}; the page shows:\n{text}",
                    self.story
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the text of the first element matching `selector`.
    async fn text_of(&mut self, selector: &str) -> String {
        let value = self
            .until(
                &format!("text of {selector}"),
                "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
                vec![json!(selector)],
            )
            .await;
        value.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the element matching `selector` contains `needle`.
    async fn wait_text(&mut self, selector: &str, needle: &str) -> String {
        let value = self
            .until(
                &format!("{needle:?} in {selector}"),
                "const e = document.querySelector(arguments[0]); \
                 return e && e.textContent.includes(arguments[1]) ? e.textContent.trim() : null;",
                vec![json!(selector), json!(needle)],
            )
            .await;
        value.as_str().unwrap_or_default().to_string()
    }

    async fn visible(&mut self, selector: &str) {
        self.until(
            &format!("{selector} visible"),
            "const e = document.querySelector(arguments[0]); \
             return !!e && e.getClientRects().length > 0 && !e.closest('[hidden]');",
            vec![json!(selector)],
        )
        .await;
    }

    async fn find(&mut self, selector: &str) -> fantoccini::elements::Element {
        self.visible(selector).await;
        self.client.find(Locator::Css(selector)).await.unwrap()
    }

    async fn click(&mut self, selector: &str) {
        self.find(selector).await.click().await.unwrap();
    }

    async fn type_into(&mut self, selector: &str, text: &str) {
        let field = self.find(selector).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The id of the focused element.
    async fn focused(&self) -> String {
        let value = self
            .js(
                "return document.activeElement ? document.activeElement.id : ''",
                vec![],
            )
            .await;
        value.as_str().unwrap_or_default().to_string()
    }

    /// Presses a key where the focus is.
    async fn press(&self, key: Key) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(&String::from(char::from(key)))
            .await
            .unwrap();
    }

    /// Puts the focus on the page's first focusable element, where a keyboard user's first
    /// Tab lands (the browser remembers where the focus was, so a test cannot just blur).
    async fn focus_first(&self) -> String {
        let id = self
            .js(
                "const all = document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]:not([tabindex=\"-1\"])'); \
                 const first = Array.from(all).find(e => !e.disabled && e.getClientRects().length > 0); \
                 first.focus(); return first.id;",
                vec![],
            )
            .await;
        id.as_str().unwrap_or_default().to_string()
    }

    /// Signs in with the keyboard only: types in each field and presses Enter.
    async fn sign_in(&mut self, tenant: &str, email: &str) {
        self.visible("#login-form").await;
        self.type_into("#login-tenant", tenant).await;
        self.type_into("#login-email", email).await;
        self.type_into("#login-password", PASSWORD).await;
        let password = self.find("#login-password").await;
        password
            .send_keys(&String::from(char::from(Key::Enter)))
            .await
            .unwrap();
        self.wait_text("#whoami", email).await;
        self.visible("#chat-view").await;
    }

    /// Sends a chat message with the keyboard (Enter) and waits until the turn is over.
    async fn chat(&mut self, message: &str) -> usize {
        let before = self.turns().await;
        self.type_into("#message", message).await;
        let input = self.find("#message").await;
        input
            .send_keys(&String::from(char::from(Key::Enter)))
            .await
            .unwrap();
        self.until(
            "the turn to end",
            "const t = document.querySelectorAll('#messages li.turn'); \
             return t.length > arguments[0] && !t[t.length - 1].classList.contains('streaming');",
            vec![json!(before)],
        )
        .await;
        before + 1
    }

    async fn turns(&self) -> usize {
        let n = self
            .js(
                "return document.querySelectorAll('#messages li.turn').length",
                vec![],
            )
            .await;
        usize::try_from(n.as_u64().unwrap_or(0)).unwrap()
    }

    /// The page is no wider than the window (nothing to scroll sideways on a phone).
    async fn fits_the_width(&mut self, what: &str) {
        let sizes = self
            .js(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        let (scroll, inner) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
        assert!(
            scroll <= inner,
            "[{}] {what}: the page is {scroll} px wide in a {inner} px window",
            self.story
        );
    }

    /// The top bar is one row: the icon, the pages and Sign out side by side, nothing
    /// wider than the window.
    async fn header_is_one_row(&mut self, who: &str) {
        let rows = self
            .js(
                "const top = e => e.getBoundingClientRect().top; \
                 const bar = document.getElementById('topbar'); \
                 const parts = [bar.querySelector('.brand'), document.getElementById('nav'), document.getElementById('logout')]; \
                 return {tops: parts.map(p => Math.round(top(p) + p.getBoundingClientRect().height / 2)), \
                         height: Math.round(bar.getBoundingClientRect().height), \
                         logoutTitle: document.getElementById('logout').title};",
                vec![],
            )
            .await;
        let tops: Vec<i64> = rows["tops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap())
            .collect();
        assert!(
            tops.iter().all(|t| (t - tops[0]).abs() <= 4),
            "[{}] {who}: the header is not one row: {rows}",
            self.story
        );
        assert!(rows["height"].as_i64().unwrap() <= 64, "{rows}");
        assert!(
            rows["logoutTitle"]
                .as_str()
                .unwrap()
                .contains("Signed in as")
        );
        self.fits_the_width(&format!("{who}'s header")).await;
    }

    async fn go(&mut self, url: &str) {
        self.client.goto(url).await.unwrap();
    }
}

const LAST_TURN: &str = "#messages li.turn:last-child";

// ----- the stories -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_story_sign_in_chat_history_errors_admin_and_isolation() {
    if !browser_available() {
        return;
    }
    let server = start();
    let api = http_client();
    let acme = tenant(
        &api,
        &server.url,
        "acme",
        json!({}),
        &[
            echo(
                "billing",
                &["billing"],
                &["invoice", "refund", "payment", "charge", "bill"],
                &["I need a refund for my invoice", "when is my payment due"],
            ),
            echo(
                "tech",
                &["technical"],
                &["password", "login", "crash", "error", "reset"],
                &["the app crashes on start", "I cannot reset my password"],
            ),
            json!({"name": "weather", "kind": "http", "description": "weather forecasts",
                   "intents": ["weather"], "keywords": ["weather", "forecast", "rain", "sunny"],
                   "examples": ["what is the weather forecast for tomorrow", "will it rain"],
                   "config": {"url": closed_port_url(), "timeout_ms": 2000}}),
        ],
    )
    .await;
    let globex = tenant(
        &api,
        &server.url,
        "globex",
        json!({"max_conversations_per_user": 1}),
        &[json!({"name": "helpdesk", "kind": "echo", "is_fallback": true,
                 "description": "answers everything", "config": {"template": "helpdesk: {message}"}})],
    )
    .await;

    let driver = Driver::start().await;
    let mut page = Page {
        client: driver.browser(1280, 900).await,
        story: "desktop",
        step: 0,
    };

    // The page and its headers.
    let index = api.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let csp = index.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    // A member of acme signs in with the keyboard; the focus lands in the message box.
    page.go(&server.url).await;
    page.visible("#login-form").await;
    page.shot("login").await;
    page.sign_in(&acme.slug, "member@acme.test").await;
    assert_eq!(
        page.focused().await,
        "message",
        "the focus is in the message box"
    );
    let admin_links = page
        .js(
            "return document.getElementById('nav-agents').hidden",
            vec![],
        )
        .await;
    assert_eq!(admin_links, json!(true), "members see no admin pages");

    // Chat: the answer streams in and the routing decision shows who answered and why.
    page.chat("I need a refund for my last invoice").await;
    let answer = page.text_of(&format!("{LAST_TURN} .answer")).await;
    assert_eq!(
        answer,
        "billing here: you said I need a refund for my last invoice"
    );
    assert_eq!(
        page.text_of(&format!("{LAST_TURN} .agent-name")).await,
        "billing"
    );
    assert_eq!(
        page.text_of(&format!("{LAST_TURN} .intent")).await,
        "billing"
    );
    let confidence = page.text_of(&format!("{LAST_TURN} .confidence")).await;
    assert!(confidence.ends_with('%'), "{confidence}");
    assert_eq!(
        page.text_of(&format!("{LAST_TURN} .method")).await,
        "lexical"
    );
    let pieces = page
        .js(
            "return Number(document.querySelector(arguments[0]).dataset.pieces)",
            vec![json!(LAST_TURN)],
        )
        .await;
    assert!(
        pieces.as_u64().unwrap() >= 1,
        "the answer arrived as a stream"
    );
    // The alternatives are one click away.
    page.click(&format!("{LAST_TURN} .routing-details summary"))
        .await;
    page.wait_text(&format!("{LAST_TURN} .alternatives"), "tech")
        .await;
    page.shot("chat-answer-and-routing").await;

    // A follow-up stays in the conversation.
    page.chat("and when will the refund of that payment arrive?")
        .await;
    assert_eq!(page.turns().await, 2);
    assert_eq!(
        page.text_of(&format!("{LAST_TURN} .agent-name")).await,
        "billing"
    );
    let address = page.client.current_url().await.unwrap();
    let conversation_id = address
        .fragment()
        .and_then(|f| f.strip_prefix("/chat/"))
        .unwrap()
        .to_string();

    // A failed agent: the weather agent's port is closed and nobody can take over.
    page.click("#new-conversation").await;
    page.until(
        "an empty conversation",
        "return document.querySelectorAll('#messages li.turn').length === 0",
        vec![],
    )
    .await;
    page.chat("what is the weather forecast for tomorrow, will it rain?")
        .await;
    let error = page.text_of(&format!("{LAST_TURN} [role=alert]")).await;
    assert!(error.contains("The agent failed"), "{error}");
    assert!(error.contains("weather"), "{error}");
    assert_eq!(
        page.js("return document.getElementById('message').value", vec![])
            .await,
        json!("what is the weather forecast for tomorrow, will it rain?"),
        "the unanswered message is kept to send again"
    );
    page.shot("agent-failed").await;

    // By keyboard alone: the skip link is the page's first focusable element and takes the
    // focus into the content; the navigation follows it in Tab order, and Enter on it opens
    // the history.
    assert_eq!(page.focus_first().await, "skip-link");
    page.press(Key::Enter).await;
    let in_main = page
        .js("return !!document.activeElement.closest('main')", vec![])
        .await;
    assert_eq!(in_main, json!(true), "the skip link leads into the content");
    page.focus_first().await;
    for expected in ["nav-chat", "nav-history"] {
        page.press(Key::Tab).await;
        assert_eq!(page.focused().await, expected, "the Tab order");
    }
    // The history: one conversation (the failed turn stored nothing); it opens with its turns.
    page.press(Key::Enter).await;
    page.wait_text("#conversations", "I need a refund for my last invoice")
        .await;
    let listed = page
        .js(
            "return document.querySelectorAll('#conversations li').length",
            vec![],
        )
        .await;
    assert_eq!(listed, json!(1));
    page.wait_text("#conversations .facts", "2 turns").await;
    page.shot("history").await;
    page.click("#conversations a.conversation-link").await;
    page.until(
        "the stored turns",
        "return document.querySelectorAll('#messages li.turn').length === 2",
        vec![],
    )
    .await;
    assert_eq!(
        page.text_of("#messages li.turn:first-child .agent-name")
            .await,
        "billing"
    );
    page.wait_text("#messages li.turn:first-child .answer", "billing here")
        .await;
    page.wait_text("#chat-title", "I need a refund").await;
    page.shot("conversation-from-history").await;

    // An expired session: the stored token no longer works; the next action says so and
    // brings back the sign-in page.
    page.js(
        "sessionStorage.setItem('switchyard.token', 'garbled.token.value')",
        vec![],
    )
    .await;
    page.type_into("#message", "is anyone there?").await;
    page.find("#message")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.wait_text("#login-notice", "session has expired").await;
    let token = page
        .js("return sessionStorage.getItem('switchyard.token')", vec![])
        .await;
    assert_eq!(token, Value::Null, "the bad token is forgotten");
    page.shot("session-expired").await;

    // The admin: agents, create, disable, try routing, analytics.
    page.sign_in(&acme.slug, "admin@acme.test").await;
    page.click("#nav-agents").await;
    page.visible("#agents-table tr[data-name=weather]").await;
    // Health: the weather agent failed the member's turn; its row says so. The Test button
    // calls an agent once (nothing stored) and shows how it went; failed tests count like
    // failed calls, and after five in a row the agent is passed over — which the routing
    // card then says.
    let weather = "#agents-table tr[data-name=weather]";
    page.wait_text(
        &format!("{weather} .agent-health"),
        "1 failed in a row: cannot connect to the agent",
    )
    .await;
    page.click("#agents-table tr[data-name=billing] .test-agent")
        .await;
    page.wait_text(
        "#agents-table tr[data-name=billing] .test-result",
        "Answered in",
    )
    .await;
    for failures in 2..=5 {
        page.click(&format!("{weather} .test-agent")).await;
        page.wait_text(
            &format!("{weather} .agent-health"),
            &format!("{failures} failed in a row"),
        )
        .await;
    }
    page.wait_text(&format!("{weather} .test-result"), "cannot connect")
        .await;
    page.wait_text(&format!("{weather} .agent-health"), "down (passed over)")
        .await;
    page.type_into(
        "#route-message",
        "what is the weather forecast for tomorrow?",
    )
    .await;
    page.click("#route-submit").await;
    page.wait_text(
        "#route-result .skipped-note",
        "Passed over: weather (circuit open after 5 failures in a row",
    )
    .await;
    page.shot("agent-health-and-skipped").await;
    page.click("#new-agent").await;
    page.type_into("#agent-name", "shipping").await;
    page.type_into("#agent-description", "parcel delivery and tracking")
        .await;
    page.type_into("#agent-intents", "shipping").await;
    page.type_into("#agent-keywords", "parcel, delivery, tracking, shipping")
        .await;
    page.type_into("#agent-examples", "where is my parcel")
        .await;
    page.shot("agent-form").await;
    page.click("#agent-save").await;
    page.visible("#agents-table tr[data-name=shipping]").await;
    page.type_into("#route-message", "where is my parcel delivery?")
        .await;
    page.click("#route-submit").await;
    page.wait_text("#route-result .agent-name", "shipping")
        .await;
    page.shot("try-routing").await;
    page.click("#agents-table tr[data-name=shipping] .toggle-agent")
        .await;
    page.wait_text(
        "#agents-table tr[data-name=shipping] .agent-status",
        "disabled",
    )
    .await;
    page.click("#route-submit").await;
    page.until(
        "another agent for the parcel",
        "const e = document.querySelector('#route-result .agent-name'); \
         return e && e.textContent !== 'shipping';",
        vec![],
    )
    .await;
    page.shot("agent-disabled").await;
    // Editing an agent.
    page.click("#agents-table tr[data-name=tech] .edit-agent")
        .await;
    page.type_into("#agent-description", "technical support for the app")
        .await;
    page.click("#agent-save").await;
    page.wait_text(
        "#agents-table tr[data-name=tech]",
        "technical support for the app",
    )
    .await;
    // A bad configuration is explained, not sent.
    page.click("#new-agent").await;
    page.type_into("#agent-name", "broken").await;
    page.type_into("#agent-config", "{not json").await;
    page.click("#agent-save").await;
    page.wait_text("#agent-form-error", "JSON object").await;
    page.click("#agent-cancel").await;

    page.click("#nav-analytics").await;
    page.visible("#analytics-summary").await;
    assert_eq!(page.text_of("#fig-turns dd").await, "2");
    assert_eq!(page.text_of("#fig-conversations dd").await, "1");
    page.wait_text("#chart-agents", "billing").await;
    page.wait_text("#chart-intents", "billing").await;
    let bars = page
        .js(
            "return document.querySelectorAll('#chart-agents rect.bar').length",
            vec![],
        )
        .await;
    assert!(
        bars.as_u64().unwrap() >= 2,
        "bars for billing's turns and weather's failure"
    );
    let error_rate = page.text_of("#fig-errors dd").await;
    assert_ne!(error_rate, "0%", "the weather agent's failure is counted");
    // Over time: the last 7 days, a point per day, the last day's turns among them.
    let per_day = page
        .js(
            "const dots = Array.from(document.querySelectorAll('#chart-turns-over-time circle title'));              return {dots: dots.length, said: dots.map(t => t.textContent),                      caption: document.querySelector('#chart-turns-over-time figcaption').textContent,                      fallback: !!document.querySelector('#chart-fallback-over-time svg'),                      latency: document.querySelectorAll('#chart-latency-over-time circle').length};",
            vec![],
        )
        .await;
    assert_eq!(per_day["caption"], "Turns per day", "{per_day}");
    assert!(per_day["dots"].as_u64().unwrap() >= 7, "{per_day}");
    assert!(
        per_day["said"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with(": 2"),
        "{per_day}"
    );
    assert_eq!(per_day["fallback"], true);
    assert_eq!(
        per_day["latency"], 1,
        "only the day with turns has a latency: {per_day}"
    );
    page.js(
        "document.getElementById('chart-intents').scrollIntoView()",
        vec![],
    )
    .await;
    page.shot("analytics").await;
    // Another period: one that ended before anything happened shows nothing.
    page.find("#analytics-period")
        .await
        .select_by_value("custom")
        .await
        .unwrap();
    page.js(
        "document.getElementById('analytics-from').value = '2020-01-01T00:00'; \
         document.getElementById('analytics-to').value = '2020-01-31T00:00';",
        vec![],
    )
    .await;
    page.click("#analytics-show").await;
    page.wait_text("#fig-turns dd", "0").await;

    // Signing out, and in as globex's member: none of acme's conversations exist there.
    page.click("#logout").await;
    page.wait_text("#login-notice", "signed out").await;
    page.sign_in(&globex.slug, "member@globex.test").await;
    page.click("#nav-history").await;
    page.visible("#no-conversations").await;
    let body = page.js("return document.body.innerText", vec![]).await;
    let body = body.as_str().unwrap();
    assert!(!body.contains("refund"), "{body}");
    assert!(!body.contains("billing"), "{body}");
    page.shot("other-tenant-history-empty").await;
    // Even acme's conversation's address leads nowhere.
    page.go(&format!("{}/#/chat/{conversation_id}", server.url))
        .await;
    page.wait_text("#chat-view [role=alert]", "Not found").await;
    page.shot("other-tenant-conversation-not-found").await;

    // A limit reached: globex allows one conversation per user. (A message nothing
    // matches, so the card shows the fallback.)
    page.click("#new-conversation").await;
    page.chat("qwzx plorb?").await;
    assert_eq!(
        page.text_of(&format!("{LAST_TURN} .agent-name")).await,
        "helpdesk"
    );
    page.wait_text(&format!("{LAST_TURN} .routing"), "fallback")
        .await;
    page.click("#new-conversation").await;
    page.until(
        "an empty conversation",
        "return document.querySelectorAll('#messages li.turn').length === 0",
        vec![],
    )
    .await;
    page.chat("a second conversation").await;
    page.wait_text(
        &format!("{LAST_TURN} [role=alert]"),
        "Conversation limit reached",
    )
    .await;
    page.shot("limit-reached").await;

    page.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_on_a_phone_sized_screen() {
    if !browser_available() {
        return;
    }
    let server = start();
    let api = http_client();
    let shop = tenant(
        &api,
        &server.url,
        "shop",
        json!({}),
        &[
            echo(
                "orders",
                &["orders"],
                &["order", "parcel", "delivery", "tracking"],
                &["where is my order"],
            ),
            echo(
                "returns",
                &["returns"],
                &["return", "refund", "exchange"],
                &["how do I return a shirt"],
            ),
            json!({"name": "warranty", "kind": "http", "description": "warranty claims",
                   "intents": ["warranty"], "keywords": ["warranty", "guarantee", "repair"],
                   "examples": ["is my warranty still valid", "can you repair it"],
                   "config": {"url": closed_port_url(), "timeout_ms": 2000}}),
            json!({"name": "helpdesk", "kind": "echo", "is_fallback": true,
                   "description": "answers everything", "config": {"template": "helpdesk: {message}"}}),
        ],
    )
    .await;
    let driver = Driver::start().await;
    let mut page = Page {
        client: driver.browser(375, 740).await,
        story: "phone",
        step: 0,
    };
    page.go(&server.url).await;
    page.visible("#login-form").await;
    let width = page.js("return window.innerWidth", vec![]).await;
    assert!(
        width.as_u64().unwrap() <= 400,
        "a phone-sized window: {width}"
    );
    page.fits_the_width("sign-in").await;
    page.shot("login").await;
    page.sign_in(&shop.slug, "member@shop.test").await;
    page.header_is_one_row("member").await;
    page.chat("where is my order? the tracking says nothing")
        .await;
    assert_eq!(
        page.text_of(&format!("{LAST_TURN} .agent-name")).await,
        "orders"
    );
    page.fits_the_width("chat").await;
    page.shot("chat").await;
    // A failover: the warranty agent cannot be reached, the fallback answers instead, and
    // the card says so.
    page.click("#new-conversation").await;
    page.until(
        "an empty conversation",
        "return document.querySelectorAll('#messages li.turn').length === 0",
        vec![],
    )
    .await;
    page.chat("is my warranty still valid for a repair?").await;
    assert_eq!(
        page.text_of(&format!("{LAST_TURN} .agent-name")).await,
        "helpdesk"
    );
    page.wait_text(&format!("{LAST_TURN} .badge.failover"), "failover")
        .await;
    let note = page.text_of(&format!("{LAST_TURN} .failover-note")).await;
    assert!(note.contains("warranty could not answer"), "{note}");
    page.wait_text(&format!("{LAST_TURN} .answer"), "helpdesk: is my warranty")
        .await;
    page.fits_the_width("failover").await;
    page.shot("failover").await;
    page.click("#nav-history").await;
    page.visible("#conversations li").await;
    page.fits_the_width("history").await;
    page.shot("history").await;
    page.click("#logout").await;
    page.sign_in(&shop.slug, "admin@shop.test").await;
    // An admin's six pages too: one row, the pages scrolling sideways.
    page.header_is_one_row("admin").await;
    page.click("#nav-agents").await;
    page.visible("#agents-table tr[data-name=returns]").await;
    page.fits_the_width("agents").await;
    page.type_into("#route-message", "I want to return these shoes")
        .await;
    page.find("#route-message")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.wait_text("#route-result .agent-name", "returns").await;
    page.shot("agents").await;
    page.click("#nav-analytics").await;
    page.wait_text("#chart-agents", "orders").await;
    page.visible("#chart-turns-over-time svg").await;
    page.fits_the_width("analytics").await;
    page.js(
        "document.getElementById('chart-agents').scrollIntoView({block: 'center'})",
        vec![],
    )
    .await;
    page.shot("analytics").await;
    page.client.close().await.unwrap();
}

/// Tabs forward from where the focus is until the element with `id` has it: the key goes
/// to the page (a WebDriver key action), as a person's does — sent to a file field as text,
/// it would be taken for a file name.
async fn tab_to(page: &mut Page, id: &str) {
    use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
    for _ in 0..40 {
        if page.focused().await == id {
            return;
        }
        let tab = char::from(Key::Tab);
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab });
        page.client.perform_actions(actions).await.unwrap();
    }
    page.shot(&format!("FAILED-tab-to-{id}")).await;
    panic!("[{}] Tab never reached #{id}", page.story);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_routing_lab_with_the_keyboard() {
    if !browser_available() {
        return;
    }
    let server = start();
    let api = http_client();
    let shop = tenant(
        &api,
        &server.url,
        "lab",
        json!({}),
        &[
            echo(
                "orders",
                &["orders"],
                &["order", "parcel", "delivery", "tracking"],
                &["where is my order", "my parcel is late"],
            ),
            echo(
                "billing",
                &["billing"],
                &["invoice", "refund", "payment", "charge"],
                &["I need a refund for my invoice", "I was charged twice"],
            ),
            json!({"name": "helpdesk", "kind": "echo", "is_fallback": true,
                   "description": "answers everything", "config": {"template": "helpdesk: {message}"}}),
        ],
    )
    .await;
    let driver = Driver::start().await;
    let mut page = Page {
        client: driver.browser(1280, 900).await,
        story: "lab",
        step: 0,
    };
    page.go(&server.url).await;
    page.sign_in(&shop.slug, "admin@lab.test").await;
    // A stored turn for the replay: returns, which no agent serves yet.
    page.chat("can I return these shoes").await;

    // The lab, from the menu, with the keyboard.
    let link = page.find("#nav-lab").await;
    link.send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.visible("#lab-view").await;
    assert_eq!(page.focused().await, "lab-title");
    page.type_into(
        "#lab-csv",
        "message,agent\n\"where is my parcel\",orders\n\"refund my invoice please\",billing\n\"will it rain tomorrow\",fallback\n",
    )
    .await;
    tab_to(&mut page, "lab-run").await;
    page.press(Key::Enter).await;
    let live = page.wait_text("#lab-accuracy-live", "of 3").await;
    assert!(live.contains("Routed right (live)"), "{live}");
    page.visible("#lab-confusion").await;
    page.visible("#lab-calibration svg").await;
    page.visible("#lab-agents").await;
    page.shot("live").await;

    // A draft: a new agent for returns, typed and kept with the keyboard.
    page.type_into("#lab-draft-name", "returns").await;
    page.type_into("#lab-draft-keywords", "return, exchange, send back")
        .await;
    page.type_into(
        "#lab-draft-examples",
        "I want to return an item\nhow do I send something back\ncan I exchange these shoes",
    )
    .await;
    tab_to(&mut page, "lab-draft-keep").await;
    page.press(Key::Enter).await;
    page.wait_text("#lab-draft-list", "Add the agent “returns”")
        .await;
    // Labels that name the draft's agent: the live column says why it has no figures.
    page.type_into(
        "#lab-csv",
        "message,agent\n\"where is my parcel\",orders\n\"refund my invoice please\",billing\n\"can I return this jacket\",returns\n",
    )
    .await;
    tab_to(&mut page, "lab-run").await;
    page.press(Key::Enter).await;
    let drafted = page.wait_text("#lab-accuracy-draft", "of 3").await;
    assert!(drafted.contains("Routed right (draft)"), "{drafted}");
    page.wait_text("#lab-live-note", "returns").await;
    let replay = page
        .wait_text("#lab-replay-summary", "would go to another agent")
        .await;
    assert!(replay.contains("Of the last 1 turns, 1 would"), "{replay}");
    page.wait_text("#lab-replay-changes", "returns").await;
    page.shot("draft").await;

    // Apply saves the draft through the agent routes.
    tab_to(&mut page, "lab-apply").await;
    page.press(Key::Enter).await;
    page.wait_text("#lab-status", "Applied: 1 added").await;
    let login: Value = api
        .post(format!("{}/v1/auth/login", server.url))
        .json(&json!({"tenant": shop.slug, "email": "admin@lab.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agents: Value = api
        .get(format!("{}/v1/agents", server.url))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let returns = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "returns")
        .unwrap();
    assert_eq!(returns["examples"].as_array().unwrap().len(), 3);
    page.shot("applied").await;
}

/// An http agent that takes `delay` to answer; its URL.
async fn slow_agent(delay: Duration) -> String {
    let app = axum::Router::new().route(
        "/agent",
        axum::routing::post(move || async move {
            tokio::time::sleep(delay).await;
            axum::Json(json!({"response": "sorry for the wait"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/agent", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_markdown_stop_and_deleting_with_the_keyboard() {
    if !browser_available() {
        return;
    }
    let server = start();
    let api = http_client();
    let slow = slow_agent(Duration::from_secs(4)).await;
    let md = tenant(
        &api,
        &server.url,
        "md",
        json!({}),
        &[
            json!({"name": "writer", "kind": "echo", "keywords": ["write", "essay"],
                   "examples": ["write me an essay"],
                   "config": {"template": "**{agent}** answers:\n\n- first point\n- see [the docs](https://example.com/docs) or [this](javascript:alert(1))\n\n{message}"}}),
            json!({"name": "slow", "kind": "http", "keywords": ["slow", "patience"],
                   "examples": ["a slow question needing patience"], "config": {"url": slow}}),
            json!({"name": "helpdesk", "kind": "echo", "is_fallback": true,
                   "description": "answers everything", "config": {"template": "helpdesk: {message}"}}),
        ],
    )
    .await;
    let driver = Driver::start().await;
    let mut page = Page {
        client: driver.browser(1280, 900).await,
        story: "markdown",
        step: 0,
    };
    page.go(&server.url).await;
    page.sign_in(&md.slug, "admin@md.test").await;

    // Markdown renders; HTML from the message (and so from the agent) stays text, and only
    // an http(s) address becomes a link.
    page.chat("write an essay <img src=x onerror=alert(1)> please")
        .await;
    let answer = format!("{LAST_TURN} .answer");
    page.wait_text(&format!("{answer} strong"), "writer").await;
    let shape = page
        .js(
            "const a = document.querySelector(arguments[0]); \
             return {items: a.querySelectorAll('ul li').length, imgs: a.querySelectorAll('img').length, \
                     links: Array.from(a.querySelectorAll('a')).map(l => [l.getAttribute('href'), l.rel]), \
                     text: a.textContent};",
            vec![json!(answer)],
        )
        .await;
    assert_eq!(shape["items"], 2, "{shape}");
    assert_eq!(shape["imgs"], 0, "{shape}");
    assert_eq!(
        shape["links"],
        json!([["https://example.com/docs", "noopener noreferrer nofollow"]])
    );
    let text = shape["text"].as_str().unwrap();
    assert!(text.contains("<img src=x onerror=alert(1)>"), "{text}");
    assert!(!text.contains("**"), "{text}");
    page.wait_text(&format!("{LAST_TURN} .elapsed"), "Answered in")
        .await;
    page.shot("markdown").await;

    // A slow agent: the time it takes so far, and Stop, from the keyboard.
    page.type_into("#message", "a slow question, patience please")
        .await;
    page.press(Key::Enter).await;
    page.visible("#stop").await;
    page.wait_text(&format!("{LAST_TURN} .elapsed"), "Waiting…")
        .await;
    page.shot("waiting").await;
    let stop = page.find("#stop").await;
    stop.send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.visible("#stopped-note").await;
    page.wait_text(&format!("{LAST_TURN} .elapsed"), "Stopped after")
        .await;
    assert_eq!(page.focused().await, "message");
    let stop_hidden = page
        .js("return document.querySelector('#stop').hidden", vec![])
        .await;
    assert_eq!(stop_hidden, json!(true));
    page.shot("stopped").await;

    // History: delete a conversation, confirmed in place; Escape takes the question back.
    page.go(&format!("{}/#/history", server.url)).await;
    page.wait_text("#conversations", "write an essay").await;
    let before = page
        .js(
            "return document.querySelectorAll('#conversations li').length",
            vec![],
        )
        .await
        .as_u64()
        .unwrap();
    let delete = "#conversations li:first-child .delete-conversation";
    page.find(delete)
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.visible("#conversations li:first-child .confirm").await;
    let focused_class = page
        .js("return document.activeElement.className", vec![])
        .await;
    assert!(
        focused_class.as_str().unwrap().contains("confirm-no"),
        "Cancel has the focus"
    );
    page.press(Key::Escape).await;
    page.visible(delete).await;
    page.find(delete)
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.find("#conversations li:first-child .confirm-yes")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.until(
        "a conversation fewer",
        "return document.querySelectorAll('#conversations li').length === arguments[0] - 1;",
        vec![json!(before)],
    )
    .await;
    page.shot("conversation-deleted").await;

    // Agents: delete one, confirmed in place.
    page.go(&format!("{}/#/agents", server.url)).await;
    page.wait_text("#agents-table", "writer").await;
    page.find("button.delete-agent[aria-label='Delete writer']")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.find("#agents-table .confirm-yes")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.until(
        "writer gone",
        "return !document.querySelector('#agents-table').textContent.includes('writer');",
        vec![],
    )
    .await;
    page.shot("agent-deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_users_and_api_keys_with_the_keyboard() {
    if !browser_available() {
        return;
    }
    let server = start();
    let api = http_client();
    let team = tenant(
        &api,
        &server.url,
        "team",
        json!({}),
        &[
            json!({"name": "helpdesk", "kind": "echo", "is_fallback": true,
                 "config": {"template": "helpdesk: {message}"}}),
        ],
    )
    .await;
    let driver = Driver::start().await;
    let mut page = Page {
        client: driver.browser(1280, 900).await,
        story: "users",
        step: 0,
    };
    page.go(&server.url).await;
    page.sign_in(&team.slug, "admin@team.test").await;
    page.find("#nav-users")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.visible("#users-view").await;
    assert_eq!(page.focused().await, "users-title");
    page.wait_text("#users-table", "member@team.test").await;

    // Invite Carol as a member, with a first password, by the keyboard.
    page.type_into("#invite-email", "carol@team.test").await;
    page.type_into("#invite-name", "Carol").await;
    page.type_into("#invite-password", "carol's first password")
        .await;
    page.find("#invite-password")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.wait_text("#users-table", "carol@team.test").await;
    let login = |password: &'static str| {
        api.post(format!("{}/v1/auth/login", server.url))
            .json(&json!({"tenant": team.slug, "email": "carol@team.test", "password": password}))
            .send()
    };
    assert_eq!(login("carol's first password").await.unwrap().status(), 200);

    // A new password for Carol.
    let reset = "button.reset-password[aria-label='Set a new password for carol@team.test']";
    page.find(reset)
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.visible("input.new-password").await;
    let in_field = page
        .js(
            "return document.activeElement.classList.contains('new-password')",
            vec![],
        )
        .await;
    assert_eq!(
        in_field,
        json!(true),
        "the new password's field has the focus"
    );
    let field = page.find("input.new-password").await;
    field.send_keys("carol's second password").await.unwrap();
    field
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.wait_text("#users-status", "carol@team.test is set")
        .await;
    assert_eq!(login("carol's first password").await.unwrap().status(), 401);
    assert_eq!(
        login("carol's second password").await.unwrap().status(),
        200
    );

    // Disabled, she is refused; the table says so.
    page.find("button.toggle-user[aria-label='Disable carol@team.test']")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.wait_text("tr[data-email='carol@team.test'] .user-status", "disabled")
        .await;
    assert_eq!(
        login("carol's second password").await.unwrap().status(),
        403
    );
    page.shot("users").await;

    // An API key: its secret shown once, working; revoked, refused.
    page.type_into("#key-name", "script").await;
    page.find("#key-name")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.visible("#key-secret-value").await;
    assert_eq!(page.focused().await, "key-secret-value");
    let secret = page
        .js(
            "return document.querySelector('#key-secret-value').value",
            vec![],
        )
        .await;
    let secret = secret.as_str().unwrap().to_owned();
    assert!(secret.starts_with("sy_"), "{secret}");
    page.wait_text("#keys-table", "script").await;
    let models = || {
        api.get(format!("{}/v1/models", server.url))
            .bearer_auth(&secret)
            .send()
    };
    assert_eq!(models().await.unwrap().status(), 200);
    page.shot("key-created").await;
    page.find("button.revoke-key[aria-label='Revoke the key script']")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.find("#keys-list .confirm-yes")
        .await
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    page.until(
        "the key revoked",
        "return !document.querySelector('#keys-list').textContent.includes('script');",
        vec![],
    )
    .await;
    assert_eq!(models().await.unwrap().status(), 401);
    page.shot("key-revoked").await;

    // A member does not see the page, and opening it says it is for admins.
    page.client.delete_all_cookies().await.unwrap();
    page.click("#logout").await;
    page.sign_in(&team.slug, "member@team.test").await;
    let hidden = page
        .js("return document.querySelector('#nav-users').hidden", vec![])
        .await;
    assert_eq!(hidden, json!(true));
    page.go(&format!("{}/#/users", server.url)).await;
    page.wait_text("main", "Only the tenant’s admins").await;
}
