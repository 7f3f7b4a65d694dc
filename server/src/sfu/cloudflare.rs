//! Cloudflare's Calls API as a backend: the same requests, sent with the app secret.

use std::time::Duration;

use callroom_sfu::calls::ErrorResponse;
use callroom_sfu::{codes, CallsError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A client of `{base}/apps/{appId}/…`.
pub struct Client {
    http: reqwest::Client,
    base: String,
    secret: String,
}

impl Client {
    /// A client for `base` (e.g. `https://rtc.live.cloudflare.com/v1`).
    pub fn new(base: &str, app_id: &str, secret: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: format!("{}/apps/{app_id}", base.trim_end_matches('/')),
            secret: secret.to_owned(),
        })
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallsError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallsError> {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallsError> {
        self.send(self.http.get(self.url(path))).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, CallsError> {
        let response = request
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(err = %e, "Cloudflare Calls unreachable");
                CallsError::retryable("the Calls API could not be reached")
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|_| CallsError::retryable("the Calls API answer was cut short"))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                tracing::warn!(err = %e, "Cloudflare Calls answered an unexpected shape");
                CallsError::internal("the Calls API answered an unexpected shape")
            });
        }
        if matches!(status.as_u16(), 401 | 403) {
            // Our app id or secret is wrong: the server's fault, not the caller's token.
            tracing::error!(%status, "Cloudflare Calls refused this server's credentials");
            return Err(CallsError {
                status: 502,
                code: codes::INTERNAL_ERROR,
                description: "the Calls API refused this server's credentials".into(),
            });
        }
        let error: Option<ErrorResponse> = serde_json::from_slice(&bytes).ok();
        Err(upstream_error(status.as_u16(), error))
    }
}

/// Cloudflare's error, with its status and code when the code is one we know (the code is a
/// `&'static str`, so an unknown one becomes `internal_error` with the original in the text).
fn upstream_error(status: u16, error: Option<ErrorResponse>) -> CallsError {
    const KNOWN: [&str; 11] = [
        codes::DECODING_ERROR,
        codes::INVALID_PARAMS,
        codes::SESSION_ERROR,
        codes::NOT_FOUND_TRACK_ERROR,
        codes::EMPTY_TRACK_ERROR,
        codes::REPEATED_LOCAL_TRACK_ERROR,
        codes::UPDATE_TRACK_ERROR,
        codes::CLOSE_TRACK_ERROR,
        codes::INVALID_SESSION_DESCRIPTION,
        codes::RETRYABLE_TRANSIENT_ERROR,
        codes::INTERNAL_ERROR,
    ];
    let (code, description) = match error {
        Some(e) => match KNOWN.iter().find(|k| **k == e.error_code) {
            Some(code) => (*code, e.error_description),
            None => (
                codes::INTERNAL_ERROR,
                format!("{}: {}", e.error_code, e.error_description),
            ),
        },
        None => (
            codes::INTERNAL_ERROR,
            format!("the Calls API answered {status}"),
        ),
    };
    CallsError {
        status,
        code,
        description,
    }
}
