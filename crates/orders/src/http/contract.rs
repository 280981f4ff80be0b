//! What the generated OpenAPI document cannot say from the handlers' annotations alone, added in
//! one place so that `/openapi.json` describes what the server does (schemathesis checks it, see
//! `scripts/schemathesis.sh`):
//! - the problem responses every operation can give, as `application/problem+json`;
//! - the headers the server reads, with the formats it accepts;
//! - the value constraints of bodies and parameters, from the same constants the domain and
//!   handlers enforce;
//! - links from a created order to the operations on it, so that a client (or a stateful test)
//!   can follow them.

use serde_json::{Map, Value, json};

use super::consistency::MAX_TOKENS;
use super::extract::MAX_REQUEST_ID_LEN;

/// Every problem status with what it means in this API.
const PROBLEMS: [(u16, &str); 13] = [
    (
        400,
        "Malformed request: a path, query parameter, header or JSON body that does not parse",
    ),
    (401, "No token, or an invalid, expired or foreign one"),
    (403, "The caller's role may not do this"),
    (404, "No such order (or another customer's)"),
    (
        408,
        "The request took too long (a command may still have been applied: retry with its Idempotency-Key)",
    ),
    (
        409,
        "Not allowed in the order's current status, or lost the race for its next version",
    ),
    (412, "If-Match names a version the order is not at"),
    (413, "The body is too large"),
    (415, "The body is not JSON"),
    (422, "The request is well-formed but breaks a rule"),
    (
        429,
        "Too many of the caller's queries are waiting for the read model",
    ),
    (500, "A bug or unreadable stored data"),
    (
        503,
        "The store or the read model is unavailable or behind (may hide a commit for a command: retry with its Idempotency-Key)",
    ),
];

/// The problem statuses of an operation.
fn problems(method: &str, path: &str) -> &'static [u16] {
    match (method, path) {
        ("post", "/orders") => &[400, 401, 403, 408, 409, 412, 413, 415, 422, 500, 503],
        ("post", _) => &[400, 401, 403, 404, 408, 409, 412, 413, 415, 422, 500, 503],
        ("get", "/orders/{id}" | "/orders/{id}/events") => &[400, 401, 404, 408, 500, 503],
        ("get", "/orders" | "/stats") => &[400, 401, 403, 408, 422, 429, 500, 503],
        // Health, metrics, docs: only a malformed X-Request-Id is refused.
        _ => &[400, 408],
    }
}

/// The headers every operation reads, and those the commands read.
fn header_parameters(method: &str) -> Vec<Value> {
    let mut headers = vec![json!({
        "name": "X-Request-Id", "in": "header", "required": false,
        "description": "Echoed in the response and logged; a UUID is also the events' causation id. Without one the server makes one.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID_LEN, "pattern": "^[A-Za-z0-9._:/+=@-]+$"}
    })];
    if method == "post" {
        headers.extend([
            json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Makes the command safe to retry: a retry gets the original answer, however it overlaps the original. Keys are remembered for the server's ORDERS_IDEMPOTENCY_RETENTION (24 hours by default); a later request under the same key is a new request.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
            }),
            json!({
                "name": "If-Match", "in": "header", "required": false,
                "description": "The version the command expects the order to be at, as the ETag shows it (\"3\"). Empty: no precondition.",
                "schema": {"type": "string", "pattern": "^((W/)?\"[0-9]{1,18}\")?$"}
            }),
            json!({
                "name": "X-Correlation-Id", "in": "header", "required": false,
                "description": "Stored in the events' metadata; defaults to the request id.",
                "schema": {"type": "string", "format": "uuid"}
            }),
            json!({
                "name": "traceparent", "in": "header", "required": false,
                "description": "W3C Trace Context, stored with the events. Empty: none.",
                "schema": {"type": "string", "pattern": format!("^(00-{}-{}-[0-9a-f]{{2}})?$", non_zero_hex(32), non_zero_hex(16))}
            }),
        ]);
    }
    headers
}

