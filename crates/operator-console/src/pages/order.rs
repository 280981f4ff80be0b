//! One order: its state (now, or at any version), the timeline of its events, the events that
//! share their correlation ids, and the commands staff can send, pinned with `If-Match` to the
//! version the page shows.

use domain::{
    Aggregate, MAX_CANCELLATION_REASON_LEN, MAX_CARRIER_LEN, MAX_TRACKING_NUMBER_LEN,
    OrderAggregate, OrderStatus,
};
use std::collections::BTreeSet;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use event_store::{Feed, RecordedEvent};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::layout::{self, Notice, Section};
use crate::ConsoleState;
use crate::guard::Staff;

/// How far around an order's events the feed is searched for events of the same correlation.
const CORRELATION_WINDOW: u64 = 100;

/// The most feed events read for that search.
const CORRELATION_READ: usize = 1_000;

/// The query of an order's page.
#[derive(Debug, Default, Deserialize)]
pub struct View {
    /// Show the state at this version instead of the current one.
    version: Option<u64>,
    /// The action that just succeeded (after its redirect).
    done: Option<String>,
}

/// `GET /console/orders/{id}`.
pub async fn show(
    State(state): State<ConsoleState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(view): Query<View>,
) -> Response {
    let notice = view.done.as_deref().and_then(done_notice).map(Notice::Done);
    render(&state, &staff, &id, view.version, notice, StatusCode::OK).await
}

fn done_notice(action: &str) -> Option<String> {
    let what = match action {
        "confirm" => "Confirmed",
        "ship" => "Shipped",
        "deliver" => "Delivered",
        "cancel" => "Cancelled",
        _ => return None,
    };
    Some(format!("{what}. The page shows the order's new version."))
}

async fn render(
    state: &ConsoleState,
    staff: &Staff,
    raw_id: &str,
    at_version: Option<u64>,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let Ok(id) = Uuid::parse_str(raw_id) else {
        return not_found(staff, raw_id);
    };
    let current = state
        .api
        .get(&staff.session, &format!("/orders/{id}"))
        .await;
    if current.status == StatusCode::NOT_FOUND {
        return not_found(staff, raw_id);
    }
    if !current.status.is_success() {
        let body = layout::notice(Some(&Notice::Problem(current.detail())));
        return (
            current.status,
            layout::page(staff, Section::Orders, "Order", body),
        )
            .into_response();
    }
    let order = current.body;
    let version = order["version"].as_u64().unwrap_or(0);
    let events = state
        .api
        .get(&staff.session, &format!("/orders/{id}/events?limit=1000"))
        .await;
    let events: Vec<Value> = events.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown = match at_version.filter(|v| *v != version) {
        Some(v) => {
            let past = state
                .api
                .get(&staff.session, &format!("/orders/{id}?version={v}"))
                .await;
            if past.status.is_success() {
                Ok((v, past.body))
            } else {
                Err(past.detail())
            }
        }
        None => Ok((version, order.clone())),
    };
    let correlated = correlated(state, id, &events).await;
    let title = format!("Order {id}");
    let body = html! {
        (layout::notice(notice.as_ref()))
        p class="summary" {
            (layout::status(order["status"].as_str().unwrap_or("")))
            " version " strong data-testid="current-version" { (version) }
            " · customer " a class="mono" href={ "/console/orders?customer=" (layout::text(&order["customer_id"])) } { (layout::text(&order["customer_id"])) }
        }
        (actions(staff, &id, &order))
        section aria-labelledby="state-heading" {
            @match &shown {
                Ok((v, state)) => {
                    h2 id="state-heading" {
                        @if *v == version { "Current state" } @else { "State at version " (v) " of " (version) }
                    }
                    (stepper(&id, *v, version))
                    (state_table(state))
                }
                Err(problem) => {
                    h2 id="state-heading" { "State" }
                    (layout::notice(Some(&Notice::Problem(problem.clone()))))
                    (stepper(&id, version, version))
                }
            }
        }
        section aria-labelledby="timeline-heading" {
            h2 id="timeline-heading" { "Timeline" }
            (timeline(&id, &events, shown.as_ref().map_or(version, |(v, _)| *v)))
        }
        section aria-labelledby="correlated-heading" {
            h2 id="correlated-heading" { "Events of the same correlation in other streams" }
            (correlated_table(&correlated))
        }
    };
    (status, layout::page(staff, Section::Orders, &title, body)).into_response()
}

fn not_found(staff: &Staff, raw_id: &str) -> Response {
    let body = layout::notice(Some(&Notice::Problem(format!(
        "There is no order {raw_id}. Find orders by the start of their id on the Orders page."
    ))));
    (
        StatusCode::NOT_FOUND,
        layout::page(staff, Section::Orders, "Order not found", body),
    )
        .into_response()
}

