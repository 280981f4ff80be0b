//! Read-your-writes without waiting at write time: a write's consistency token names the write
//! (the order and the version it reached), and a query that is given the token resolves it to a
//! place in the global feed only when it needs it. See ADR 0010.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use axum::http::StatusCode;
use event_store::{EventStore, EventStoreError};
use tokio::time::Instant;
use uuid::Uuid;

use super::Problem;
use store::Store;

/// Most tokens one query may wait for.
pub const MAX_TOKENS: usize = 16;

/// First pause while the feed has not numbered a write yet; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(25);

/// `"<order id>:<version>"`: the write that took order `aggregate_id` to `version`. Clients treat
/// it as opaque; it needs no lookup to produce, so a write hands it back without a second round
/// trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsistencyToken {
    /// The order written.
    pub aggregate_id: Uuid,
    /// The version the write reached.
    pub version: u64,
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.aggregate_id, self.version)
    }
}

impl FromStr for ConsistencyToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (id, version) = s.split_once(':').ok_or_else(|| {
            format!("{s:?} is not a consistency token (expected <order id>:<version>)")
        })?;
        let aggregate_id = Uuid::try_parse(id)
            .map_err(|_| format!("{s:?} is not a consistency token: {id:?} is not a UUID"))?;
        let version = version
            .parse::<u64>()
            .ok()
            .filter(|v| (1..=i64::MAX as u64).contains(v))
            .ok_or_else(|| format!("{s:?} is not a consistency token: bad version {version:?}"))?;
        Ok(Self {
            aggregate_id,
            version,
        })
    }
}

/// Parses the `consistent_with` parameter: comma-separated tokens, at most [`MAX_TOKENS`].
pub fn parse_tokens(value: &str) -> Result<Vec<ConsistencyToken>, Problem> {
    let tokens = value
        .split(',')
        .map(str::trim)
        .map(ConsistencyToken::from_str)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| Problem::bad_request("invalid-consistency-token", why))?;
    if tokens.len() > MAX_TOKENS {
        return Err(Problem::bad_request(
            "invalid-consistency-token",
            format!("at most {MAX_TOKENS} consistency tokens per query"),
        ));
    }
    Ok(tokens)
}

/// The highest feed position among the writes `tokens` name, waiting until `deadline` for the
/// feed to number them (PostgreSQL numbers a commit a moment after it).
pub async fn resolve(
    store: &Store,
    tokens: &[ConsistencyToken],
    deadline: Instant,
) -> Result<u64, Problem> {
    let mut highest = 0;
    for token in tokens {
        let mut pause = FIRST_PAUSE;
        let position = loop {
            match store.position_of(token.aggregate_id, token.version).await {
                Ok(Some(position)) => break position,
                Ok(None) if Instant::now() + pause <= deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Ok(None) => {
                    return Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "read-model-behind",
                        format!("the write {token} is not in the global feed yet; retry shortly"),
                    ));
                }
                Err(EventStoreError::EventNotFound { .. }) => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unknown-consistency-token",
                        format!(
                            "no write matches the consistency token {token}; pass a token from a write's response"
                        ),
                    ));
                }
                Err(error) => return Err(error.into()),
            }
        };
        highest = highest.max(position);
    }
    Ok(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_through_its_text() {
        let token = ConsistencyToken {
            aggregate_id: Uuid::now_v7(),
            version: 3,
        };
        assert_eq!(token.to_string().parse::<ConsistencyToken>(), Ok(token));
    }

    #[test]
    fn malformed_tokens_are_refused_with_the_reason() {
        for bad in [
            "",
            "abc",
            "not-a-uuid:1",
            "0193a1b2-0000-7000-8000-000000000001:0",
            "0193a1b2-0000-7000-8000-000000000001:-1",
            "0193a1b2-0000-7000-8000-000000000001:x",
            "0193a1b2-0000-7000-8000-000000000001:9223372036854775808",
        ] {
            assert!(
                bad.parse::<ConsistencyToken>().is_err(),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(
            "0193a1b2-0000-7000-8000-000000000001:9223372036854775807"
                .parse::<ConsistencyToken>()
                .map(|t| t.version),
            Ok(i64::MAX as u64)
        );
    }

    #[test]
    fn a_list_is_comma_separated_and_bounded() {
        let one = "0193a1b2-0000-7000-8000-000000000001:2";
        assert_eq!(
            parse_tokens(&format!("{one}, {one}")).map(|t| t.len()).ok(),
            Some(2)
        );
        let too_many = vec![one; MAX_TOKENS + 1].join(",");
        assert!(parse_tokens(&too_many).is_err());
        assert!(parse_tokens(&vec![one; MAX_TOKENS].join(",")).is_ok());
    }
}