/// A regular expression for `len` lowercase hex digits, not all zero, without lookahead (which
/// generators of test data handle poorly): the first non-zero digit at each place in turn.
fn non_zero_hex(len: usize) -> String {
    let branches: Vec<String> = (0..len)
        .map(|zeros| format!("0{{{zeros}}}[1-9a-f][0-9a-f]{{{}}}", len - zeros - 1))
        .collect();
    format!("(?:{})", branches.join("|"))
}

/// Constraints on query parameters, by name.
fn query_constraints(name: &str) -> Option<Value> {
    Some(match name {
        "limit" => json!({"minimum": 1}),
        // The server takes any u64 (utoipa would say int64).
        "from_version" | "until_version" | "min_position" | "position" => {
            json!({"minimum": 0, "maximum": u64::MAX, "format": null})
        }
        "version" => json!({"minimum": 1, "maximum": u64::MAX, "format": null}),
        "status" => json!({"enum": ["created", "confirmed", "shipped", "delivered", "cancelled"]}),
        // 1 to 32 hex digits, hyphens anywhere (ignored).
        "id_prefix" => json!({"pattern": "^-*(?:[0-9a-fA-F]-*){1,32}$"}),
        "consistent_with" => {
            let token = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}:[1-9][0-9]{0,17}";
            json!({"pattern": format!("^{token}(,{token}){{0,{}}}$", MAX_TOKENS - 1)})
        }
        _ => return None,
    })
}

/// A text field's schema: trimmed non-blank, no control characters, at most `max` characters.
fn text(max: usize) -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": max,
        "pattern": "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x1F\\x7F-\\x9F]*$"
    })
}

/// Completes the generated document `doc` (see the module docs).
pub(super) fn complete(doc: &mut Value) {
    constrain_schemas(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            complete_operation(method, path, operation);
        }
    }
    if let Some(created) = doc.pointer_mut("/paths/~1orders/post/responses/201") {
        created["links"] = order_links();
    }
    // The read-model queries say which server answered (staff only; ADR 0021).
    for pointer in [
        "/paths/~1orders/get/responses/200",
        "/paths/~1stats/get/responses/200",
        "/paths/~1customers~1{id}~1summary/get/responses/200",
    ] {
        if let Some(ok) = doc.pointer_mut(pointer) {
            ok["headers"] = json!({ "X-Served-By": {
                "description": "For staff: the server that answered, the primary or a hot standby of DATABASE_READ_URL.",
                "schema": { "type": "string", "enum": ["primary", "standby"] }
            }});
        }
    }
}

fn complete_operation(method: &str, path: &str, operation: &mut Map<String, Value>) {
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    if let Some(parameters) = parameters.as_array_mut() {
        parameters.retain(|p| p["in"] != "header");
        for parameter in parameters.iter_mut() {
            let name = parameter["name"].as_str().unwrap_or_default().to_owned();
            let maximum = match (path, name.as_str()) {
                ("/orders", "limit") => Some(super::queries::MAX_PAGE),
                ("/orders/{id}/events", "limit") => Some(super::orders::MAX_EVENTS_PAGE),
                _ => None,
            };
            if let (Some(constraints), Some(schema)) = (
                query_constraints(&name),
                parameter.get_mut("schema").and_then(Value::as_object_mut),
            ) {
                if let Some(constraints) = constraints.as_object() {
                    schema.extend(constraints.clone());
                }
                schema.retain(|_, value| !value.is_null()); // a `null` constraint removes one
                if let Some(maximum) = maximum {
                    schema.insert("maximum".into(), json!(maximum));
                }
            }
        }
        parameters.extend(header_parameters(method));
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for status in problems(method, path) {
        let description = PROBLEMS
            .iter()
            .find(|(code, _)| code == status)
            .map_or("Error", |(_, description)| description);
        let response = responses
            .entry(status.to_string())
            .or_insert_with(|| json!({ "description": description }));
        response["content"] = json!({
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        });
    }
    // Errors are problem+json, whatever an annotation said.
    for (status, response) in responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            response["content"] = json!({
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            });
        }
    }
}

