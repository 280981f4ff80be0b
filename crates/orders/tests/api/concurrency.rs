//! Many clients, one order: exactly the valid commands succeed and the stream has no gaps.

use std::collections::BTreeSet;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, spawn_app};

crate::on_both_backends!(sixty_four_concurrent_commands_on_one_order);

const CLIENTS: usize = 64;

async fn sixty_four_concurrent_commands_on_one_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let order = app.create_order(customer).await;
    let (staff, owner) = (app.staff(), app.customer(customer));

    // A quarter each: confirm, ship, deliver, cancel. Whatever the interleaving, the valid
    // sequences are prefixes of confirm → ship → deliver, with a cancel possible before ship.
    let requests = (0..CLIENTS).map(|i| {
        let (action, token, body) = match i % 4 {
            0 => ("confirm", &staff, None),
            1 => ("ship", &staff, None),
            2 => ("deliver", &staff, None),
            _ => (
                "cancel",
                &owner,
                Some(json!({"reason": format!("client {i}")})),
            ),
        };
        let app = &app;
        async move {
            (
                action,
                app.post(&format!("/orders/{order}/{action}"), token, body)
                    .await,
            )
        }
    });
    let responses = join_all(requests).await;

    let mut versions = BTreeSet::new();
    for (action, response) in responses {
        match response.status() {
            StatusCode::OK => {
                let body: Value = response.json().await.unwrap();
                assert!(
                    versions.insert(body["version"].as_u64().unwrap()),
                    "two successes got the same version"
                );
            }
            StatusCode::CONFLICT => {}
            other => panic!(
                "{action}: unexpected {other}: {}",
                response.text().await.unwrap()
            ),
        }
    }
    let events = app.event_types(order).await;
    // Every success wrote exactly one event, at its own version, and nothing else was written.
    assert_eq!(versions, (2..=events.len() as u64).collect::<BTreeSet<_>>());
    let valid = [
        vec!["OrderCreated", "OrderCancelled"],
        vec!["OrderCreated", "OrderConfirmed"],
        vec!["OrderCreated", "OrderConfirmed", "OrderCancelled"],
        vec!["OrderCreated", "OrderConfirmed", "OrderShipped"],
        vec![
            "OrderCreated",
            "OrderConfirmed",
            "OrderShipped",
            "OrderDelivered",
        ],
    ];
    assert!(
        valid.iter().any(|v| *v == events),
        "not a valid lifecycle: {events:?}"
    );

    let page: Value = app
        .get(&format!("/orders/{order}/events"), &staff)
        .await
        .json()
        .await
        .unwrap();
    let stored: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        stored,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "no gaps"
    );
}
