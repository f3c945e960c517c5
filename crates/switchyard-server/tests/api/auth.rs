//! Authentication pitfalls (RFC 8725) and the authentication rules of docs/architecture.md: every token must be
//! signed with the configured key and algorithm, carry and pass every required claim, and
//! name a user and tenant that exist, belong together and are active.

use std::path::PathBuf;

use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use switchyard_server::config::JwtAlgorithm;

use crate::common::{JWT_SECRET, TestApp, assert_problem, test_config};

fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/keys")
        .join(name)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(tenant: impl ToString, user: impl ToString) -> Value {
    json!({"sub": user.to_string(), "tid": tenant.to_string(), "iat": now(), "exp": now() + 600,
           "iss": "switchyard", "aud": "switchyard"})
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

#[tokio::test]
async fn hs256_tokens_must_be_well_formed_signed_and_current() {
    let app = TestApp::sqlite().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let good = claims(a.tenant, a.member);
    assert_eq!(
        app.get("/v1/me", &hs256(&good, JWT_SECRET.as_bytes()))
            .await
            .status,
        200
    );

    let mut cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-token".into()),
        ("three garbage parts", "abc.def.ghi".into()),
        ("alg none", unsigned(&good)),
        (
            "alg none, capitalised",
            unsigned(&good).replacen(
                &URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
                &URL_SAFE_NO_PAD.encode(br#"{"alg":"None","typ":"JWT"}"#),
                1,
            ),
        ),
        (
            "wrong key",
            hs256(&good, b"another-secret-of-at-least-32-bytes!!"),
        ),
        ("signature stripped", {
            let t = hs256(&good, JWT_SECRET.as_bytes());
            t[..t.rfind('.').unwrap() + 1].to_string()
        }),
        ("tampered claims", {
            let t = hs256(&good, JWT_SECRET.as_bytes());
            let parts: Vec<&str> = t.split('.').collect();
            let evil = URL_SAFE_NO_PAD.encode(claims(b.tenant, b.admin).to_string());
            format!("{}.{}.{}", parts[0], evil, parts[2])
        }),
    ];
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 3600);
    cases.push(("expired", hs256(&expired, JWT_SECRET.as_bytes())));
    let mut early = good.clone();
    early["nbf"] = json!(now() + 3600);
    cases.push(("nbf in the future", hs256(&early, JWT_SECRET.as_bytes())));
    for claim in ["sub", "tid", "exp", "iat", "iss", "aud"] {
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove(claim);
        cases.push((claim, hs256(&missing, JWT_SECRET.as_bytes())));
    }
    for (claim, value) in [("aud", "someone-else"), ("iss", "evil-issuer")] {
        let mut wrong = good.clone();
        wrong[claim] = json!(value);
        cases.push((claim, hs256(&wrong, JWT_SECRET.as_bytes())));
    }
    let mut not_uuid = good.clone();
    not_uuid["sub"] = json!("admin");
    cases.push(("sub not an id", hs256(&not_uuid, JWT_SECRET.as_bytes())));
    // A user of tenant A presented as tenant B's.
    cases.push((
        "tid and sub of different tenants",
        hs256(&claims(b.tenant, a.member), JWT_SECRET.as_bytes()),
    ));
    cases.push((
        "unknown user",
        hs256(
            &claims(a.tenant, uuid::Uuid::now_v7()),
            JWT_SECRET.as_bytes(),
        ),
    ));
    cases.push((
        "unknown tenant",
        hs256(
            &claims(uuid::Uuid::now_v7(), a.member),
            JWT_SECRET.as_bytes(),
        ),
    ));

    let reference = app.call(Method::GET, "/v1/me", None, None).await;
    assert_problem(&reference, 401);
    assert_eq!(reference.headers.get("www-authenticate").unwrap(), "Bearer");
    for (what, token) in cases {
        let resp = app.get("/v1/me", &token).await;
        assert_problem(&resp, 401);
        assert_eq!(
            resp.raw, reference.raw,
            "{what}: every refusal looks the same"
        );
    }
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer"] {
        let req = axum::http::Request::get("/v1/me")
            .header("authorization", header)
            .body(axum::body::Body::empty())
            .unwrap();
        assert_problem(&app.send(req).await, 401);
    }
}

