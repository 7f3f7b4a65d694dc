//! The server serves the demo at `/`, the package at `/pkg/`, and answers `/healthz`.

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;

fn fixture() -> (tempfile::TempDir, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&demo).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(demo.join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(pkg.join("callroom.js"), "export const x = 1;").unwrap();
    let app = TestApp::with(|c| {
        c.demo_dir = demo;
        c.pkg_dir = pkg;
    });
    (dir, app)
}

async fn get_text(app: &TestApp, uri: &str) -> (StatusCode, String, String) {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let router = callroom_server::app(app.state.clone());
    let response = router
        .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn root_serves_the_demo_index() {
    let (_dir, app) = fixture();
    let (status, content_type, body) = get_text(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(body, "<h1>demo</h1>");
}

#[tokio::test]
async fn pkg_serves_the_package_as_javascript() {
    let (_dir, app) = fixture();
    let (status, content_type, body) = get_text(&app, "/pkg/callroom.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.contains("javascript"), "{content_type}");
    assert_eq!(body, "export const x = 1;");
}

#[tokio::test]
async fn healthz_reports_ok_and_version() {
    let (_dir, app) = fixture();
    let reply = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json["status"], "ok");
    assert_eq!(reply.json["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn livez_answers_ok_as_an_api_path() {
    let (_dir, app) = fixture();
    let reply = app.call(Method::GET, "/livez", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json["status"], "ok");
    let reply = app.call(Method::POST, "/livez", None, None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        "an API path: JSON errors, not the static file service"
    );
}

#[tokio::test]
async fn paths_cannot_escape_the_served_folders() {
    let (_dir, app) = fixture();
    let (status, _, _) = get_text(&app, "/pkg/../demo/index.html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get_text(&app, "/..%2f..%2fetc%2fpasswd").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn missing_files_are_404() {
    let (_dir, app) = fixture();
    let (status, _, _) = get_text(&app, "/nope.html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_react_demos_build_is_served_and_its_node_modules_and_dot_files_are_not() {
    let (dir, app) = fixture();
    let react = dir.path().join("demo/react");
    std::fs::create_dir_all(react.join("dist")).unwrap();
    std::fs::create_dir_all(react.join("node_modules/react")).unwrap();
    std::fs::write(react.join("dist/index.html"), "<h1>react demo</h1>").unwrap();
    std::fs::write(react.join("node_modules/react/index.js"), "secret").unwrap();
    std::fs::write(react.join(".env"), "TOKEN=1").unwrap();
    let (status, _, body) = get_text(&app, "/react/dist/index.html").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "<h1>react demo</h1>")
    );
    for hidden in [
        "/react/node_modules/react/index.js",
        "/react/%6eode_modules/react/index.js",
        "/react/.env",
    ] {
        let (status, _, body) = get_text(&app, hidden).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{hidden}");
        assert!(
            !body.contains("secret") && !body.contains("TOKEN"),
            "{hidden}"
        );
    }
}
