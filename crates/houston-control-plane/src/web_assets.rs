//! Serves the web app (the Vite build output in `web/dist`) from a folder.
//!
//! - `/assets/*` are Vite's content-hashed files: cached for a year as `immutable`, and a
//!   missing one is a 404 (never `index.html`, which a browser would try to run as script).
//! - Other existing files in the folder (`favicon.svg`) are served with `no-cache`.
//! - Every other `GET` is a client-side route and gets `index.html` with `no-cache`, so a new
//!   deployment is picked up on the next page load. A missing file whose last path segment
//!   has an extension stays a 404.
//! - `/v1/…` and `/.well-known/…` never fall back to the app: an unknown API path gets the
//!   JSON error body.
//! - When the folder has no `index.html`, pages get a 503 page with the command that builds the app.
//!   The check runs per request, so building the app does not need a server restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use houston_protocol::error::ErrorBody;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// `Cache-Control` for content-hashed assets: the name changes whenever the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for `index.html` and unhashed files: revalidate on every load.
const NO_CACHE: &str = "no-cache";

/// Content-Security-Policy of the app's pages. Scripts come only from this origin, so text a
/// model writes can never run as script. `connect-src https:` lets the sign-in page reach a
/// configured OIDC issuer's token endpoint. Images are limited to this origin and `data:` so
/// an answer cannot make the browser send data to another host.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' https:; \
    font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Path prefixes that belong to the API, so a request for them never gets `index.html`.
const API_PREFIXES: [&str; 2] = ["/v1/", "/.well-known/"];

#[derive(Debug)]
struct WebApp {
    dir: PathBuf,
}

/// Builds the router that serves the web app from `dir`, the folder containing `index.html`
/// and `assets/` (the Vite build output). Mount it as the fallback of the API router.
pub fn router(dir: impl Into<PathBuf>) -> Router {
    let app = Arc::new(WebApp { dir: dir.into() });
    Router::new()
        .route("/assets/{*path}", axum::routing::get(serve_asset))
        .fallback(serve_page)
        .with_state(app)
}

/// Serves one hashed file from `assets/`.
async fn serve_asset(State(app): State<Arc<WebApp>>, request: Request) -> Response {
    let response = serve_dir_file(&app.dir, request).await;
    let cache = if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        IMMUTABLE
    } else {
        NO_CACHE
    };
    with_cache_control(response, cache)
}

/// Serves a top-level file, or `index.html` for a client-side route.
async fn serve_page(State(app): State<Arc<WebApp>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/v1" || API_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
        let body = ErrorBody::new("not_found", format!("no API route matches {path}"));
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let index = app.dir.join("index.html");
    if !tokio::fs::try_exists(&index).await.unwrap_or(false) {
        return missing_build_page(&app.dir);
    }

    if path != "/" {
        let (parts, body) = request.into_parts();
        let probe = Request::from_parts(parts.clone(), Body::empty());
        let response = serve_dir_file(&app.dir, probe).await;
        if response.status() != StatusCode::NOT_FOUND || has_extension(&path) {
            return with_cache_control(response, NO_CACHE);
        }
        return serve_index(&index, Request::from_parts(parts, body)).await;
    }
    serve_index(&index, request).await
}

/// Returns true when the last path segment looks like a file name (`logo.png`), which makes a
/// missing path a 404 instead of a client-side route.
fn has_extension(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|segment| segment.contains('.'))
}

async fn serve_dir_file(dir: &Path, request: Request) -> Response {
    // ServeDir rejects `..` segments and other paths that would leave `dir`.
    let serve = ServeDir::new(dir).append_index_html_on_directories(false);
    match serve.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(infallible) => match infallible {},
    }
}

