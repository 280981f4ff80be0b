//! The HTTP contract: request and response bodies. Separate from domain types on purpose, so the
//! wire format changes only when we decide it should.

use chrono::{DateTime, Utc};
use domain::{
    AddressInput, Contact, ContactInput, Currency, OrderAggregate, OrderError, OrderItem,
    ShippingAddress,
};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::consistency::ConsistencyToken;
use personal_data::stored_json;

/// `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// The customer; a customer may omit it (it defaults to the caller) but not name another one.
    /// Required for staff.
    pub customer_id: Option<Uuid>,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(example = "EUR")]
    pub currency: String,
    /// 1 to 100 lines, each SKU once.
    pub items: Vec<ItemRequest>,
    /// Where it goes. Optional here (set it later with `POST /orders/{id}/shipping-address`),
    /// but an order ships only with one. Personal data: stored encrypted.
    #[serde(default)]
    pub shipping_address: Option<AddressRequest>,
    /// How to reach the customer about the order. Personal data: stored encrypted.
    #[serde(default)]
    pub contact: Option<ContactRequest>,
}

/// A shipping address. Every text field is trimmed, 1–100 characters (postal code 1–16) without
/// control characters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    /// Who receives the parcel.
    #[schema(example = "Ada Lovelace")]
    pub recipient_name: String,
    /// Street and number.
    #[schema(example = "Unter den Linden 1")]
    pub line1: String,
    /// Flat, floor, company.
    #[serde(default)]
    pub line2: Option<String>,
    /// Postal code.
    #[schema(example = "10117")]
    pub postal_code: String,
    /// City or town.
    #[schema(example = "Berlin")]
    pub city: String,
    /// ISO 3166-1 alpha-2, in capitals.
    #[schema(example = "DE")]
    pub country: String,
}

impl AddressRequest {
    /// The checked address.
    pub fn to_domain(&self) -> Result<ShippingAddress, OrderError> {
        ShippingAddress::new(AddressInput {
            recipient_name: self.recipient_name.clone(),
            line1: self.line1.clone(),
            line2: self.line2.clone(),
            postal_code: self.postal_code.clone(),
            city: self.city.clone(),
            country: self.country.clone(),
        })
    }
}

/// Contact details.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// An email address (at most 254 characters).
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// An international phone number: `+` and 7–15 digits; spaces, dots, dashes and brackets
    /// are dropped.
    #[serde(default)]
    #[schema(example = "+49 30 1234567")]
    pub phone: Option<String>,
}

/// `POST /orders/{id}/shipping-address`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAddressRequest {
    /// The new address.
    pub shipping_address: AddressRequest,
}

/// One order line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// The product.
    pub product_id: Uuid,
    /// Stock keeping unit: 1–64 of `A-Z a-z 0-9 - _ .`.
    #[schema(example = "SKU-001")]
    pub sku: String,
    /// 1 to 10 000.
    #[schema(example = 2)]
    pub quantity: u32,
    /// Price of one unit in minor units of the order's currency (cents for EUR); never negative.
    #[schema(example = 1050)]
    pub unit_price: i64,
}

impl CreateOrderRequest {
    /// The checked address and contact, when given.
    pub fn personal(&self) -> Result<(Option<ShippingAddress>, Option<Contact>), OrderError> {
        let address = self
            .shipping_address
            .as_ref()
            .map(AddressRequest::to_domain)
            .transpose()?;
        let contact = self
            .contact
            .as_ref()
            .map(|c| {
                Contact::new(ContactInput {
                    email: c.email.clone(),
                    phone: c.phone.clone(),
                })
            })
            .transpose()?;
        Ok((address, contact))
    }

