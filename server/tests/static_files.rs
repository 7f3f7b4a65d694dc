//! The server serves the demo at `/`, the package at `/pkg/`, and answers `/healthz`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use callroom_server::{app, Config};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn fixture() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&demo).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(demo.join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(pkg.join("callroom.js"), "export const x = 1;").unwrap();
    let config = Config::for_tests(demo, pkg);
    (dir, config)
}

async fn get(config: &Config, uri: &str) -> (StatusCode, String, String) {
    let response = app(config)
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
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
    let (_dir, config) = fixture();
    let (status, content_type, body) = get(&config, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(body, "<h1>demo</h1>");
}

#[tokio::test]
async fn pkg_serves_the_package_as_javascript() {
    let (_dir, config) = fixture();
    let (status, content_type, body) = get(&config, "/pkg/callroom.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.contains("javascript"), "{content_type}");
    assert_eq!(body, "export const x = 1;");
}

#[tokio::test]
async fn healthz_reports_ok_and_version() {
    let (_dir, config) = fixture();
    let (status, _, body) = get(&config, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn paths_cannot_escape_the_served_folders() {
    let (_dir, config) = fixture();
    let (status, _, _) = get(&config, "/pkg/../demo/index.html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&config, "/..%2f..%2fetc%2fpasswd").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn missing_files_are_404() {
    let (_dir, config) = fixture();
    let (status, _, _) = get(&config, "/nope.html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
