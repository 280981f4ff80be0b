//! The OpenAPI 3.1 document, generated from the handlers, and the docs page (served locally).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;
use super::dto::{
    CancelOrderRequest, CreateOrderRequest, EventResponse, EventsPage, ItemRequest, ItemResponse,
    OrderResponse, ShipOrderRequest,
};
use super::problem::Problem;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "orders", description = "Event-sourced order service. Errors are RFC 9457 problem+json. Every write answers with the order's `version` (also the `ETag`) and the global `position` of its last event."),
    paths(
        super::orders::create_order, super::orders::get_order, super::orders::get_order_events,
        super::orders::confirm_order, super::orders::cancel_order, super::orders::ship_order,
        super::orders::deliver_order, super::orders::change_shipping_address, super::personal::forget, super::health::live, super::health::ready,
        super::queries::list_orders, super::queries::stats, super::queries::customer_summary, super::metrics::metrics,
        super::projections::list, super::projections::parked, super::projections::retry, super::projections::skip,
        super::streams::feed_stream, super::streams::customer_stream,
        super::webhooks::register, super::webhooks::list, super::webhooks::show, super::webhooks::update, super::webhooks::delete, super::webhooks::replay, super::webhooks::rotate_secret,
    ),
    components(schemas(CreateOrderRequest, ItemRequest, super::dto::AddressRequest, super::dto::ContactRequest, super::dto::ChangeAddressRequest, super::personal::ForgetResponse, CancelOrderRequest, ShipOrderRequest, OrderResponse, ItemResponse, EventsPage, EventResponse, Problem,
        super::queries::OrderPage, super::dto::ListedOrder, super::dto::StatsResponse, super::dto::DailyRevenue, super::dto::CustomerSummaryResponse, super::dto::CurrencySpend,
        super::projections::ProjectionState, super::projections::LeaseHolder, super::projections::ParkedEventResponse,
        super::webhooks::RegisterWebhookRequest, super::webhooks::UpdateWebhookRequest, super::webhooks::SettableState, super::webhooks::ReplayRequest, super::webhooks::WebhookState,
        super::webhooks::AttemptResponse, super::webhooks::WebhookResponse, super::webhooks::WebhookWithSecret)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document `/openapi.json` serves: what the annotations generate, completed by
/// [`super::contract`] with what every operation shares. JSON rather than utoipa's types, which
/// cannot hold everything the completion adds (`links`, regular expressions, constraints on
/// parameters).
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    super::contract::complete(&mut doc);
    doc
}

/// `/openapi.json` and the Swagger UI at `/docs` (assets vendored into the binary: no CDN).
pub fn routes() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", document()))
}