/// Value constraints of the request bodies, from the constants the domain enforces.
fn constrain_schemas(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let set =
        |schemas: &mut Map<String, Value>, schema: &str, property: &str, constraints: Value| {
            if let (Some(target), Some(constraints)) = (
                schemas
                    .get_mut(schema)
                    .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
                    .and_then(Value::as_object_mut),
                constraints.as_object(),
            ) {
                target.extend(constraints.clone());
            }
        };
    let codes = domain::Currency::all_codes();
    set(
        schemas,
        "CreateOrderRequest",
        "currency",
        json!({"enum": codes}),
    );
    set(
        schemas,
        "CreateOrderRequest",
        "items",
        json!({"minItems": 1, "maxItems": domain::MAX_ITEMS}),
    );
    set(
        schemas,
        "ItemRequest",
        "sku",
        json!({"minLength": 1, "maxLength": domain::MAX_SKU_LEN, "pattern": "^[A-Za-z0-9._-]+$"}),
    );
    set(
        schemas,
        "ItemRequest",
        "quantity",
        json!({"minimum": 1, "maximum": domain::MAX_QUANTITY}),
    );
    set(
        schemas,
        "ItemRequest",
        "unit_price",
        json!({"minimum": 0, "maximum": domain::MAX_ORDER_TOTAL_MINOR}),
    );
    set(
        schemas,
        "CancelOrderRequest",
        "reason",
        text(domain::MAX_CANCELLATION_REASON_LEN),
    );
    for (property, max) in [
        ("recipient_name", domain::MAX_RECIPIENT_NAME_LEN),
        ("line1", domain::MAX_ADDRESS_LINE_LEN),
        ("postal_code", domain::MAX_POSTAL_CODE_LEN),
        ("city", domain::MAX_CITY_LEN),
    ] {
        set(schemas, "AddressRequest", property, text(max));
    }
    set(
        schemas,
        "AddressRequest",
        "country",
        json!({"enum": domain::ShippingAddress::country_codes()}),
    );
    // The email's syntax is the `email_address` crate's (422 `invalid-contact`); the document
    // states what every accepted address also is: a text field of at most MAX_EMAIL_LEN.
    set(
        schemas,
        "ContactRequest",
        "email",
        text(domain::MAX_EMAIL_LEN),
    );
    // Blank, or `+` and digits with separators (the digit count is checked by the domain, 422).
    set(
        schemas,
        "ContactRequest",
        "phone",
        json!({"type": ["string", "null"], "pattern": "^\\s*(?:\\+[0-9 .()-]*)?\\s*$"}),
    );
    for (property, max) in [
        ("carrier", domain::MAX_CARRIER_LEN),
        ("tracking_number", domain::MAX_TRACKING_NUMBER_LEN),
    ] {
        let mut schema = text(max);
        schema["type"] = json!(["string", "null"]);
        set(schemas, "ShipOrderRequest", property, schema);
    }
}