fn stepper(id: &Uuid, shown: u64, current: u64) -> Markup {
    html! {
        nav class="stepper" aria-label="Versions" {
            @if shown > 1 {
                a href={ "/console/orders/" (id) "?version=" (shown - 1) } rel="prev" { "← Version " (shown - 1) }
            }
            @if shown < current {
                a href={ "/console/orders/" (id) "?version=" (shown + 1) } rel="next" { "Version " (shown + 1) " →" }
                a href={ "/console/orders/" (id) } { "Current (" (current) ")" }
            }
        }
    }
}

fn state_table(state: &Value) -> Markup {
    let currency = state["currency"].as_str().unwrap_or("");
    html! {
        dl class="facts" {
            dt { "Status" } dd data-testid="state-status" { (layout::text(&state["status"])) }
            dt { "Version" } dd data-testid="state-version" { (layout::text(&state["version"])) }
            dt { "Total" } dd {
                @match state["total"].as_i64() {
                    Some(total) => (layout::money(total, currency)),
                    None => "—",
                }
            }
            @for (label, key) in [("Carrier", "carrier"), ("Tracking number", "tracking_number"), ("Cancellation reason", "cancellation_reason"), ("Personal data", "personal_data")] {
                @if !state[key].is_null() {
                    dt { (label) } dd { (layout::text(&state[key])) }
                }
            }
        }
        @if let Some(items) = state["items"].as_array().filter(|items| !items.is_empty()) {
            div class="scroll" {
                table {
                    caption { "Items" }
                    thead { tr { th scope="col" { "SKU" } th scope="col" class="num" { "Quantity" } th scope="col" class="num" { "Unit price" } } }
                    tbody {
                        @for item in items {
                            tr {
                                td class="mono" { (layout::text(&item["sku"])) }
                                td class="num" { (layout::text(&item["quantity"])) }
                                td class="num" { (layout::money(item["unit_price"].as_i64().unwrap_or(0), currency)) }
                            }
                        }
                    }
                }
            }
        }
        details {
            summary { "The whole state as JSON" }
            pre { code { (layout::pretty(state)) } }
        }
    }
}

fn actions(staff: &Staff, id: &Uuid, order: &Value) -> Markup {
    let version = order["version"].as_u64().unwrap_or(0);
    // The lifecycle's one owner is the domain: the buttons are the commands the status accepts.
    let available = serde_json::from_value::<OrderStatus>(order["status"].clone())
        .map_or(&[][..], OrderStatus::next_commands);
    html! {
        @if !available.is_empty() {
            section class="actions" aria-labelledby="actions-heading" {
                h2 id="actions-heading" { "Actions" }
                p class="hint" { "Each action applies only if the order is still at version " (version) " (If-Match)." }
                div class="action-row" {
                    @for action in available {
                        form method="post" action={ "/console/orders/" (id) "/" (action) } class={ "action action-" (action) } {
                            input type="hidden" name="csrf" value=(staff.csrf);
                            input type="hidden" name="version" value=(version);
                            @if *action == "cancel" {
                                label for="reason" { "Reason" }
                                input id="reason" name="reason" type="text" required maxlength=(MAX_CANCELLATION_REASON_LEN);
                            }
                            @if *action == "ship" {
                                label for="carrier" { "Carrier" }
                                input id="carrier" name="carrier" type="text" maxlength=(MAX_CARRIER_LEN);
                                label for="tracking" { "Tracking number" }
                                input id="tracking" name="tracking_number" type="text" maxlength=(MAX_TRACKING_NUMBER_LEN);
                            }
                            button type="submit" { (label(action)) }
                        }
                    }
                }
            }
        }
    }
}

fn label(action: &str) -> &'static str {
    match action {
        "confirm" => "Confirm",
        "ship" => "Ship",
        "deliver" => "Deliver",
        _ => "Cancel order",
    }
}

fn timeline(id: &Uuid, events: &[Value], shown: u64) -> Markup {
    html! {
        ol class="timeline" data-testid="timeline" {
            @for event in events {
                @let version = event["version"].as_u64().unwrap_or(0);
                @let metadata = &event["metadata"];
                li class={ "event" @if version == shown { " shown" } } data-version=(version) {
                    div class="event-head" {
                        span class="event-type" { (layout::text(&event["event_type"])) }
                        " · version " (version)
                        " · position " (layout::text(&event["position"]))
                        " · " (layout::json_time(&event["recorded_at"]))
                        " · " a href={ "/console/orders/" (id) "?version=" (version) } { "state after it" }
                    }
                    dl class="meta" {
                        dt { "User" } dd { (layout::text(&metadata["user_id"])) }
                        dt { "Correlation" } dd class="mono" { (layout::text(&metadata["correlation_id"])) }
                        dt { "Causation" } dd class="mono" { (layout::text(&metadata["causation_id"])) }
                        dt { "Schema" } dd { "v" (layout::text(&event["schema_version"])) }
                    }
                    pre class="payload" { code { (layout::pretty(&event["payload"])) } }
                    (upcast_note(event))
                }
            }
        }
    }
}