#[tokio::test]
async fn users_and_tenants_are_checked_on_every_request() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let user = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": "temp@x.test", "role": "member"}),
        )
        .await;
    let user_id: switchyard_core::UserId = user.body["id"].as_str().unwrap().parse().unwrap();
    let token = app.token(t.tenant, user_id);
    let key = app
        .post(
            "/v1/api-keys",
            &t.admin_token,
            json!({"name": "k", "user_id": user_id}),
        )
        .await;
    let key = key.body["secret"].as_str().unwrap().to_string();
    assert_eq!(app.get("/v1/me", &token).await.status, 200);
    assert_eq!(app.get("/v1/me", &key).await.status, 200);

    // Disabled: refused at once, by token and by key.
    app.patch(
        &format!("/v1/users/{user_id}"),
        &t.admin_token,
        json!({"status": "disabled"}),
    )
    .await;
    assert_problem(&app.get("/v1/me", &token).await, 403);
    assert_problem(&app.get("/v1/me", &key).await, 403);
    app.patch(
        &format!("/v1/users/{user_id}"),
        &t.admin_token,
        json!({"status": "active"}),
    )
    .await;
    assert_eq!(app.get("/v1/me", &token).await.status, 200);

    // A suspended tenant: every user refused at once.
    let op = crate::common::OPERATOR;
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        op,
        json!({"status": "suspended"}),
    )
    .await;
    assert_problem(&app.get("/v1/me", &t.admin_token).await, 403);
    assert_problem(&app.get("/v1/agents", &key).await, 403);
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        op,
        json!({"status": "active"}),
    )
    .await;

    // Deleted: the token and the key stop working.
    assert_eq!(
        app.delete(&format!("/v1/users/{user_id}"), &t.admin_token)
            .await
            .status,
        204
    );
    assert_problem(&app.get("/v1/me", &token).await, 401);
    assert_problem(&app.get("/v1/me", &key).await, 401);

    // A well-formed key naming another tenant, or with one character changed, is unknown.
    let forged = format!(
        "{}{}",
        &key[..key.len() - 32],
        uuid::Uuid::now_v7().simple()
    );
    assert_problem(&app.get("/v1/me", &forged).await, 401);
    let mut changed = key.clone().into_bytes();
    changed[10] = if changed[10] == b'a' { b'b' } else { b'a' };
    assert_problem(
        &app.get("/v1/me", &String::from_utf8(changed).unwrap())
            .await,
        401,
    );
}

async fn app_with(algorithm: JwtAlgorithm, public: &str, private: Option<&str>) -> TestApp {
    let mut config = test_config();
    config.jwt_algorithm = algorithm;
    config.jwt_secret = None;
    config.jwt_public_key_file = Some(key_file(public));
    config.jwt_private_key_file = private.map(key_file);
    TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await
}