    /// The validated lines, in the order's currency.
    pub fn items(&self) -> Result<(Currency, Vec<OrderItem>), OrderError> {
        let currency = Currency::new(&self.currency)?;
        let items = self
            .items
            .iter()
            .map(|i| {
                OrderItem::new(
                    i.product_id,
                    &i.sku,
                    i.quantity,
                    i.unit_price,
                    currency.clone(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok((currency, items))
    }
}

/// `POST /orders/{id}/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrderRequest {
    /// Why the order is cancelled (1–500 characters).
    #[schema(example = "ordered by mistake")]
    pub reason: String,
}

/// `POST /orders/{id}/ship` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipOrderRequest {
    /// Carrier name.
    #[schema(example = "DHL")]
    pub carrier: Option<String>,
    /// Tracking number.
    #[schema(example = "JD014600006281234567")]
    pub tracking_number: Option<String>,
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderResponse {
    /// The order id.
    pub id: Uuid,
    /// The customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    /// `created`, `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    /// ISO 4217 code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The lines.
    pub items: Vec<ItemResponse>,
    /// Sum of the lines, in minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Why it was cancelled; `null` once the customer is forgotten.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cancellation_reason: Option<serde_json::Value>,
    /// Carrier, once shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// Where it goes, once set; `null` once the customer is forgotten.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AddressRequest>)]
    pub shipping_address: Option<serde_json::Value>,
    /// The contact, if given; `null` once the customer is forgotten.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ContactRequest>)]
    pub contact: Option<serde_json::Value>,
    /// `erased` when personal fields of this order were erased (its customer was forgotten):
    /// they read `null`; amounts, status and history are intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_data: Option<String>,
    /// Stream version (also the `ETag`): send it back in `If-Match` to pin it.
    pub version: u64,
    /// Global position of the order's last event, once the feed has numbered it (on PostgreSQL
    /// a write answers before that, so its response has none; SQLite numbers at commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Names the state this response shows, `<id>:<version>`: pass it as `consistent_with` to a
    /// query to read at least this write (read-your-writes). Opaque to clients.
    #[serde(default)]
    pub consistency_token: String,
}

/// One line of an order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemResponse {
    /// The product.
    pub product_id: Uuid,
    /// SKU.
    pub sku: String,
    /// Units.
    pub quantity: u32,
    /// Price of one unit, minor units.
    pub unit_price: i64,
    /// quantity × unit price, minor units.
    pub line_total: i64,
}

impl OrderResponse {
    /// Renders `order` at `version` (position filled in later, once known).
    pub fn new(id: Uuid, order: &OrderAggregate, version: u64) -> Self {
        Self {
            id,
            customer_id: order.customer_id(),
            status: order.status().as_str().to_owned(),
            currency: order.currency().map(|c| c.as_str().to_owned()),
            items: order
                .items()
                .iter()
                .map(|item| ItemResponse {
                    product_id: item.product_id(),
                    sku: item.sku().as_str().to_owned(),
                    quantity: item.quantity().value(),
                    unit_price: item.unit_price().amount_minor(),
                    // Totals were checked for overflow when the order was created.
                    line_total: item
                        .line_total()
                        .map(|m| m.amount_minor())
                        .unwrap_or_default(),
                })
                .collect(),
            total: order.total().map(|t| t.amount_minor()),
            // Personal fields as the state holds them (sealed); revealed on the way out.
            cancellation_reason: order.cancellation_reason().map(stored_json),
            carrier: order.carrier().map(str::to_owned),
            tracking_number: order.tracking_number().map(str::to_owned),
            shipping_address: order.shipping_address().map(stored_json),
            contact: order.contact().map(stored_json),
            personal_data: None,
            version,
            position: None,
            consistency_token: ConsistencyToken {
                aggregate_id: id,
                version,
            }
            .to_string(),
        }
    }
}

/// `GET /orders/{id}` query: the current state, or (time travel) a past one.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// The order as it was after this version (1 = as created). Not with `at`.
    #[param(minimum = 1)]
    pub version: Option<u64>,
    /// The order as it was at this time (RFC 3339, e.g. `2026-12-01T10:00:00Z`): every event
    /// recorded at or before it. Not with `version`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `GET /orders/{id}/events` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// First version to return (default 1).
    pub from_version: Option<u64>,
    /// Last version to return (default: the latest).
    pub until_version: Option<u64>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// A page of an order's events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsPage {
    /// Events in version order.
    pub events: Vec<EventResponse>,
    /// Pass as `from_version` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_from_version: Option<u64>,
}

/// A stored event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventResponse {
    /// Event id (UUID v7).
    pub event_id: Uuid,
    /// Version in the order's stream.
    pub version: u64,
    /// Global position (absent for a moment after commit on PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// e.g. `OrderCreated`.
    pub event_type: String,
    /// Schema version of `payload`.
    pub schema_version: u32,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Correlation id, causation id, user, timestamp. A customer sees only the correlation and
    /// causation ids and a `user_id` that is their own (see [`EventResponse::for_customer`]).
    pub metadata: serde_json::Value,
    /// Commit time.
    pub recorded_at: DateTime<Utc>,
}

