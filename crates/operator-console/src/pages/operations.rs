//! What consumes the feed and how far behind it is: each read model (checkpoint, lag in events
//! and seconds, lease holder, error policy, parked events with retry and skip), the Kafka relay,
//! the webhook endpoints (state, checkpoint, lag, why one fails), and what holds the feed itself
//! back (the sequencer's backlog).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use event_store::Feed;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, Notice, Section};
use crate::ConsoleState;
use crate::guard::Staff;

/// `GET /console/operations`.
pub async fn show(State(state): State<ConsoleState>, staff: Staff) -> Response {
    render(&state, &staff, None, StatusCode::OK).await
}

async fn render(
    state: &ConsoleState,
    staff: &Staff,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let store = &state.store;
    let head = store.head().await.ok();
    let models = state.api.get(&staff.session, "/projections").await;
    let mut sections = Vec::new();
    if let Some(models) = models.body.as_array() {
        for model in models {
            let name = model["name"].as_str().unwrap_or("");
            let parked = state
                .api
                .get(&staff.session, &format!("/projections/{name}/parked"))
                .await;
            let lag_seconds =
                lag_seconds(state, model["position"].as_u64(), model["lag"].as_u64()).await;
            sections.push(projection(
                staff,
                model,
                parked.body.as_array().map(Vec::as_slice).unwrap_or(&[]),
                lag_seconds,
                &state.app_policy(),
            ));
        }
    }
    let backlog = store.backlog().await.ok();
    let relay = relay(state, head).await;
    let webhooks = state.api.get(&staff.session, "/webhooks").await;
    let body = html! {
        (layout::notice(notice.as_ref()))
        @if !models.status.is_success() {
            (layout::notice(Some(&Notice::Problem(models.detail()))))
        }
        section aria-labelledby="feed-heading" {
            h2 id="feed-heading" { "Feed" }
            dl class="facts" {
                dt { "Head position" } dd data-testid="feed-head" { (head.map_or_else(|| "unknown".to_owned(), |h| h.to_string())) }
                dt { "Waiting for the sequencer" } dd {
                    @match backlog {
                        Some(b) if b.events == 0 => "nothing",
                        Some(b) => { (b.events) " events, the oldest for " (format!("{:.1}", b.oldest_age.as_secs_f64())) " s" },
                        None => "unknown (the store did not answer)",
                    }
                }
            }
        }
        @for section in &sections { (section) }
        (relay)
        (webhooks_table(webhooks.body.as_array().map(Vec::as_slice)))
        (standbys_table(state.replicas.as_ref()))
    };
    (
        status,
        layout::page(staff, Section::Operations, "Projections and outbox", body),
    )
        .into_response()
}

impl ConsoleState {
    fn app_policy(&self) -> String {
        match self.on_error {
            read_model::OnError::Park => "park it with its error and go on".to_owned(),
            read_model::OnError::Stop => "stop at it until it can be applied".to_owned(),
        }
    }
}

/// Seconds since the oldest event a consumer at `position` has not applied was committed.
async fn lag_seconds(state: &ConsoleState, position: Option<u64>, lag: Option<u64>) -> Option<f64> {
    let (position, lag) = (position?, lag?);
    if lag == 0 {
        return Some(0.0);
    }
    let next = state.store.committed_at(position + 1).await.ok()??;
    Some((Utc::now() - next).as_seconds_f64().max(0.0))
}

