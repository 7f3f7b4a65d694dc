//! Test helpers: the real router called without a socket, and JSON in/out.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use callroom_server::{app, AppState, Config};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub struct TestApp {
    pub state: AppState,
    router: Router,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    /// The stable error code of an error reply.
    pub fn code(&self) -> &str {
        self.json["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

pub fn test_config() -> Config {
    let mut config = Config::for_tests();
    config.demo_dir = std::env::temp_dir().join("callroom-no-demo");
    config.pkg_dir = std::env::temp_dir().join("callroom-no-pkg");
    config
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(change: impl FnOnce(&mut Config)) -> Self {
        Self::started_at(callroom_server::state::now_ms(), change)
    }

    /// A server whose process started at `started_ms`.
    pub fn started_at(started_ms: i64, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        change(&mut config);
        let state = AppState::started_at(config, started_ms).expect("test server starts");
        Self {
            router: app(state.clone()),
            state,
        }
    }

    pub async fn request(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "non-JSON reply {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Body::from(body)
            }
            None => Body::empty(),
        };
        self.request(builder.body(body).unwrap()).await
    }

    pub async fn post(&self, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, "/signaling", token, Some(body.to_string()))
            .await
    }

    /// Joins and returns the join response; panics if the join fails.
    pub async fn join(&self, room: &str, role: &str, name: &str) -> Value {
        let reply = self
            .post(
                None,
                json!({"type": "join", "room": room, "role": role, "name": name}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "join failed: {}", reply.json);
        reply.json
    }

    pub async fn relay(&self, token: &str, to: &str, kind: &str, payload: Value) -> Reply {
        self.post(
            Some(token),
            json!({"type": kind, "to": to, "payload": payload}),
        )
        .await
    }

    pub async fn poll(&self, token: &str, since: u64, wait_ms: u64) -> Reply {
        self.call(
            Method::GET,
            &format!("/messages?since={since}&wait={wait_ms}"),
            Some(token),
            None,
        )
        .await
    }

    /// Polls without waiting and returns the messages; panics on an error reply.
    pub async fn messages(&self, token: &str, since: u64) -> Vec<Value> {
        let reply = self.poll(token, since, 0).await;
        assert_eq!(reply.status, StatusCode::OK, "poll failed: {}", reply.json);
        reply.json["messages"].as_array().unwrap().clone()
    }
}

pub fn token(join: &Value) -> &str {
    join["token"].as_str().unwrap()
}

pub fn peer_id(join: &Value) -> &str {
    join["peerId"].as_str().unwrap()
}

pub fn types(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect()
}