#[tokio::test]
async fn asymmetric_algorithms_are_pinned() {
    let app = app_with(
        JwtAlgorithm::RS256,
        "rsa_public.pem",
        Some("rsa_private.pem"),
    )
    .await;
    let t = app.tenant().await;
    let c = claims(t.tenant, t.member);
    let sign_rs = |file: &str| {
        let pem = std::fs::read(key_file(file)).unwrap();
        encode(
            &Header::new(Algorithm::RS256),
            &c,
            &EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        app.get("/v1/me", &sign_rs("rsa_private.pem")).await.status,
        200,
        "an identity provider's token"
    );
    assert_eq!(
        app.get("/v1/me", &t.member_token).await.status,
        200,
        "the server's own token"
    );
    assert_problem(
        &app.get("/v1/me", &sign_rs("rsa_other_private.pem")).await,
        401,
    );
    // HS/RS confusion: an HMAC "signed" with the public key must not pass.
    let public_pem = std::fs::read(key_file("rsa_public.pem")).unwrap();
    assert_problem(&app.get("/v1/me", &hs256(&c, &public_pem)).await, 401);
    assert_problem(&app.get("/v1/me", &unsigned(&c)).await, 401);

    let ed = app_with(JwtAlgorithm::EdDSA, "ed_public.pem", Some("ed_private.pem")).await;
    let t = ed.tenant().await;
    let c = claims(t.tenant, t.member);
    let pem = std::fs::read(key_file("ed_private.pem")).unwrap();
    let token = encode(
        &Header::new(Algorithm::EdDSA),
        &c,
        &EncodingKey::from_ed_pem(&pem).unwrap(),
    )
    .unwrap();
    assert_eq!(ed.get("/v1/me", &token).await.status, 200);
    assert_eq!(ed.get("/v1/me", &t.member_token).await.status, 200);
    assert_problem(&ed.get("/v1/me", &sign_rs("rsa_private.pem")).await, 401);

    // With only an identity provider's public key, the server verifies tokens but issues
    // none: a login with the right password is refused, and says why.
    let verify_only = app_with(JwtAlgorithm::RS256, "rsa_public.pem", None).await;
    let created = verify_only
        .post(
            "/v1/tenants",
            crate::common::OPERATOR,
            json!({"slug": "idp-only", "name": "x", "admin_email": "a@idp.test", "admin_password": "a long enough password"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let login = verify_only
        .call(Method::POST, "/v1/auth/login", None, Some(json!({"tenant": "idp-only", "email": "a@idp.test", "password": "a long enough password"})))
        .await;
    assert_problem(&login, 403);
    assert!(
        login.body["detail"]
            .as_str()
            .unwrap()
            .contains("issues none")
    );
    let user: switchyard_core::UserId = created.body["admin"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tenant: switchyard_core::TenantId = created.body["id"].as_str().unwrap().parse().unwrap();
    let idp_token = {
        let pem = std::fs::read(key_file("rsa_private.pem")).unwrap();
        encode(
            &Header::new(Algorithm::RS256),
            &claims(tenant, user),
            &EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(verify_only.get("/v1/me", &idp_token).await.status, 200);
}

#[tokio::test]
async fn logins_fail_alike_and_are_limited() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let created = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": "ann@x.test", "role": "member", "password": "the right password"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let login = |tenant: &str, email: &str, password: &str| {
        let body = json!({"tenant": tenant, "email": email, "password": password});
        let app = app.clone();
        async move {
            app.call(Method::POST, "/v1/auth/login", None, Some(body))
                .await
        }
    };
    let ok = login(&t.slug, "ann@x.test", "the right password").await;
    assert_eq!(ok.status, 200);
    let wrong_password = login(&t.slug, "ann@x.test", "the wrong password").await;
    let unknown_email = login(&t.slug, "bob@x.test", "the right password").await;
    let unknown_tenant = login("no-such-tenant", "ann@x.test", "the right password").await;
    let no_password_user = login(
        &t.slug,
        &format!("member@{}.test", t.slug),
        "anything at all",
    )
    .await;
    assert_problem(&wrong_password, 401);
    for other in [&unknown_email, &unknown_tenant, &no_password_user] {
        assert_eq!(other.status, wrong_password.status);
        assert_eq!(
            other.raw, wrong_password.raw,
            "the same answer whatever was wrong"
        );
    }
    // 10 failures for one tenant and e-mail within 5 minutes: 429 until the window passes.
    for _ in 0..9 {
        assert_problem(
            &login(&t.slug, "ann@x.test", "the wrong password").await,
            401,
        );
    }
    let locked = login(&t.slug, "ann@x.test", "the right password").await;
    assert_problem(&locked, 429);
    let retry: u64 = locked
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Other e-mail addresses are not affected.
    let other = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": "cy@x.test", "role": "member", "password": "another password"}),
        )
        .await;
    assert_eq!(other.status, 201);
    assert_eq!(
        login(&t.slug, "cy@x.test", "another password").await.status,
        200
    );
}

#[tokio::test]
async fn single_tenant_mode_maps_tokens_without_a_tenant_to_the_default_one() {
    let mut config = test_config();
    config.enable_tenant_isolation = false;
    config.default_tenant_slug = "legacy".into();
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let tenant = app
        .store
        .find_tenant_by_slug(&app.operator, "legacy")
        .await
        .unwrap();
    let scope = app
        .operator
        .act_as(tenant.id, Default::default(), switchyard_core::Role::Admin);
    let user = app
        .store
        .create_user(
            &scope,
            switchyard_core::model::NewUser {
                email: "old@x.test".into(),
                display_name: None,
                role: switchyard_core::Role::Member,
                password_hash: None,
            },
        )
        .await
        .unwrap();
    let mut c = claims(tenant.id, user.id);
    c.as_object_mut().unwrap().remove("tid");
    let me = app.get("/v1/me", &hs256(&c, JWT_SECRET.as_bytes())).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["tenant"]["slug"], "legacy");
    // Isolation between tenants that exist still holds: another tenant's user is unknown here.
    let other = app.tenant().await;
    let mut foreign = claims(tenant.id, other.member);
    foreign.as_object_mut().unwrap().remove("tid");
    assert_problem(
        &app.get("/v1/me", &hs256(&foreign, JWT_SECRET.as_bytes()))
            .await,
        401,
    );
    assert_eq!(app.get("/v1/me", &other.member_token).await.status, 200);
}

/// The conversation read, the caller's list and a chat turn of an existing conversation
/// read their data together with the principal (one round trip on PostgreSQL): the
/// principal's checks still come first and decide alone, and what the read may see follows
/// the role as stored, not as the token was issued.
async fn first_reads_check_the_principal_first(app: TestApp) {
    let t = app.tenant().await;
    let other = app.tenant().await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "helper", "description": "Answers everything", "kind": "echo", "is_fallback": true}),
    )
    .await;
    let first = app
        .post(
            "/v1/chat",
            &t.member_token,
            json!({"message": "hello there"}),
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let conversation = first.body["conversation_id"].as_str().unwrap().to_string();
    let get = format!("/v1/conversations/{conversation}?limit=5");
    let follow_up = json!({"message": "and again", "conversation_id": conversation});

    // The owner reads, lists and continues; the admin reads it; a second member and
    // another tenant's admin find nothing.
    let read = app.get(&get, &t.member_token).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(
        read.body["messages"]["items"][0]["user_message"],
        "hello there"
    );
    let list = app.get("/v1/conversations", &t.member_token).await;
    assert_eq!(list.body["items"][0]["id"], conversation.as_str());
    let next = app
        .post("/v1/chat", &t.member_token, follow_up.clone())
        .await;
    assert_eq!(next.status, 200, "{:?}", next.body);
    assert_eq!(next.body["conversation_id"], conversation.as_str());
    assert_eq!(app.get(&get, &t.admin_token).await.status, 200);
    let second = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": "second@x.test", "role": "member"}),
        )
        .await;
    let second: switchyard_core::UserId = second.body["id"].as_str().unwrap().parse().unwrap();
    let second_token = app.token(t.tenant, second);
    assert_problem(&app.get(&get, &second_token).await, 404);
    assert_problem(
        &app.post("/v1/chat", &second_token, follow_up.clone()).await,
        404,
    );
    let empty = app.get("/v1/conversations", &second_token).await;
    assert_eq!(empty.body["items"], json!([]));
    assert_problem(&app.get(&get, &other.admin_token).await, 404);
    assert_problem(
        &app.post("/v1/chat", &other.member_token, follow_up.clone())
            .await,
        404,
    );

    // A token naming a user of this tenant under the other tenant is nobody.
    let crossed = app.token(other.tenant, t.member);
    assert_problem(&app.get(&get, &crossed).await, 401);
    assert_problem(&app.get("/v1/conversations", &crossed).await, 401);

    // The role is the stored one: demoted, the admin no longer sees the member's
    // conversation; promoted, the second member does.
    for (user, role, by) in [
        (second, "admin", &t.admin_token),
        (t.admin, "member", &second_token),
    ] {
        let changed = app
            .patch(&format!("/v1/users/{user}"), by, json!({"role": role}))
            .await;
        assert_eq!(changed.status, 200, "{:?}", changed.body);
    }
    assert_problem(&app.get(&get, &t.admin_token).await, 404);
    assert_eq!(app.get(&get, &second_token).await.status, 200);

    // Disabled, suspended, deleted: refused before anything is read.
    let owner = t.member;
    app.patch(
        &format!("/v1/users/{owner}"),
        &second_token,
        json!({"status": "disabled"}),
    )
    .await;
    assert_problem(&app.get(&get, &t.member_token).await, 403);
    assert_problem(&app.get("/v1/conversations", &t.member_token).await, 403);
    assert_problem(
        &app.post("/v1/chat", &t.member_token, follow_up.clone())
            .await,
        403,
    );
    app.patch(
        &format!("/v1/users/{owner}"),
        &second_token,
        json!({"status": "active"}),
    )
    .await;
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        crate::common::OPERATOR,
        json!({"status": "suspended"}),
    )
    .await;
    assert_problem(&app.get(&get, &t.member_token).await, 403);
    assert_problem(
        &app.post("/v1/chat", &t.member_token, follow_up.clone())
            .await,
        403,
    );
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        crate::common::OPERATOR,
        json!({"status": "active"}),
    )
    .await;
    assert_eq!(app.get(&get, &t.member_token).await.status, 200);
    let turns = app.get(&get, &t.member_token).await;
    assert_eq!(
        turns.body["messages"]["items"].as_array().unwrap().len(),
        2,
        "the refused turns wrote nothing"
    );

    // A refused parameter is answered after the credential: a bad token is a 401 whatever
    // the parameters, a good one hears what is wrong with them.
    let bad = format!("/v1/conversations/{conversation}?cursor=nope");
    assert_problem(&app.get(&bad, "not-a-token").await, 401);
    assert_problem(&app.get(&bad, &t.member_token).await, 400);
    assert_problem(
        &app.get("/v1/conversations/not-a-uuid", &crossed).await,
        401,
    );
    assert_problem(&app.get("/v1/conversations?limit=0", &crossed).await, 401);
    assert_problem(
        &app.get("/v1/conversations?limit=0", &t.member_token).await,
        400,
    );
    assert_problem(
        &app.post("/v1/chat", &crossed, json!({"message": ""})).await,
        401,
    );

    // A cursor whose time no database can hold is a refused parameter too.
    let far = URL_SAFE_NO_PAD.encode(format!("-200000000000000000.{conversation}"));
    let far = format!("/v1/conversations/{conversation}?cursor={far}");
    assert_problem(&app.get(&far, &t.member_token).await, 400);

    app.delete(&format!("/v1/users/{owner}"), &second_token)
        .await;
    assert_problem(&app.get(&far, &t.member_token).await, 401);
    assert_problem(&app.get(&get, &t.member_token).await, 401);
    assert_problem(&app.post("/v1/chat", &t.member_token, follow_up).await, 401);
}