fn projection(
    staff: &Staff,
    model: &Value,
    parked: &[Value],
    lag_seconds: Option<f64>,
    policy: &str,
) -> Markup {
    let name = model["name"].as_str().unwrap_or("");
    let heading = format!("projection-{name}");
    html! {
        section aria-labelledby=(heading) data-projection=(name) {
            h2 id=(heading) { "Read model " code { (name) } }
            dl class="facts" {
                dt { "Checkpoint" } dd { (layout::text(&model["position"])) }
                dt { "Lag" } dd {
                    (layout::text(&model["lag"])) " events"
                    @if let Some(seconds) = lag_seconds { ", " (format!("{seconds:.1}")) " s" }
                }
                dt { "Held by" } dd {
                    @match model["holder"]["instance"].as_str() {
                        Some(instance) => { code { (instance) } " (epoch " (layout::text(&model["holder"]["epoch"])) ")" },
                        None => "no instance yet",
                    }
                }
                dt { "Generation" } dd { (layout::text(&model["generation"])) }
                dt { "On an event it cannot apply" } dd { (policy) }
            }
            h3 { "Parked events (" (parked.len()) ")" }
            @if parked.is_empty() {
                p { "None." }
            } @else {
                div class="scroll" {
                    table {
                        thead { tr { th scope="col" class="num" { "Position" } th scope="col" { "Event" } th scope="col" { "Error" } th scope="col" { "Parked" } th scope="col" { "Actions" } } }
                        tbody {
                            @for event in parked {
                                @let position = layout::text(&event["position"]);
                                tr data-parked=(position) {
                                    td class="num" { (position) }
                                    td class="mono" { (layout::text(&event["event_id"])) }
                                    td { (layout::text(&event["error"])) }
                                    td { (layout::json_time(&event["parked_at"])) }
                                    td class="buttons" {
                                        @for (action, label) in [("retry", "Retry"), ("skip", "Skip")] {
                                            form method="post" action={ "/console/projections/" (name) "/parked/" (position) "/" (action) } {
                                                input type="hidden" name="csrf" value=(staff.csrf);
                                                button type="submit" aria-label={ (label) " the event at position " (position) " of " (name) } { (label) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The webhook endpoints as `GET /webhooks` shows them (managed over the API).
fn webhooks_table(endpoints: Option<&[Value]>) -> Markup {
    html! {
        section aria-labelledby="webhooks-heading" {
            h2 id="webhooks-heading" { "Webhooks" }
            @match endpoints {
                None => p { "Unknown (the API did not answer)." },
                Some([]) => p { "No endpoints. Staff register them with " code { "POST /webhooks" } "." },
                Some(endpoints) => div class="scroll" {
                    table {
                        thead { tr {
                            th scope="col" { "Endpoint" } th scope="col" { "State" } th scope="col" class="num" { "Checkpoint" }
                            th scope="col" class="num" { "Lag" } th scope="col" class="num" { "Delivered" } th scope="col" { "Last attempt" }
                        } }
                        tbody {
                            @for endpoint in endpoints {
                                tr data-webhook=(layout::text(&endpoint["id"])) {
                                    td { code { (layout::text(&endpoint["url"])) } }
                                    td {
                                        (layout::text(&endpoint["state"]))
                                        @if let Some(since) = endpoint["failing_since"].as_str() {
                                            ", failing since " (since) " (" (layout::text(&endpoint["attempts"])) " attempts)"
                                        }
                                    }
                                    td class="num" { (layout::text(&endpoint["checkpoint"])) }
                                    td class="num" { (layout::text(&endpoint["lag"])) }
                                    td class="num" { (layout::text(&endpoint["delivered"])) }
                                    td {
                                        @let attempt = &endpoint["last_attempt"];
                                        @if attempt.is_null() { "none yet" } @else {
                                            (layout::json_time(&attempt["at"])) ": "
                                            @match attempt["status"].as_u64() {
                                                Some(status) => { "HTTP " (status) },
                                                None => "no answer",
                                            }
                                            @if let Some(error) = attempt["error"].as_str() { " (" (error) ")" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                },
            }
        }
    }
}

async fn relay(state: &ConsoleState, head: Option<u64>) -> Markup {
    let Some(relay) = &state.console.relay else {
        return html! {
            section aria-labelledby="relay-heading" {
                h2 id="relay-heading" { "Kafka relay" }
                p { "This instance does not publish (KAFKA_BROKERS is not set)." }
            }
        };
    };
    let checkpoint = relay.db.checkpoint(&relay.checkpoint_name).await.ok();
    let holder = relay.db.holder(&relay.checkpoint_name).await.ok().flatten();
    let leading = relay.status.borrow().leading;
    let lag = match (head, checkpoint) {
        (Some(h), Some(c)) => Some(h.saturating_sub(c)),
        _ => None,
    };
    let seconds = lag_seconds(state, checkpoint, lag).await;
    html! {
        section aria-labelledby="relay-heading" {
            h2 id="relay-heading" { "Kafka relay" }
            dl class="facts" {
                dt { "Topic" } dd { code { (relay.topic) } }
                dt { "Held by" } dd data-testid="relay-holder" {
                    @match (&holder, leading) {
                        (Some(instance), _) if !instance.is_empty() => code { (instance) },
                        (_, true) => "this instance",
                        (Some(_), false) => "an instance that gave no name",
                        (None, false) => "nobody: no instance publishes",
                    }
                }
                dt { "This instance" } dd { @if leading { "publishes" } @else { "stands by" } }
                dt { "Checkpoint" } dd data-testid="relay-checkpoint" { (checkpoint.map_or_else(|| "unknown".to_owned(), |c| c.to_string())) }
                dt { "Lag" } dd {
                    (lag.map_or_else(|| "unknown".to_owned(), |l| l.to_string())) " events"
                    @if let Some(seconds) = seconds { ", " (format!("{seconds:.1}")) " s" }
                }
                dt { "On a broker error" } dd { "retries until the broker acknowledges; events wait in the feed" }
            }
        }
    }
}

/// The hot standbys that answer queries (`DATABASE_READ_URL`), each with its lag.
fn standbys_table(replicas: Option<&store::replicas::Replicas>) -> Markup {
    let Some(replicas) = replicas else {
        return html! {
            section aria-labelledby="standbys-heading" {
                h2 id="standbys-heading" { "Standbys" }
                p { "The primary answers every query (DATABASE_READ_URL is not set)." }
            }
        };
    };
    html! {
        section aria-labelledby="standbys-heading" {
            h2 id="standbys-heading" { "Standbys" }
            table data-testid="standbys" {
                caption { "Hot standbys answering queries" }
                thead { tr { th scope="col" { "Server" } th scope="col" { "Answers queries" } th scope="col" { "Lag" } } }
                tbody {
                    @for replica in replicas.members() {
                        tr {
                            td { code { (replica.name()) } }
                            td { @if replica.in_rotation() { "yes" } @else { "no: the primary answers" } }
                            td { @if replica.in_rotation() { (format!("{:.1} s", replica.lag().as_secs_f64())) } @else { "unknown" } }
                        }
                    }
                }
            }
        }
    }
}

/// A parked event's form.
#[derive(Debug, Deserialize)]
pub struct ParkedForm {
    csrf: String,
}

/// `POST /console/projections/{name}/parked/{position}/{retry|skip}`.
pub async fn act(
    State(state): State<ConsoleState>,
    staff: Staff,
    headers: HeaderMap,
    Path((name, position, action)): Path<(String, String, String)>,
    Form(form): Form<ParkedForm>,
) -> Response {
    if let Err(refused) = staff.check_form(&state, &headers, &form.csrf) {
        return refused.into_response();
    }
    if action != "retry" && action != "skip" {
        let notice = Notice::Problem(format!("There is no action {action:?}."));
        return render(&state, &staff, Some(notice), StatusCode::NOT_FOUND).await;
    }
    let path = format!(
        "/projections/{}/parked/{}/{action}",
        urlencode(&name),
        urlencode(&position)
    );
    let answer = state.api.post(&staff.session, &path, None, None).await;
    let (notice, status) = if answer.status.is_success() {
        let done = if action == "retry" {
            format!("The event at position {position} applied; it is no longer parked.")
        } else {
            format!("The event at position {position} was skipped; {name} will never apply it.")
        };
        (Notice::Done(done), StatusCode::OK)
    } else {
        (Notice::Problem(answer.detail()), answer.status)
    };
    render(&state, &staff, Some(notice), status).await
}

fn urlencode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use store::replicas::{ReplicaOptions, Replicas};

    #[tokio::test]
    async fn each_standby_is_listed_with_whether_it_answers() {
        let primary = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://postgres@127.0.0.1:1/orders")
            .unwrap();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let options = ReplicaOptions {
            max_lag: Duration::from_secs(1),
            max_connections: 1,
        };
        let url = "postgres://postgres@127.0.0.1:2,127.0.0.1:3/orders";
        let replicas = Replicas::start(url, primary, options, shutdown).unwrap();
        let html = super::standbys_table(Some(&replicas)).into_string();
        assert!(
            html.contains("127.0.0.1:2") && html.contains("127.0.0.1:3"),
            "{html}"
        );
        assert_eq!(html.matches("no: the primary answers").count(), 2, "{html}");
        let none = super::standbys_table(None).into_string();
        assert!(none.contains("DATABASE_READ_URL is not set"), "{none}");
    }
}