impl From<RecordedEvent> for EventResponse {
    fn from(e: RecordedEvent) -> Self {
        Self {
            event_id: e.event_id,
            version: e.version,
            position: e.position,
            event_type: e.event_type,
            schema_version: e.schema_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}

/// An order in a list (`GET /orders`): the fields of [`OrderResponse`], under the same names, and
/// when each transition happened. Fields the order does not have (yet) are absent, never `null`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedOrder {
    /// The order id.
    pub id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// `created`, `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The lines.
    #[schema(value_type = Vec<ItemResponse>)]
    pub items: serde_json::Value,
    /// Sum of the lines, in minor units.
    pub total: i64,
    /// Why it was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    /// Carrier, once shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// Stream version the read model reflects.
    pub version: u64,
    /// Global position of the last event the read model applied to this order.
    pub position: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Confirmation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Cancellation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Shipping time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipped_at: Option<DateTime<Utc>>,
    /// Delivery time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<order_views::OrderView> for ListedOrder {
    fn from(view: order_views::OrderView) -> Self {
        Self {
            id: view.order_id,
            customer_id: view.customer_id,
            status: view.status,
            currency: view.currency,
            items: view.items,
            total: view.total_minor,
            cancellation_reason: view.cancellation_reason,
            carrier: view.carrier,
            tracking_number: view.tracking_number,
            version: view.version,
            position: view.last_position,
            created_at: view.created_at,
            confirmed_at: view.confirmed_at,
            cancelled_at: view.cancelled_at,
            shipped_at: view.shipped_at,
            delivered_at: view.delivered_at,
        }
    }
}

/// `GET /stats`: orders per status, and the revenue of each day and currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    /// Orders per status; statuses without orders are absent.
    pub orders_by_status: std::collections::BTreeMap<String, i64>,
    /// Confirmed, not cancelled orders, by confirmation day and currency, oldest day first.
    pub revenue: Vec<DailyRevenue>,
}

/// One day's revenue in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyRevenue {
    /// The confirmation day (UTC), `YYYY-MM-DD`.
    pub day: chrono::NaiveDate,
    /// ISO 4217 code.
    pub currency: String,
    /// How many orders.
    pub orders: i64,
    /// Their totals' sum, in minor units.
    pub total: i64,
}

impl From<order_views::Stats> for StatsResponse {
    fn from(stats: order_views::Stats) -> Self {
        Self {
            orders_by_status: stats.orders_by_status.into_iter().collect(),
            revenue: stats
                .revenue
                .into_iter()
                .map(|(day, currency, orders, total)| DailyRevenue {
                    day,
                    currency,
                    orders,
                    total,
                })
                .collect(),
        }
    }
}

/// `GET /customers/{id}/summary`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerSummaryResponse {
    /// The customer.
    pub customer_id: Uuid,
    /// All its orders.
    pub orders: i64,
    /// Its orders per status; statuses without orders are absent.
    pub orders_by_status: std::collections::BTreeMap<String, i64>,
    /// Per currency: its confirmed, not cancelled orders and their totals.
    pub spend: Vec<CurrencySpend>,
    /// When it ordered first; absent without orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_order_at: Option<DateTime<Utc>>,
    /// When it ordered last; absent without orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_order_at: Option<DateTime<Utc>>,
    /// The summary's checkpoint when it answered.
    pub position: u64,
}

/// What a customer spent in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencySpend {
    /// ISO 4217 code.
    pub currency: String,
    /// Confirmed, not cancelled orders.
    pub orders: i64,
    /// Their totals' sum, in minor units.
    pub total: i64,
}

impl CustomerSummaryResponse {
    /// The response for `customer` from its stored summary at `position`.
    pub fn new(
        customer: Uuid,
        summary: order_views::customers::CustomerSummary,
        position: u64,
    ) -> Self {
        Self {
            customer_id: customer,
            orders: summary.orders,
            orders_by_status: summary.by_status.into_iter().collect(),
            spend: summary
                .spend
                .into_iter()
                .map(|(currency, orders, total)| CurrencySpend {
                    currency,
                    orders,
                    total,
                })
                .collect(),
            first_order_at: summary.first_order_at,
            last_order_at: summary.last_order_at,
            position,
        }
    }
}

/// The metadata keys a customer may see of an event of their order.
const CUSTOMER_METADATA: [&str; 3] = ["correlation_id", "causation_id", "timestamp"];

impl EventResponse {
    /// The event as the order's customer may see it: who else acted on the order (staff user
    /// ids) and internal tracing detail are left out; their own user id is kept.
    pub fn for_customer(mut self, customer_subject: &str) -> Self {
        if let serde_json::Value::Object(metadata) = &mut self.metadata {
            let own = metadata.get("user_id").and_then(serde_json::Value::as_str)
                == Some(customer_subject);
            metadata.retain(|key, _| {
                CUSTOMER_METADATA.contains(&key.as_str()) || (own && key == "user_id")
            });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(metadata: serde_json::Value) -> EventResponse {
        EventResponse {
            event_id: Uuid::nil(),
            version: 1,
            position: Some(1),
            event_type: "OrderConfirmed".into(),
            schema_version: 1,
            payload: json!({}),
            metadata,
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_customer_sees_neither_staff_ids_nor_trace_context() {
        let metadata = json!({
            "correlation_id": "c", "causation_id": "r", "user_id": "ops-alice",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        });
        let seen = event(metadata.clone()).for_customer("customer-1").metadata;
        assert_eq!(seen, json!({"correlation_id": "c", "causation_id": "r"}));
        let own = event(json!({"correlation_id": "c", "user_id": "customer-1"}))
            .for_customer("customer-1")
            .metadata;
        assert_eq!(own, json!({"correlation_id": "c", "user_id": "customer-1"}));
    }
}
