//! Staff endpoints for the read models: their state, and their parked events retried or skipped.

use event_store::{EventStore, ExpectedVersion, NewEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, assert_problem, spawn_app};

crate::on_both_backends!(staff_see_the_read_models_and_operate_their_parked_events);

async fn staff_see_the_read_models_and_operate_their_parked_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = store::Store::open(&app.config.database).await.unwrap();
    let broken = Uuid::now_v7();
    let event = NewEvent::new("Order", "OrderTeleported", 1, json!({}));
    store
        .append_events(broken, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let position = store.global_position(broken, 1).await.unwrap();
    let id = app.create_order(Uuid::now_v7()).await;
    let staff = app.staff();
    // Both read models have passed the bad event once the new order is in the list.
    let created = app.get(&format!("/orders/{id}"), &staff).await;
    let token: Value = created.json().await.unwrap();
    let token = token["consistency_token"].as_str().unwrap().to_owned();
    app.query(&format!("/orders?consistent_with={token}"), &staff)
        .await;
    app.query(
        &format!(
            "/customers/{}/summary?consistent_with={token}",
            Uuid::now_v7()
        ),
        &staff,
    )
    .await;

    let models: Value = app.query("/projections", &staff).await;
    let names: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "customer-summaries"]);
    for model in models.as_array().unwrap() {
        assert_eq!(model["parked"], 1, "{model}");
        assert_eq!(
            model["holder"]["instance"],
            json!(app.config.instance_id),
            "{model}"
        );
        assert!(model["holder"]["expires_in_seconds"].as_f64().unwrap() > 0.0);
        assert!(model["position"].as_u64().unwrap() >= position);
    }

    let parked: Value = app.query("/projections/orders/parked", &staff).await;
    assert_eq!(parked.as_array().unwrap().len(), 1);
    assert_eq!(parked[0]["position"], position);
    assert!(
        parked[0]["error"]
            .as_str()
            .unwrap()
            .contains("OrderTeleported")
    );

    let retry = format!("/projections/orders/parked/{position}/retry");
    let again = app.post(&retry, &staff, None).await;
    assert_problem(again, StatusCode::CONFLICT, "still-fails").await;
    let skip = format!("/projections/orders/parked/{position}/skip");
    assert_eq!(
        app.post(&skip, &staff, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.post(&skip, &staff, None).await,
        StatusCode::NOT_FOUND,
        "not-parked",
    )
    .await;
    let left: Value = app.query("/projections/orders/parked", &staff).await;
    assert_eq!(left, json!([]));
    let other: Value = app
        .query("/projections/customer-summaries/parked", &staff)
        .await;
    assert_eq!(
        other.as_array().unwrap().len(),
        1,
        "the other read model's is its own"
    );

    let customer = app.customer(Uuid::now_v7());
    assert_problem(
        app.get("/projections", &customer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post(&skip, &customer, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/projections/nope/parked", &staff).await,
        StatusCode::NOT_FOUND,
        "projection-not-found",
    )
    .await;
    assert_problem(
        app.post("/projections/orders/parked/-1/retry", &staff, None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid-path",
    )
    .await;
}
