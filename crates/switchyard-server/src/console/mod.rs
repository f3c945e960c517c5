//! The web console (docs/console.md): a small single-page app served at `/`, its files
//! (plain HTML, CSS and JavaScript modules, no build step) embedded in the binary.
//!
//! The console talks to the v1 API like any other client, with the token of a login; these
//! routes serve only static files, need no state and are not part of the OpenAPI document.
//! Every answer carries a strict Content-Security-Policy (no inline script or style, nothing
//! from another origin), so text that a user, an agent or another tenant wrote can never
//! run as code even if it were inserted as markup (the scripts insert text only).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The console's policy: its own files only; the API on the same origin; no framing, no
/// plugins, no `<base>` tricks, forms only to itself.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// Its name under `/console/` (`index.html` is served at `/`).
    name: &'static str,
    /// Its media type.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// The files, embedded at compile time.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("style.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("icon.svg"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_bytes!("app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_bytes!("api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        body: include_bytes!("dom.js"),
    },
    Asset {
        name: "routing.js",
        content_type: JS,
        body: include_bytes!("routing.js"),
    },
    Asset {
        name: "chat.js",
        content_type: JS,
        body: include_bytes!("chat.js"),
    },
    Asset {
        name: "history.js",
        content_type: JS,
        body: include_bytes!("history.js"),
    },
    Asset {
        name: "agents.js",
        content_type: JS,
        body: include_bytes!("agents.js"),
    },
    Asset {
        name: "analytics.js",
        content_type: JS,
        body: include_bytes!("analytics.js"),
    },
    Asset {
        name: "charts.js",
        content_type: JS,
        body: include_bytes!("charts.js"),
    },
    Asset {
        name: "lab.js",
        content_type: JS,
        body: include_bytes!("lab.js"),
    },
    Asset {
        name: "markdown.js",
        content_type: JS,
        body: include_bytes!("markdown.js"),
    },
    Asset {
        name: "users.js",
        content_type: JS,
        body: include_bytes!("users.js"),
    },
];

/// Each file's entity tag (a hash of its bytes), in the order of [`ASSETS`]. The files only
/// change with the binary, and their names carry no version, so browsers revalidate every
/// time (`no-cache`) and an unchanged file costs a `304` with no body.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            let tag = format!("\"{}\"", hex::encode(&digest[..12]));
            HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        })
        .collect()
});

/// The console's routes: `/` (the page) and `/console/{file}` (its scripts, style, icon).
/// Stateless, so it merges into the service's router whatever its state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(position) = ASSETS.iter().position(|a| a.name == name) else {
        return ApiError::not_found().into_response();
    };
    let asset = &ASSETS[position];
    let etag = ETAGS
        .get(position)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("\"0\""));
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/").as_bytes() == etag.as_bytes())
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, etag);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(path: &str, if_none_match: Option<&HeaderValue>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(IF_NONE_MATCH, tag);
        }
        let request = request.body(Body::empty()).unwrap_or_default();
        match router::<()>().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    fn header<'a>(response: &'a Response, name: &axum::http::HeaderName) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_their_types_and_policy() {
        for (path, kind) in [
            ("/", "text/html; charset=utf-8"),
            ("/console/app.js", JS),
            ("/console/style.css", "text/css; charset=utf-8"),
            ("/console/icon.svg", "image/svg+xml"),
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, &CONTENT_TYPE), kind, "{path}");
            assert_eq!(
                header(&response, &CONTENT_SECURITY_POLICY),
                CONTENT_SECURITY_POLICY_VALUE
            );
            assert_eq!(header(&response, &X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert_eq!(header(&response, &CACHE_CONTROL), "no-cache");
            assert!(header(&response, &ETAG).starts_with('"'), "{path}");
        }
        assert!(CONTENT_SECURITY_POLICY_VALUE.starts_with("default-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY_VALUE.contains("unsafe"));
    }

    #[tokio::test]
    async fn an_unchanged_file_is_not_sent_again() {
        let first = get("/console/app.js", None).await;
        let tag = first.headers().get(ETAG).cloned();
        let again = get("/console/app.js", tag.as_ref()).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let other = get("/console/chat.js", tag.as_ref()).await;
        assert_eq!(
            other.status(),
            StatusCode::OK,
            "another file's tag does not match"
        );
    }

    #[tokio::test]
    async fn an_unknown_file_is_the_usual_not_found_problem() {
        for path in [
            "/console/nope.js",
            "/console/..%2Fmod.rs",
            "/console/index.html.bak",
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(header(&response, &CONTENT_TYPE), "application/problem+json");
        }
    }

    #[test]
    fn every_module_the_scripts_import_is_embedded() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap_or_default();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(start) = line.find("'./") else {
                    continue;
                };
                let rest = &line[start + 3..];
                let name = &rest[..rest.find('\'').unwrap_or(rest.len())];
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {name}, which is not embedded",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn no_script_writes_html() {
        // The scripts insert text only; markup from data would be a cross-site scripting
        // hole (the CSP would stop inline scripts, not injected markup).
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap_or_default();
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", asset.name);
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap_or_default();
        assert!(!page.contains("<script>"), "inline script in index.html");
        assert!(!page.contains("<style"), "inline style in index.html");
        assert!(!page.contains(" style="), "style attribute in index.html");
        let handler = page.match_indices(" on").any(|(at, _)| {
            let name: String = page[at + 3..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            !name.is_empty() && page[at + 3 + name.len()..].starts_with('=')
        });
        assert!(!handler, "event handler attribute in index.html");
    }
}