/// An event stored at an older schema version is shown as stored and as the code reads it today.
fn upcast_note(event: &Value) -> Markup {
    let (Some(event_type), Some(stored)) = (
        event["event_type"].as_str(),
        event["schema_version"].as_u64(),
    ) else {
        return html! {};
    };
    let Ok(stored) = u32::try_from(stored) else {
        return html! {};
    };
    let Ok(read) = domain::OrderEvent::from_stored(event_type, stored, event["payload"].clone())
    else {
        return html! {};
    };
    use domain::DomainEvent;
    if read.schema_version() == stored {
        return html! {};
    }
    html! {
        details {
            summary { "Read today as schema v" (read.schema_version()) }
            pre class="payload" { code { (layout::pretty(&read.to_payload())) } }
        }
    }
}

/// Events of other streams that share a correlation id with this order's, from the feed around
/// this order's positions.
async fn correlated(state: &ConsoleState, id: Uuid, events: &[Value]) -> Vec<RecordedEvent> {
    let ids: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["metadata"]["correlation_id"].as_str())
        .collect();
    let positions: Vec<u64> = events
        .iter()
        .filter_map(|e| e["position"].as_u64())
        .collect();
    let (Some(low), Some(high)) = (positions.iter().min(), positions.iter().max()) else {
        return Vec::new();
    };
    let after = low.saturating_sub(CORRELATION_WINDOW + 1);
    let span = usize::try_from(high - low + 2 * CORRELATION_WINDOW + 1).unwrap_or(CORRELATION_READ);
    let Ok(window) = state
        .store
        .read_all(after, span.min(CORRELATION_READ))
        .await
    else {
        return Vec::new();
    };
    window
        .into_iter()
        .filter(|e| e.aggregate_id != id)
        .filter(|e| {
            e.metadata["correlation_id"]
                .as_str()
                .is_some_and(|c| ids.contains(c))
        })
        .collect()
}

fn correlated_table(events: &[RecordedEvent]) -> Markup {
    html! {
        p class="hint" { "Searched among the feed's events within " (CORRELATION_WINDOW) " positions of this order's." }
        @if events.is_empty() {
            p { "None." }
        } @else {
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "Position" } th scope="col" { "Type" } th scope="col" { "Stream" } th scope="col" class="num" { "Version" } th scope="col" { "Correlation" } } }
                    tbody {
                        @for event in events {
                            tr {
                                td class="num" { (event.position.map_or_else(String::new, |p| p.to_string())) }
                                td { (event.event_type) }
                                td class="mono" {
                                    @if event.aggregate_type == OrderAggregate::TYPE {
                                        a href={ "/console/orders/" (event.aggregate_id) } { (event.aggregate_id) }
                                    } @else {
                                        (event.aggregate_type) " " (event.aggregate_id)
                                    }
                                }
                                td class="num" { (event.version) }
                                td class="mono" { (layout::text(&event.metadata["correlation_id"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The fields of an action's form.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    version: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_number: Option<String>,
}

/// `POST /console/orders/{id}/{action}`: the API's command, with `If-Match` the version the page
/// showed. A stale page gets the conflict explained and changes nothing.
pub async fn act(
    State(state): State<ConsoleState>,
    staff: Staff,
    headers: HeaderMap,
    Path((raw_id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refused) = staff.check_form(&state, &headers, &form.csrf) {
        return refused.into_response();
    }
    let Ok(id) = Uuid::parse_str(&raw_id) else {
        return not_found(&staff, &raw_id);
    };
    let Ok(version) = form.version.parse::<u64>() else {
        let notice = Notice::Problem("The form carried no valid version; reload the page.".into());
        return render(
            &state,
            &staff,
            &raw_id,
            None,
            Some(notice),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let non_empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let body = match action.as_str() {
        "confirm" | "deliver" => None,
        "cancel" => Some(json!({ "reason": form.reason.clone().unwrap_or_default() })),
        "ship" => Some(
            json!({ "carrier": non_empty(&form.carrier), "tracking_number": non_empty(&form.tracking_number) }),
        ),
        _ => {
            let notice = Notice::Problem(format!("There is no action {action:?}."));
            return render(
                &state,
                &staff,
                &raw_id,
                None,
                Some(notice),
                StatusCode::NOT_FOUND,
            )
            .await;
        }
    };
    let answer = state
        .api
        .post(
            &staff.session,
            &format!("/orders/{id}/{action}"),
            Some(version),
            body,
        )
        .await;
    if answer.status.is_success() {
        tracing::info!(order_id = %id, action, by = %staff.session.subject, "console action");
        return Redirect::to(&format!("/console/orders/{id}?done={action}")).into_response();
    }
    let (status, message) = if answer.status == StatusCode::PRECONDITION_FAILED {
        (
            StatusCode::CONFLICT,
            format!(
                "Conflict: this page showed version {version}, but the order has changed since. Nothing was changed. Review its current state below and try again."
            ),
        )
    } else {
        (answer.status, format!("Refused: {}", answer.detail()))
    };
    render(
        &state,
        &staff,
        &raw_id,
        None,
        Some(Notice::Problem(message)),
        status,
    )
    .await
}
