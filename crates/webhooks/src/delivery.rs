//! One delivery attempt: a signed POST through a client that follows no redirect, times out,
//! reads at most a small excerpt of the answer and connects only to allowed addresses.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use url::Url;

use crate::endpoints::Attempt;
use crate::outbound::OutboundPolicy;
use crate::signing::{SigningSecret, signature_header};

/// Bytes of a response body kept as the attempt's error excerpt; the rest is never read.
pub const EXCERPT_BYTES: usize = 512;

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx: the event is acknowledged.
    Acknowledged(u16),
    /// Anything else: a status, a timeout, a refused connection, a refused address.
    Failed(Attempt),
}

/// The client every worker of an instance shares.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

/// One message to send.
#[derive(Debug)]
pub struct Message<'a> {
    /// `webhook-id`: the event's id.
    pub id: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// The secrets to sign with (the current one first).
    pub secrets: Vec<&'a SigningSecret>,
}

impl Sender {
    /// A client under `policy`, giving up on a connect after `connect_timeout` and on the whole
    /// exchange after `timeout`.
    pub fn new(
        policy: Arc<OutboundPolicy>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .dns_resolver(policy.resolver())
            .user_agent(concat!("orders-webhooks/", env!("CARGO_PKG_VERSION")))
            // A pooled connection was checked when it was opened; keep them short-lived.
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { client, policy })
    }

    /// The policy deliveries are held to.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// POSTs `message` to `url` once.
    pub async fn send(&self, url: &str, message: &Message<'_>) -> Outcome {
        let failed = |status: Option<u16>, error: String| {
            Outcome::Failed(Attempt {
                at: Utc::now(),
                status,
                error: Some(error),
            })
        };
        // The URL passed at registration; the policy may have changed since (a restart without
        // the development flag), and an address literal never reaches the resolver.
        let url: Url = match self.policy.parse_url(url) {
            Ok(url) => url,
            Err(refused) => return failed(None, format!("refused: {refused}")),
        };
        if let Some(host) = url.host()
            && !matches!(host, url::Host::Domain(_))
            && let Err(refused) = self.policy.resolve(&url).await
        {
            return failed(None, format!("refused: {refused}"));
        }
        let timestamp = Utc::now().timestamp();
        let signature = signature_header(&message.secrets, &message.id, timestamp, &message.body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return failed(None, describe(&error)),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Acknowledged(status.as_u16());
        }
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        let text = String::from_utf8_lossy(&excerpt);
        let reason = if status.is_redirection() {
            format!("HTTP {status} (redirects are not followed): {text}")
        } else {
            format!("HTTP {status}: {text}")
        };
        failed(Some(status.as_u16()), reason.trim().to_owned())
    }
}

/// The cause of a failed request, without the URL (it is shown beside it anyway).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}
