//! Finding orders: by id prefix, customer, status and creation date, a page at a time, from the
//! order read model (`GET /orders`).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, Notice, Section};
use crate::ConsoleState;
use crate::guard::Staff;
use domain::OrderStatus;

/// Rows per page.
const PAGE: usize = 25;

/// `GET /console`: the orders.
pub async fn home(_staff: Staff) -> Response {
    Redirect::to("/console/orders").into_response()
}

/// The search form's fields, as typed (empty means "any").
#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    id: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

impl Search {
    /// The `GET /orders` query for this search, or what is wrong with a field.
    fn api_query(&self) -> Result<String, String> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &PAGE.to_string());
        let id = self.id.trim();
        if !id.is_empty() {
            query.append_pair("id_prefix", id);
        }
        for (name, value) in [
            ("customer", self.customer.trim()),
            ("status", self.status.trim()),
            ("cursor", self.cursor.trim()),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(from) = date("from", &self.from)? {
            query.append_pair("created_from", &format!("{from}T00:00:00Z"));
        }
        if let Some(to) = date("to", &self.to)? {
            // The whole day `to` is included.
            let next = to
                .succ_opt()
                .ok_or("the 'to' date is too far in the future")?;
            query.append_pair("created_before", &format!("{next}T00:00:00Z"));
        }
        Ok(query.finish())
    }

    /// This search, on the page after `cursor`.
    fn with_cursor(&self, cursor: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("id", &self.id),
            ("customer", &self.customer),
            ("status", &self.status),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.trim().is_empty() {
                query.append_pair(name, value.trim());
            }
        }
        query.append_pair("cursor", cursor);
        query.finish()
    }
}

fn date(field: &str, raw: &str) -> Result<Option<NaiveDate>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| format!("the '{field}' date must look like 2026-12-01"))
}

/// `GET /console/orders`: the search form and a page of results, newest first.
pub async fn list(
    State(state): State<ConsoleState>,
    staff: Staff,
    Query(search): Query<Search>,
) -> Response {
    let (orders, next, notice) = match search.api_query() {
        Err(problem) => (Vec::new(), None, Some(Notice::Problem(problem))),
        Ok(query) => {
            let answer = state
                .api
                .get(&staff.session, &format!("/orders?{query}"))
                .await;
            if answer.status.is_success() {
                let orders = answer.body["orders"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let next = answer.body["next_cursor"]
                    .as_str()
                    .map(|c| search.with_cursor(c));
                (orders, next, None)
            } else {
                (Vec::new(), None, Some(Notice::Problem(answer.detail())))
            }
        }
    };
    let body = html! {
        (layout::notice(notice.as_ref()))
        (form(&search))
        @if orders.is_empty() && notice.is_none() {
            p { "No order matches." }
        } @else if !orders.is_empty() {
            (table(&orders))
        }
        @if let Some(next) = next {
            p { a href={ "/console/orders?" (next) } rel="next" { "Older orders →" } }
        }
    };
    layout::page(&staff, Section::Orders, "Orders", body).into_response()
}

fn form(search: &Search) -> Markup {
    html! {
        form class="search" method="get" action="/console/orders" role="search" aria-label="Find orders" {
            div class="field" {
                label for="id" { "Order id (or its start)" }
                input id="id" name="id" type="search" value=(search.id) autocomplete="off" spellcheck="false";
            }
            div class="field" {
                label for="customer" { "Customer id" }
                input id="customer" name="customer" type="text" value=(search.customer) autocomplete="off" spellcheck="false";
            }
            div class="field" {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" selected[search.status.is_empty()] { "any" }
                    @for status in OrderStatus::LISTED.map(OrderStatus::as_str) {
                        option value=(status) selected[search.status == status] { (status) }
                    }
                }
            }
            div class="field" {
                label for="from" { "Created from" }
                input id="from" name="from" type="date" value=(search.from);
            }
            div class="field" {
                label for="to" { "Created to" }
                input id="to" name="to" type="date" value=(search.to);
            }
            div class="field actions" {
                button type="submit" { "Search" }
            }
        }
    }
}

fn table(orders: &[Value]) -> Markup {
    html! {
        div class="scroll" {
            table {
                caption class="visually-hidden" { "Orders, newest first" }
                thead {
                    tr {
                        th scope="col" { "Order" }
                        th scope="col" { "Status" }
                        th scope="col" { "Customer" }
                        th scope="col" class="num" { "Total" }
                        th scope="col" class="num" { "Version" }
                        th scope="col" { "Created" }
                    }
                }
                tbody {
                    @for order in orders {
                        @let id = layout::text(&order["id"]);
                        tr {
                            td { a class="mono" href={ "/console/orders/" (id) } { (id) } }
                            td { (layout::status(order["status"].as_str().unwrap_or(""))) }
                            td class="mono" { (layout::text(&order["customer_id"])) }
                            td class="num" {
                                (layout::money(order["total"].as_i64().unwrap_or(0), order["currency"].as_str().unwrap_or("")))
                            }
                            td class="num" { (layout::text(&order["version"])) }
                            td { (layout::json_time(&order["created_at"])) }
                        }
                    }
                }
            }
        }
    }
}
