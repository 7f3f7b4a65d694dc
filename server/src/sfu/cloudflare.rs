//! Cloudflare's Calls API as a backend: the same requests, sent with the app secret.

use std::time::Duration;

use callroom_sfu::CallsError;
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
            tracing::error!(%status, "Cloudflare Calls refused this server's credentials");
        }
        let (status, code, description) =
            callroom_rules::sfu::upstream_failure(status.as_u16(), &bytes);
        Err(CallsError {
            status,
            code,
            description,
        })
    }
}