crate::common::on_both_backends!(first_reads_check_the_principal_first);

/// Logins from one client address are limited before any password is checked: after 50
/// failures in 5 minutes or its attempts a minute (60 here), that address gets `429` with
/// `Retry-After`; another address is not held back.
#[tokio::test]
async fn logins_are_limited_per_client_address() {
    let config = switchyard_server::Config {
        login_attempts_per_address: 60,
        ..crate::common::test_config()
    };
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    let created = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": "ann@x.test", "role": "member", "password": "the right password"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let login = |from: [u8; 4], email: String, password: &'static str| {
        let app = app.clone();
        let body = json!({"tenant": t.slug, "email": email, "password": password});
        async move {
            let mut request = axum::http::Request::post("/v1/auth/login")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let peer = std::net::SocketAddr::from((from, 40_000));
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.send(request).await
        }
    };
    // 50 failures from one address, over as many made-up accounts (no account lockout
    // helps): the address is held back, even with the right password.
    let guesser = [203, 0, 113, 7];
    for n in 0..50 {
        let resp = login(guesser, format!("guess{n}@x.test"), "a wrong password").await;
        assert_problem(&resp, 401);
    }
    let held = login(guesser, "ann@x.test".into(), "the right password").await;
    assert_problem(&held, 429);
    assert!(held.headers.contains_key("retry-after"));
    // 60 attempts a minute from one address, even good ones: the 61st waits.
    let flood = [203, 0, 113, 8];
    for _ in 0..60 {
        let resp = login(flood, "ann@x.test".into(), "the right password").await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
    }
    let held = login(flood, "ann@x.test".into(), "the right password").await;
    assert_problem(&held, 429);
    let wait: u64 = held.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    assert!(
        held.body["detail"]
            .as_str()
            .unwrap()
            .contains("from this address")
    );
    let elsewhere = login([198, 51, 100, 9], "ann@x.test".into(), "the right password").await;
    assert_eq!(elsewhere.status, 200, "{:?}", elsewhere.body);
}
