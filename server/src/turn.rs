//! ICE servers for clients: a static list, TURN REST credentials (coturn `use-auth-secret`),
//! or credentials minted by Cloudflare's TURN API. Secrets stay here; clients get only
//! time-limited credentials, and only with a valid peer token.

use std::time::{Duration, Instant};

use base64::Engine;
use callroom_protocol::{IceServer, TurnCredentials};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::config::Config;
use crate::error::AppError;

/// The provider's last answer (or failure) and when it came.
type Fetched = (Instant, Result<Vec<IceServer>, String>);

/// How long a failed call to the TURN provider is remembered before trying again.
const FAILURE_BACKOFF: Duration = Duration::from_secs(30);

/// Where TURN credentials come from.
pub struct Turn {
    static_servers: Vec<IceServer>,
    ttl: Duration,
    mode: Mode,
}

enum Mode {
    StaticOnly,
    Rest {
        secret: String,
        urls: Vec<String>,
    },
    Cloudflare {
        url: String,
        api_token: String,
        client: reqwest::Client,
        /// Credentials are shared until half their lifetime is used, so joins do not each
        /// cost a call to Cloudflare.
        /// A failure is remembered for [`FAILURE_BACKOFF`], so while the provider is down
        /// joins do not each wait for its timeout (and one fetch serves all waiters).
        cache: tokio::sync::Mutex<Option<Fetched>>,
    },
}

impl Turn {
    /// Reads the TURN flags; errors describe the misconfiguration.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let static_servers = match &config.ice_servers {
            Some(json) => serde_json::from_str::<Vec<IceServer>>(json).map_err(|e| {
                format!(
                    "--ice-servers must be a JSON array of {{urls, username?, credential?}}: {e}"
                )
            })?,
            None => Vec::new(),
        };
        let mode = match (
            &config.turn_secret,
            &config.cf_turn_key_id,
            &config.cf_turn_api_token,
        ) {
            (Some(_), Some(_), _) => {
                return Err("choose one of --turn-secret and --cf-turn-key-id".into())
            }
            (Some(secret), None, _) => {
                if config.turn_urls.is_empty() {
                    return Err("--turn-secret needs at least one --turn-url".into());
                }
                Mode::Rest {
                    secret: secret.clone(),
                    urls: config.turn_urls.clone(),
                }
            }
            (None, Some(key_id), Some(api_token)) => Mode::Cloudflare {
                url: format!(
                    "{}/turn/keys/{key_id}/credentials/generate-ice-servers",
                    config.cf_api_base.trim_end_matches('/')
                ),
                api_token: api_token.clone(),
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))?,
                cache: tokio::sync::Mutex::new(None),
            },
            (None, Some(_), None) => {
                return Err("--cf-turn-key-id needs --cf-turn-api-token".into())
            }
            (None, None, _) => Mode::StaticOnly,
        };
        Ok(Self {
            static_servers,
            ttl: config.turn_ttl,
            mode,
        })
    }

    /// The ICE servers for `peer_id` at unix time `now_secs`.
    pub async fn credentials(
        &self,
        peer_id: &str,
        now_secs: u64,
    ) -> Result<TurnCredentials, AppError> {
        let mut ice_servers = self.static_servers.clone();
        match &self.mode {
            Mode::StaticOnly => {}
            Mode::Rest { secret, urls } => {
                ice_servers.push(rest_credential(secret, urls, peer_id, now_secs, self.ttl));
            }
            Mode::Cloudflare {
                url,
                api_token,
                client,
                cache,
            } => {
                let mut cache = cache.lock().await;
                let fresh = cache.as_ref().and_then(|(fetched, result)| {
                    let valid_for = if result.is_ok() {
                        self.ttl / 2
                    } else {
                        FAILURE_BACKOFF
                    };
                    (fetched.elapsed() < valid_for).then(|| result.clone())
                });
                let result = match fresh {
                    Some(result) => result,
                    None => {
                        let result = fetch_cloudflare(client, url, api_token, self.ttl)
                            .await
                            .map_err(|e| e.to_string());
                        *cache = Some((Instant::now(), result.clone()));
                        result
                    }
                };
                let servers = result.map_err(AppError::TurnUnavailable)?;
                ice_servers.extend(servers);
            }
        }
        Ok(TurnCredentials {
            ice_servers,
            ttl: self.ttl.as_secs(),
        })
    }

    /// The static servers alone, for when the provider is down.
    pub fn static_servers(&self) -> Vec<IceServer> {
        self.static_servers.clone()
    }
}

/// The TURN REST scheme: username `expiry:peer`, credential base64(HMAC-SHA1(secret, username)).
pub fn rest_credential(
    secret: &str,
    urls: &[String],
    peer_id: &str,
    now_secs: u64,
    ttl: Duration,
) -> IceServer {
    let username = format!("{}:{peer_id}", now_secs + ttl.as_secs());
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    IceServer {
        urls: urls.to_vec(),
        username: Some(username),
        credential: Some(credential),
    }
}

async fn fetch_cloudflare(
    client: &reqwest::Client,
    url: &str,
    api_token: &str,
    ttl: Duration,
) -> Result<Vec<IceServer>, AppError> {
    let response = client
        .post(url)
        .bearer_auth(api_token)
        .json(&serde_json::json!({ "ttl": ttl.as_secs() }))
        .send()
        .await
        .map_err(|e| AppError::TurnUnavailable(format!("Cloudflare TURN request: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(AppError::TurnUnavailable(format!(
            "Cloudflare TURN answered {status}"
        )));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| AppError::TurnUnavailable(format!("Cloudflare TURN response: {e}")))?;
    callroom_rules::turn_answer(&body).map_err(AppError::TurnUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_credentials_follow_the_coturn_scheme() {
        let server = rest_credential(
            "s3cret",
            &["turn:turn.example.org:3478".into()],
            "p1",
            1_700_000_000,
            Duration::from_secs(3600),
        );
        assert_eq!(server.username.as_deref(), Some("1700003600:p1"));
        // Independently computed: printf '1700003600:p1' | openssl dgst -sha1 -hmac s3cret -binary | base64
        assert_eq!(
            server.credential.as_deref(),
            Some("sRnKAKhc1HjMGl/XEXXAspGuodA=")
        );
    }
}
