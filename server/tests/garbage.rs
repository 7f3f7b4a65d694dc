//! No input makes the server panic or answer with anything but a JSON error: thousands of
//! generated bodies, queries and headers go through the real router.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::TestApp;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"type\"",
    "\"join\"",
    "\"leave\"",
    "\"offer\"",
    "\"to\"",
    "\"payload\"",
    "\"room\"",
    "\"role\"",
    "\"peer\"",
    "\"host\"",
    "\"name\"",
    "\"ticket\"",
    "null",
    "true",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"p0123456789abcdef\"",
    "\"../\"",
    "\u{1F600}",
    "\"",
    "\\",
    " ",
    "0",
];

#[tokio::test]
async fn generated_junk_gets_json_errors_and_never_a_panic() {
    let app = TestApp::with(|c| c.max_body = 4096);
    let joined = app.join("r", "peer", "").await;
    let token = common::token(&joined).to_owned();
    let mut gen = Gen(0x5eed_cafe_f00d_d00d);
    for round in 0..2000 {
        let len = 1 + gen.next() % 24;
        let body: String = (0..len).map(|_| gen.pick(FRAGMENTS)).collect();
        let auth = match round % 3 {
            0 => None,
            1 => Some(token.clone()),
            _ => Some(gen.pick(FRAGMENTS).to_owned()),
        };
        let reply = app
            .call(
                Method::POST,
                "/signaling",
                auth.as_deref(),
                Some(body.clone()),
            )
            .await;
        if !reply.status.is_success() {
            assert!(
                reply.json["error"]["code"].is_string(),
                "round {round}: {body:?} gave {} {}",
                reply.status,
                reply.json
            );
        }
        let query: String = (0..(gen.next() % 4))
            .map(|_| gen.pick(&["since=", "wait=", "&", "1", "-", "%ff", "x"]))
            .collect();
        let reply = app
            .call(
                Method::GET,
                &format!("/messages?{query}"),
                Some(&token),
                None,
            )
            .await;
        assert!(
            reply.status.is_success() || reply.json["error"]["code"].is_string(),
            "{query:?}"
        );
    }
}

#[tokio::test]
async fn non_utf8_and_binary_bodies_are_invalid_json() {
    let app = TestApp::new();
    let request = Request::post("/signaling")
        .body(Body::from(vec![0xff, 0xfe, 0x00, 0x7b]))
        .unwrap();
    let reply = app.request(request).await;
    assert_eq!(reply.code(), "invalid_json");
}
