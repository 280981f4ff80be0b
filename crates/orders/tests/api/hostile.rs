//! Hostile and odd input (hardening): every header used or refused, text the backends would
//! store differently, numbers at the ends of their ranges, waits a client cannot pin. Each gets
//! the same 4xx on both backends and changes nothing.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, assert_problem, order_body, spawn_app};

crate::on_both_backends!(
    malformed_headers_are_refused_not_ignored,
    control_characters_in_text_are_422_on_both_backends,
    out_of_range_numbers_are_client_errors,
    an_unissued_position_is_refused_at_once,
    the_bearer_scheme_is_case_insensitive,
    an_order_total_beyond_the_maximum_is_422,
    a_customer_does_not_see_who_on_the_staff_acted,
);

async fn post_raw(
    app: &TestApp,
    path: &str,
    token: &str,
    headers: &[(&str, &[u8])],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&order_body());
    for (name, value) in headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request.send().await.unwrap()
}

async fn malformed_headers_are_refused_not_ignored(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let token = app.customer(customer);
    for (name, value, code) in [
        (
            "idempotency-key",
            "réf-42".as_bytes(),
            "invalid-idempotency-key",
        ),
        ("idempotency-key", b"two words", "invalid-idempotency-key"),
        ("if-match", "\"é\"".as_bytes(), "invalid-if-match"),
        ("x-correlation-id", b"order-42", "invalid-correlation-id"),
        ("traceparent", b"00-xyz-01", "invalid-traceparent"),
        ("x-request-id", b"<script>", "invalid-request-id"),
        ("x-request-id", "réq".as_bytes(), "invalid-request-id"),
    ] {
        // Sent twice: neither attempt may create an order.
        for _ in 0..2 {
            let response = post_raw(&app, "/orders", &token, &[(name, value)]).await;
            assert!(
                response
                    .headers()
                    .get("x-request-id")
                    .is_none_or(|v| v.as_bytes() != value),
                "a refused request id is not echoed"
            );
            assert_problem(response, StatusCode::BAD_REQUEST, code).await;
        }
    }
    let page = app.query("/orders", &token).await;
    assert_eq!(page["orders"], json!([]), "nothing was created");

    // Well-formed, they are used: the request id is echoed, the correlation id stored.
    let correlation = Uuid::now_v7();
    let response = post_raw(
        &app,
        "/orders",
        &token,
        &[
            ("x-request-id", b"client-req-7"),
            ("x-correlation-id", correlation.to_string().as_bytes()),
            (
                "traceparent",
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-request-id"], "client-req-7");
    let created: Value = response.json().await.unwrap();
    let events = app
        .query(
            &format!("/orders/{}/events", created["id"].as_str().unwrap()),
            &app.staff(),
        )
        .await;
    let metadata = &events["events"][0]["metadata"];
    assert_eq!(
        metadata["correlation_id"],
        correlation.to_string(),
        "{metadata}"
    );
    assert_eq!(
        metadata["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "{metadata}"
    );
}

async fn control_characters_in_text_are_422_on_both_backends(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let id = app.create_order(customer).await;
    let owner = app.customer(customer);
    for reason in ["late\u{0}", "bell\u{7}", "esc\u{1b}[31m", "two\r\nlines"] {
        let response = app
            .post(
                &format!("/orders/{id}/cancel"),
                &owner,
                Some(json!({ "reason": reason })),
            )
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-cancellation-reason",
        )
        .await;
    }
    let staff = app.staff();
    assert_eq!(
        app.post(&format!("/orders/{id}/confirm"), &staff, None)
            .await
            .status(),
        StatusCode::OK
    );
    for body in [
        json!({"carrier": "DHL\u{0}"}),
        json!({"tracking_number": "1\n2"}),
    ] {
        let response = app
            .post(&format!("/orders/{id}/ship"), &staff, Some(body))
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-shipping-details",
        )
        .await;
    }
    assert_eq!(
        app.event_types(id).await,
        ["OrderCreated", "OrderConfirmed"]
    );
}

async fn out_of_range_numbers_are_client_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff();
    let id = app.create_order(Uuid::now_v7()).await;
    // Past the end of the stream is an empty page, whatever the number.
    for from in [
        "3",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
    ] {
        let page = app
            .query(&format!("/orders/{id}/events?from_version={from}"), &staff)
            .await;
        assert_eq!(page["events"], json!([]), "from_version={from}");
    }
    // Not a number of the parameter's type: 400, naming the parameter.
    for (path, parameter) in [
        (
            format!("/orders/{id}/events?from_version=18446744073709551616"),
            "from_version",
        ),
        (
            format!("/orders/{id}/events?from_version=-1"),
            "from_version",
        ),
        (format!("/orders/{id}/events?limit=x"), "limit"),
        ("/orders?min_position=-5".to_owned(), "min_position"),
        ("/orders?limit=99999999999999999999999".to_owned(), "limit"),
    ] {
        let body = assert_problem(
            app.get(&path, &staff).await,
            StatusCode::BAD_REQUEST,
            "invalid-query",
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap().contains(parameter),
            "{path}: {body}"
        );
    }
}

async fn an_unissued_position_is_refused_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff();
    app.create_order(Uuid::now_v7()).await;
    let started = Instant::now();
    for path in [
        "/orders?min_position=1000000",
        "/stats?min_position=18446744073709551615",
    ] {
        assert_problem(
            app.get(path, &staff).await,
            StatusCode::BAD_REQUEST,
            "position-not-issued",
        )
        .await;
    }
    assert!(
        started.elapsed() < app.config.read_wait,
        "refused without waiting for the read model"
    );
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.staff();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .client
            .get(app.url("/stats"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

async fn an_order_total_beyond_the_maximum_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let token = app.customer(customer);
    let line = |unit_price: i64| {
        json!({ "currency": "EUR", "items": [
            { "product_id": Uuid::now_v7(), "sku": "GOLD", "quantity": 1, "unit_price": unit_price }
        ]})
    };
    let response = app.post("/orders", &token, Some(line(i64::MAX))).await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "amount-overflow",
    )
    .await;
    // Two orders at the maximum, confirmed the same day, add up in the summary without trouble.
    let staff = app.staff();
    let mut last = Value::Null;
    for _ in 0..2 {
        let response = app
            .post("/orders", &token, Some(line(domain::MAX_ORDER_TOTAL_MINOR)))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        let response = app
            .post(
                &format!("/orders/{}/confirm", created["id"].as_str().unwrap()),
                &staff,
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        last = response.json().await.unwrap();
    }
    let token = last["consistency_token"].as_str().unwrap();
    let stats = app
        .query(&format!("/stats?consistent_with={token}"), &staff)
        .await;
    assert!(
        stats
            .to_string()
            .contains(&(2 * domain::MAX_ORDER_TOTAL_MINOR).to_string()),
        "{stats}"
    );
}

async fn a_customer_does_not_see_who_on_the_staff_acted(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let id = app.create_order(customer).await;
    let staff = app.staff();
    assert_eq!(
        app.post(&format!("/orders/{id}/confirm"), &staff, None)
            .await
            .status(),
        StatusCode::OK
    );
    let path = format!("/orders/{id}/events");
    let seen = app.query(&path, &app.customer(customer)).await;
    let created = &seen["events"][0]["metadata"];
    let confirmed = &seen["events"][1]["metadata"];
    assert_eq!(
        created["user_id"],
        customer.to_string(),
        "their own id: {created}"
    );
    assert!(
        confirmed.get("user_id").is_none(),
        "a staff id: {confirmed}"
    );
    assert!(confirmed.get("correlation_id").is_some(), "{confirmed}");
    let as_staff = app.query(&path, &staff).await;
    assert_eq!(as_staff["events"][1]["metadata"]["user_id"], "ops");
}

/// One caller cannot hold any number of queries waiting for the read model: with the projection
/// stalled (PostgreSQL, its checkpoint row locked by another transaction), a customer's ninth
/// simultaneous read-your-writes query is 429 at once, and the eight others are answered once
/// the projection moves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_has_a_bounded_number_of_waiting_queries() {
    use sqlx::Connection;
    let app = crate::harness::spawn_app_with(Backend::Postgres, |config| {
        config.read_wait = std::time::Duration::from_secs(20);
    })
    .await;
    let customer = Uuid::now_v7();
    let token = app.customer(customer);
    app.create_order(customer).await;
    let mut stall = sqlx::PgConnection::connect(app.database_url.as_deref().unwrap())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut stall).await.unwrap();
    sqlx::query("SELECT 1 FROM projections WHERE name = $1 FOR UPDATE")
        .bind(order_views::ORDERS_PROJECTION)
        .execute(&mut stall)
        .await
        .unwrap();
    let response = app.post("/orders", &token, Some(order_body())).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let written: Value = response.json().await.unwrap();
    let position = app.feed_position(&written).await;
    let path = format!("/orders?min_position={position}");
    let waiting: Vec<_> = (0..orders::http::MAX_WAITS_PER_CALLER + 1)
        .map(|_| {
            let request = app.client.get(app.url(&path)).bearer_auth(&token).send();
            tokio::spawn(request)
        })
        .collect();
    // While the projection is stalled only a refused query can finish: wait for it.
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    while !waiting.iter().any(tokio::task::JoinHandle::is_finished) {
        assert!(Instant::now() < deadline, "no query was refused");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sqlx::raw_sql("ROLLBACK").execute(&mut stall).await.unwrap();
    let mut statuses = Vec::new();
    for request in waiting {
        statuses.push(request.await.unwrap().unwrap().status());
    }
    statuses.sort();
    let mut expected = vec![StatusCode::OK; orders::http::MAX_WAITS_PER_CALLER];
    expected.push(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(statuses, expected);
    // Another caller is not affected.
    let staff = app.query(&path, &app.staff()).await;
    assert_eq!(staff["orders"].as_array().unwrap().len(), 2, "{staff}");
}
