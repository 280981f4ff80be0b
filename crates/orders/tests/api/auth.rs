//! Authentication and authorisation.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Backend, assert_problem, order_body, spawn_app};

crate::on_both_backends!(
    requests_without_a_valid_token_are_401,
    customers_only_see_and_cancel_their_own_orders,
    roles_limit_what_callers_may_do
);

async fn requests_without_a_valid_token_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app
        .client
        .post(app.url("/orders"))
        .json(&order_body())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let forged = app.post("/orders", "not.a.token", Some(order_body())).await;
    assert_problem(forged, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let foreign = orders::auth::JwtKeys::new(b"some other secret of sufficient length!!")
        .issue(
            "ops",
            orders::auth::Role::Staff,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    assert_problem(
        app.get(&format!("/orders/{}", Uuid::now_v7()), &foreign)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

async fn customers_only_see_and_cancel_their_own_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let order = app.create_order(alice).await;
    let bob_token = app.customer(bob);
    // Bob cannot tell Alice's order from one that does not exist.
    assert_problem(
        app.get(&format!("/orders/{order}"), &bob_token).await,
        StatusCode::NOT_FOUND,
        "order-not-found",
    )
    .await;
    assert_problem(
        app.get(&format!("/orders/{order}/events"), &bob_token)
            .await,
        StatusCode::NOT_FOUND,
        "order-not-found",
    )
    .await;
    let cancel = app
        .post(
            &format!("/orders/{order}/cancel"),
            &bob_token,
            Some(json!({"reason": "mine now"})),
        )
        .await;
    assert_problem(cancel, StatusCode::NOT_FOUND, "order-not-found").await;
    assert_eq!(app.event_types(order).await, ["OrderCreated"]);
    // Alice and staff see it.
    assert_eq!(
        app.get(&format!("/orders/{order}"), &app.customer(alice))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/orders/{order}"), &app.staff())
            .await
            .status(),
        StatusCode::OK
    );
}

async fn roles_limit_what_callers_may_do(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = Uuid::now_v7();
    let alice_token = app.customer(alice);
    let mut for_bob = order_body();
    for_bob["customer_id"] = json!(Uuid::now_v7());
    assert_problem(
        app.post("/orders", &alice_token, Some(for_bob.clone()))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Staff may order for a named customer, and must name one.
    assert_eq!(
        app.post("/orders", &app.staff(), Some(for_bob))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_problem(
        app.post("/orders", &app.staff(), Some(order_body())).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing-customer-id",
    )
    .await;

    let order = app.create_order(alice).await;
    for action in ["confirm", "ship", "deliver"] {
        let response = app
            .post(&format!("/orders/{order}/{action}"), &alice_token, None)
            .await;
        assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(app.event_types(order).await, ["OrderCreated"]);
}
