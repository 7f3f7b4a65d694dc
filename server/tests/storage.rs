//! Storage budgets: what one recipient may hold, what the database may hold, and the space
//! given back after a flood. Counted from the database, so they hold for recipients that never
//! polled and across restarts.

mod common;

use axum::http::StatusCode;
use common::{peer_id, token, TestApp};
use serde_json::json;

/// `n` characters of payload.
fn padding(n: usize) -> serde_json::Value {
    json!({ "pad": "x".repeat(n) })
}

/// Polls until nothing is left; the last poll acknowledges everything.
async fn read_all(app: &TestApp, token: &str) {
    let mut since = 0;
    loop {
        let seen = app.messages(token, since).await;
        let Some(last) = seen.last() else { return };
        since = last["seq"].as_u64().unwrap();
    }
}

#[tokio::test]
async fn a_recipient_that_never_polled_gets_at_most_its_backlog_of_messages() {
    let app = TestApp::with(|c| c.max_backlog = 3);
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    // b joined (one `peer-joined` for a is queued) and never polls.
    for _ in 0..3 {
        let reply = app
            .relay(token(&a), peer_id(&b), "candidate", json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = app
        .relay(token(&a), peer_id(&b), "candidate", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "recipient_backlog")
    );
    // Others still get messages.
    let reply = app
        .relay(token(&b), peer_id(&a), "candidate", json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_recipients_backlog_is_capped_in_bytes_too() {
    let app = TestApp::with(|c| c.max_backlog_bytes = 10_000);
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    for _ in 0..2 {
        let reply = app
            .relay(token(&a), peer_id(&b), "offer", padding(4_000))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = app
        .relay(token(&a), peer_id(&b), "offer", padding(4_000))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "recipient_backlog"),
        "8 KB waiting, 4 KB more would pass 10 KB"
    );
    // Read (and acknowledged): room again.
    read_all(&app, token(&b)).await;
    let reply = app
        .relay(token(&a), peer_id(&b), "offer", padding(4_000))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_backlog_cap_holds_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db").to_string_lossy().into_owned();
    let config = |c: &mut callroom_server::Config| {
        c.db = db.clone();
        c.max_backlog = 3;
    };
    let (a, b) = {
        let app = TestApp::with(config);
        let a = app.join("r", "peer", "").await;
        let b = app.join("r", "peer", "").await;
        for _ in 0..3 {
            let reply = app
                .relay(token(&a), peer_id(&b), "candidate", json!({}))
                .await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        (a, b)
    };
    let app = TestApp::with(config);
    let reply = app
        .relay(token(&a), peer_id(&b), "candidate", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "recipient_backlog")
    );
}

#[tokio::test]
async fn past_the_storage_budget_relays_are_refused_and_everything_else_works() {
    let app = TestApp::with(|c| {
        c.max_storage = 256 * 1024;
        c.max_backlog_bytes = 64 * 1024 * 1024;
        c.max_backlog = 100_000;
    });
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    let mut refused = None;
    for i in 0..200 {
        let reply = app
            .relay(token(&a), peer_id(&b), "offer", padding(8_000))
            .await;
        if reply.status != StatusCode::OK {
            refused = Some((i, reply));
            break;
        }
    }
    let (i, reply) = refused.expect("the budget stops the flood");
    assert!(i >= 10, "a fair share went through first ({i})");
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::INSUFFICIENT_STORAGE, "storage_full")
    );
    assert!(reply.headers.contains_key("retry-after"));
    // Joins and polls still work, and reading frees the space for relays again.
    app.join("r", "peer", "").await;
    read_all(&app, token(&b)).await;
    app.state.sweep(callroom_server::state::now_ms()).unwrap();
    let reply = app
        .relay(token(&a), peer_id(&b), "offer", padding(8_000))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
}

#[tokio::test]
async fn the_database_file_shrinks_back_after_a_flood_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let app = TestApp::with(|c| {
        c.db = path.to_string_lossy().into_owned();
        c.relay_burst = 1_000.0;
        c.max_backlog = 100_000;
        c.max_backlog_bytes = 64 * 1024 * 1024;
    });
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    for _ in 0..300 {
        let reply = app
            .relay(token(&a), peer_id(&b), "offer", padding(30_000))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    app.state.store.checkpoint().unwrap();
    let flooded = std::fs::metadata(&path).unwrap().len();
    assert!(flooded > 8_000_000, "{flooded}");
    // b reads everything; the sweep deletes it; checkpoints give the pages back.
    read_all(&app, token(&b)).await;
    app.state.sweep(callroom_server::state::now_ms()).unwrap();
    for _ in 0..4 {
        app.state.store.checkpoint().unwrap();
    }
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after < flooded / 4,
        "the file went from {flooded} to {after} bytes"
    );
}