/// From a created order to what can be done with it; `id` is the created order's.
fn order_links() -> Value {
    let mut links = Map::new();
    for (name, operation) in [
        ("GetOrder", "get_order"),
        ("GetOrderEvents", "get_order_events"),
        ("ConfirmOrder", "confirm_order"),
        ("CancelOrder", "cancel_order"),
        ("ShipOrder", "ship_order"),
        ("DeliverOrder", "deliver_order"),
    ] {
        links.insert(
            name.to_owned(),
            json!({"operationId": operation, "parameters": {"id": "$response.body#/id"}}),
        );
    }
    Value::Object(links)
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::*;

    fn completed() -> Value {
        let mut doc = serde_json::to_value(super::super::ApiDoc::openapi()).unwrap();
        complete(&mut doc);
        doc
    }

    #[test]
    fn the_served_document_is_the_completed_one() {
        assert_eq!(super::super::document(), completed());
    }

    #[test]
    fn every_error_is_problem_json_and_every_protected_operation_can_be_401() {
        let doc = completed();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"]["application/problem+json"].is_object(),
                            "{method} {path} {status}"
                        );
                    }
                }
                if operation.get("security").is_some() {
                    assert!(responses.contains_key("401"), "{method} {path}");
                }
                assert!(
                    responses.contains_key("400"),
                    "{method} {path}: X-Request-Id"
                );
            }
        }
    }

    #[test]
    fn the_traceparent_pattern_is_the_parser() {
        let pattern = format!("^{}$", non_zero_hex(4));
        let matches = |text: &str| {
            // The pattern is a union of fixed-length alternatives: check by expanding it.
            (0..4).any(|zeros| {
                text.len() == 4
                    && text[..zeros].bytes().all(|b| b == b'0')
                    && text.as_bytes()[zeros] != b'0'
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
        };
        assert_eq!(
            pattern,
            "^(?:0{0}[1-9a-f][0-9a-f]{3}|0{1}[1-9a-f][0-9a-f]{2}|0{2}[1-9a-f][0-9a-f]{1}|0{3}[1-9a-f][0-9a-f]{0})$"
        );
        assert!(matches("0001") && matches("a000") && !matches("0000"));
    }

    #[test]
    fn constraints_come_from_the_domain_limits() {
        let doc = completed();
        let item = &doc["components"]["schemas"]["ItemRequest"]["properties"];
        assert_eq!(item["quantity"]["maximum"], domain::MAX_QUANTITY);
        assert_eq!(item["unit_price"]["maximum"], domain::MAX_ORDER_TOTAL_MINOR);
        assert_eq!(item["sku"]["maxLength"], domain::MAX_SKU_LEN);
        let reason = &doc["components"]["schemas"]["CancelOrderRequest"]["properties"]["reason"];
        assert_eq!(reason["maxLength"], domain::MAX_CANCELLATION_REASON_LEN);
        let currency =
            &doc["components"]["schemas"]["CreateOrderRequest"]["properties"]["currency"];
        assert!(currency["enum"].as_array().unwrap().contains(&json!("EUR")));
        assert!(!currency["enum"].as_array().unwrap().contains(&json!("ABC")));
        let address = &doc["components"]["schemas"]["AddressRequest"]["properties"];
        assert_eq!(
            address["recipient_name"]["maxLength"],
            domain::MAX_RECIPIENT_NAME_LEN
        );
        assert_eq!(address["line1"]["maxLength"], domain::MAX_ADDRESS_LINE_LEN);
        assert_eq!(
            address["postal_code"]["maxLength"],
            domain::MAX_POSTAL_CODE_LEN
        );
        assert_eq!(address["city"]["maxLength"], domain::MAX_CITY_LEN);
        let countries = address["country"]["enum"].as_array().unwrap();
        assert!(countries.contains(&json!("DE")) && !countries.contains(&json!("XX")));
        let contact = &doc["components"]["schemas"]["ContactRequest"]["properties"];
        assert_eq!(contact["email"]["maxLength"], domain::MAX_EMAIL_LEN);
        assert!(
            contact["phone"]["pattern"]
                .as_str()
                .unwrap()
                .contains("\\+")
        );
        let links = &doc["paths"]["/orders"]["post"]["responses"]["201"]["links"];
        assert_eq!(links["ConfirmOrder"]["operationId"], "confirm_order");
        for path in ["/orders", "/stats", "/customers/{id}/summary"] {
            let served_by =
                &doc["paths"][path]["get"]["responses"]["200"]["headers"]["X-Served-By"];
            assert_eq!(
                served_by["schema"]["enum"],
                json!(["primary", "standby"]),
                "{path}"
            );
        }
    }
}