async fn serve_index(index: &Path, request: Request) -> Response {
    let response = match ServeFile::new(index).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(infallible) => match infallible {},
    };
    let mut response = with_cache_control(response, NO_CACHE);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn with_cache_control(mut response: Response, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

/// Returns the 503 page shown when the app has not been built into `dir`.
fn missing_build_page(dir: &Path) -> Response {
    let folder = html_escape(&dir.display().to_string());
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Houston: web app not built</title></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto\">\
         <h1>The web app is not built</h1>\
         <p>Houston serves the web app from <code>{folder}</code>, but that folder has no \
         <code>index.html</code>.</p>\
         <p>Build it from the repository root, then reload this page:</p>\
         <pre>npm --prefix web ci &amp;&amp; npm --prefix web run build</pre>\
         <p>The API under <code>/v1/</code> works without it.</p></body></html>\n"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    fn built_app() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><div id=root></div>").unwrap();
        std::fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets/index-AbC123.js"), "console.log(1)").unwrap();
        dir
    }

    async fn get(router: Router, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn cache_control(headers: &axum::http::HeaderMap) -> &str {
        headers.get(header::CACHE_CONTROL).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn root_serves_index_without_cache() {
        let dir = built_app();
        let (status, headers, body) = get(router(dir.path()), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("id=root"));
        assert_eq!(cache_control(&headers), NO_CACHE);
        assert!(headers.get(header::CONTENT_SECURITY_POLICY).is_some());
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "text/html");
    }

    #[tokio::test]
    async fn client_route_falls_back_to_index() {
        let dir = built_app();
        for path in ["/agents/hr", "/agents/hr/sessions/s-1", "/admin/members"] {
            let (status, headers, body) = get(router(dir.path()), path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.contains("id=root"), "{path}");
            assert_eq!(cache_control(&headers), NO_CACHE, "{path}");
        }
    }

    #[tokio::test]
    async fn hashed_asset_is_immutable() {
        let dir = built_app();
        let (status, headers, body) = get(router(dir.path()), "/assets/index-AbC123.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "console.log(1)");
        assert_eq!(cache_control(&headers), IMMUTABLE);
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "text/javascript");
    }

    #[tokio::test]
    async fn missing_asset_is_not_found() {
        let dir = built_app();
        let (status, headers, body) = get(router(dir.path()), "/assets/index-old.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!body.contains("id=root"));
        assert_eq!(cache_control(&headers), NO_CACHE);
    }

    #[tokio::test]
    async fn top_level_file_is_served() {
        let dir = built_app();
        let (status, headers, body) = get(router(dir.path()), "/favicon.svg").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "<svg/>");
        assert_eq!(cache_control(&headers), NO_CACHE);
    }

    #[tokio::test]
    async fn missing_file_with_extension_is_not_found() {
        let dir = built_app();
        let (status, _, body) = get(router(dir.path()), "/robots.txt").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!body.contains("id=root"));
    }

    #[tokio::test]
    async fn unknown_api_path_gets_json_error() {
        let dir = built_app();
        for path in ["/v1/nope", "/.well-known/nope"] {
            let (status, headers, body) = get(router(dir.path()), path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/json");
            let error: ErrorBody = serde_json::from_str(&body).unwrap();
            assert_eq!(error.error.code, "not_found");
        }
    }

    #[tokio::test]
    async fn missing_build_explains_fix() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("dist");
        let (status, headers, body) = get(router(&missing), "/agents/hr").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(cache_control(&headers), "no-store");
        assert!(body.contains("npm --prefix web ci"));
        assert!(body.contains(&missing.display().to_string()));
    }

    #[tokio::test]
    async fn parent_path_does_not_escape_folder() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret.txt"), "SECRET").unwrap();
        let dist = outer.path().join("dist");
        std::fs::create_dir(&dist).unwrap();
        std::fs::write(dist.join("index.html"), "<div id=root>").unwrap();
        for path in ["/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"] {
            let (_, _, body) = get(router(&dist), path).await;
            assert!(!body.contains("SECRET"), "{path}");
        }
    }

    #[tokio::test]
    async fn post_to_page_is_rejected() {
        let dir = built_app();
        let request = Request::post("/agents/hr").body(Body::empty()).unwrap();
        let response = router(dir.path()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
