//! The read side over HTTP: lists, the summary, read-your-writes, rebuilds, restarts, parking.

use event_store::{EventStore, ExpectedVersion, NewEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, assert_problem, order_body, spawn_app};

crate::on_both_backends!(
    lists_filter_page_and_read_their_writes,
    the_summary_counts_statuses_and_revenue,
    a_rebuilt_read_model_equals_the_live_one,
    a_restart_resumes_the_projection_without_loss_or_duplicates,
    an_event_the_projection_cannot_apply_is_parked_and_the_rest_continue,
    a_consistency_token_reads_the_write_it_names,
    malformed_and_unknown_consistency_tokens_are_refused,
    an_order_has_one_shape_in_a_list_and_on_its_own,
    lists_find_orders_by_id_prefix_and_creation_time,
);

/// Creates an order for `customer` and returns (id, position of the write in the feed).
async fn create(app: &TestApp, customer: Uuid) -> (Uuid, u64) {
    let body: Value = app
        .post("/orders", &app.customer(customer), Some(order_body()))
        .await
        .json()
        .await
        .unwrap();
    (
        body["id"].as_str().unwrap().parse().unwrap(),
        app.feed_position(&body).await,
    )
}

/// Creates an order for `customer` and returns (id, consistency token of the write).
async fn create_for_token(app: &TestApp, customer: Uuid) -> (Uuid, String) {
    let body: Value = app
        .post("/orders", &app.customer(customer), Some(order_body()))
        .await
        .json()
        .await
        .unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(body["consistency_token"], format!("{id}:1"));
    (
        id.parse().unwrap(),
        body["consistency_token"].as_str().unwrap().to_owned(),
    )
}

async fn act(app: &TestApp, id: Uuid, action: &str) -> u64 {
    let body = if action == "cancel" {
        Some(json!({"reason": "test"}))
    } else {
        None
    };
    let response = app
        .post(&format!("/orders/{id}/{action}"), &app.staff(), body)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{action}");
    let body = response.json::<Value>().await.unwrap();
    app.feed_position(&body).await
}

fn ids(page: &Value) -> Vec<String> {
    page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn lists_filter_page_and_read_their_writes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut alices = Vec::new();
    for _ in 0..5 {
        alices.push(create(&app, alice).await.0);
    }
    let (bobs, _) = create(&app, bob).await;
    let position = act(&app, alices[0], "confirm").await;

    // Read-your-writes: the confirmation is visible as soon as the list answers.
    let confirmed = app
        .query(
            &format!("/orders?status=confirmed&min_position={position}"),
            &app.staff(),
        )
        .await;
    assert_eq!(ids(&confirmed), [alices[0].to_string()]);
    assert!(confirmed["position"].as_u64().unwrap() >= position);
    assert!(confirmed["orders"][0]["confirmed_at"].is_string());

    // A customer sees only its own orders, newest first, a page at a time.
    let token = app.customer(alice);
    let first = app
        .query(&format!("/orders?limit=3&min_position={position}"), &token)
        .await;
    let expected: Vec<String> = alices.iter().rev().map(Uuid::to_string).collect();
    assert_eq!(ids(&first), expected[..3]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .query(&format!("/orders?limit=3&cursor={cursor}"), &token)
        .await;
    assert_eq!(ids(&second), expected[3..]);
    assert_eq!(second["next_cursor"], Value::Null);
    assert!(!ids(&first).contains(&bobs.to_string()));

    assert_problem(
        app.get(&format!("/orders?customer={bob}"), &token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/orders?status=lost", &token).await,
        StatusCode::BAD_REQUEST,
        "invalid-status",
    )
    .await;
    assert_problem(
        app.get("/orders?limit=0", &token).await,
        StatusCode::BAD_REQUEST,
        "invalid-limit",
    )
    .await;
    assert_problem(
        app.get("/orders?cursor=nope", &token).await,
        StatusCode::BAD_REQUEST,
        "invalid-query",
    )
    .await;
}

async fn the_summary_counts_statuses_and_revenue(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let mut last = 0;
    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(create(&app, customer).await.0);
    }
    for action in ["confirm", "ship", "deliver"] {
        last = act(&app, orders[0], action).await;
    }
    act(&app, orders[1], "confirm").await;
    last = last.max(act(&app, orders[1], "cancel").await);
    last = last.max(act(&app, orders[2], "confirm").await);

    let stats = app
        .query(&format!("/stats?min_position={last}"), &app.staff())
        .await;
    assert_eq!(
        stats["orders_by_status"],
        json!({"cancelled": 1, "confirmed": 1, "created": 1, "delivered": 1})
    );
    // Two confirmed orders still count (one delivered, one confirmed); the cancelled one does not.
    let revenue = stats["revenue"].as_array().unwrap();
    assert_eq!(revenue.len(), 1);
    assert_eq!(
        (
            revenue[0]["currency"].as_str(),
            revenue[0]["orders"].as_i64(),
            revenue[0]["total"].as_i64()
        ),
        (Some("EUR"), Some(2), Some(2 * 2499))
    );
    assert_problem(
        app.get("/stats", &app.customer(customer)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

/// Everything the read model says, through the API.
async fn snapshot_of_read_model(app: &TestApp, min_position: u64) -> (Value, Value) {
    let list = app
        .query(
            &format!("/orders?limit=100&min_position={min_position}"),
            &app.staff(),
        )
        .await;
    let stats = app.query("/stats", &app.staff()).await;
    (list["orders"].clone(), stats)
}

async fn a_rebuilt_read_model_equals_the_live_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut last = 0;
    for i in 0..12 {
        let (id, position) = create(&app, Uuid::now_v7()).await;
        last = position;
        for action in ["confirm", "ship", "deliver"].iter().take(i % 4) {
            last = act(&app, id, action).await;
        }
        if i % 4 < 2 && i % 3 == 0 {
            last = act(&app, id, "cancel").await;
        }
    }
    let live = snapshot_of_read_model(&app, last).await;

    let read_model = app.read_model().await;
    let report = read_model.rebuild(&|_, _| {}).await.unwrap();
    assert_eq!(report.generation, 2);
    assert!(report.position >= last);
    let rebuilt = snapshot_of_read_model(&app, last).await;
    assert_eq!(
        rebuilt, live,
        "a rebuild from scratch must equal the live read model"
    );

    // The live projection keeps going on the new tables.
    let (id, position) = create(&app, Uuid::now_v7()).await;
    let list = app
        .query(
            &format!("/orders?limit=1&min_position={position}"),
            &app.staff(),
        )
        .await;
    assert_eq!(ids(&list), [id.to_string()]);
}

async fn a_restart_resumes_the_projection_without_loss_or_duplicates(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..5 {
        create(&app, Uuid::now_v7()).await;
    }
    let app = app.restart().await;
    let mut last = 0;
    for _ in 0..3 {
        last = create(&app, Uuid::now_v7()).await.1;
    }
    // Applied twice would count 13 or more; lost would count fewer than 8.
    let stats = app
        .query(&format!("/stats?min_position={last}"), &app.staff())
        .await;
    assert_eq!(stats["orders_by_status"], json!({"created": 8}));
    let list = app.query("/orders?limit=100", &app.staff()).await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 8);
}

async fn an_event_the_projection_cannot_apply_is_parked_and_the_rest_continue(backend: Backend) {
    let app = spawn_app(backend).await;
    // An order stream whose first event no code understands (written behind the API's back).
    let store = store::Store::open(&app.config.database).await.unwrap();
    let broken = Uuid::now_v7();
    let event = NewEvent::new("Order", "OrderTeleported", 1, json!({}));
    store
        .append_events(broken, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let (id, position) = create(&app, Uuid::now_v7()).await;

    let list = app
        .query(&format!("/orders?min_position={position}"), &app.staff())
        .await;
    assert_eq!(ids(&list), [id.to_string()], "later events are applied");
    let parked = app.read_model().await.parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].error.contains("OrderTeleported"), "{parked:?}");
}

/// With `ORDERS_PROJECTION_ON_ERROR=stop` the read model halts at the bad event instead of
/// skipping it: later events are not applied, and queries waiting for them say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_set_to_stop_halts_at_the_bad_event() {
    let app = crate::harness::spawn_app_with(Backend::Sqlite, |c| {
        c.projection_on_error = order_views::OnError::Stop
    })
    .await;
    let store = store::Store::open(&app.config.database).await.unwrap();
    let event = NewEvent::new("Order", "OrderTeleported", 1, json!({}));
    store
        .append_events(Uuid::now_v7(), ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let (_, position) = create(&app, Uuid::now_v7()).await;
    let response = app
        .get(&format!("/orders?min_position={position}"), &app.staff())
        .await;
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "read-model-behind",
    )
    .await;
    let checkpoint = app
        .read_model()
        .await
        .checkpoint()
        .await
        .unwrap()
        .unwrap()
        .position;
    assert!(
        checkpoint < position,
        "the checkpoint must not pass the bad event"
    );
    assert!(app.read_model().await.parked().await.unwrap().is_empty());
}

/// Two service instances on one PostgreSQL database both run the projection: each event is
/// applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_database_without_double_application() {
    let first = spawn_app(Backend::Postgres).await;
    let url = first.database_url.clone();
    let second =
        crate::harness::spawn_app_with(Backend::Sqlite, |c| c.database.database_url = url).await;
    let mut last = 0;
    for i in 0..20 {
        let app = if i % 2 == 0 { &first } else { &second };
        last = last.max(create(app, Uuid::now_v7()).await.1);
    }
    for app in [&first, &second] {
        let stats = app
            .query(&format!("/stats?min_position={last}"), &app.staff())
            .await;
        assert_eq!(stats["orders_by_status"], json!({"created": 20}));
    }
    let list = first.query("/orders?limit=100", &first.staff()).await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 20);
    assert!(
        list["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|order| order["version"] == 1),
        "every row reflects exactly its one event: {list}"
    );
    // An event applied twice would not be counted twice: the fold refuses it and parks it. So
    // the parked list must be empty too.
    let parked = first.read_model().await.parked().await.unwrap();
    assert!(parked.is_empty(), "parked: {parked:?}");
}

/// Read-your-writes with the token a write answers with: a list and the summary asked with
/// `consistent_with` include the write, on the first try, without the client knowing positions.
async fn a_consistency_token_reads_the_write_it_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (id, token) = create_for_token(&app, customer).await;
        ids.push(id.to_string());
        tokens.push(token);
    }
    let confirmed: Value = app
        .post(&format!("/orders/{}/confirm", ids[0]), &app.staff(), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(confirmed["consistency_token"], format!("{}:2", ids[0]));
    tokens.push(confirmed["consistency_token"].as_str().unwrap().to_owned());

    let all = tokens.join(",");
    let list = app
        .query(
            &format!("/orders?customer={customer}&consistent_with={all}"),
            &app.staff(),
        )
        .await;
    let mut listed: Vec<String> = list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids, "every write named by a token is listed");
    let confirmed_list = app
        .query(
            &format!("/orders?status=confirmed&consistent_with={}", tokens[3]),
            &app.staff(),
        )
        .await;
    assert_eq!(confirmed_list["orders"].as_array().unwrap().len(), 1);
    let stats = app
        .query(&format!("/stats?consistent_with={all}"), &app.staff())
        .await;
    assert_eq!(
        stats["orders_by_status"],
        json!({"confirmed": 1, "created": 2})
    );
}

async fn malformed_and_unknown_consistency_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in ["nonsense", "0193a1b2-0000-7000-8000-000000000001:0", "x:1"] {
        let response = app
            .get(&format!("/orders?consistent_with={bad}"), &app.staff())
            .await;
        assert_problem(
            response,
            StatusCode::BAD_REQUEST,
            "invalid-consistency-token",
        )
        .await;
    }
    let too_many = vec!["0193a1b2-0000-7000-8000-000000000001:1"; 17].join(",");
    let response = app
        .get(&format!("/stats?consistent_with={too_many}"), &app.staff())
        .await;
    assert_problem(
        response,
        StatusCode::BAD_REQUEST,
        "invalid-consistency-token",
    )
    .await;
    // Well-formed, but no such write: a client mistake, not a wait.
    let (id, _) = create_for_token(&app, Uuid::now_v7()).await;
    let response = app
        .get(&format!("/orders?consistent_with={id}:2"), &app.staff())
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown-consistency-token",
    )
    .await;
}

/// Every JSON value in `value` that is `null`, by path: absent fields are left out, never null.
fn nulls(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Null => found.push(path.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nulls(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                nulls(field, &format!("{path}.{name}"), found);
            }
        }
        _ => {}
    }
}

/// The order in a list and the order from `GET /orders/{id}` use the same names for the same
/// things with the same values, and neither carries a `null` (a created and a shipped order).
async fn an_order_has_one_shape_in_a_list_and_on_its_own(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff();
    let customer = Uuid::now_v7();
    let (created, _) = create(&app, customer).await;
    let (shipped, _) = create(&app, customer).await;
    app.post(&format!("/orders/{shipped}/confirm"), &staff, None)
        .await;
    let response = app
        .post(
            &format!("/orders/{shipped}/ship"),
            &staff,
            Some(json!({"carrier": "DHL", "tracking_number": "JD0146"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let written: Value = response.json().await.unwrap();
    let token = written["consistency_token"].as_str().unwrap();
    let list = app
        .query(
            &format!("/orders?customer_id={customer}&consistent_with={token}"),
            &staff,
        )
        .await;
    let listed = list["orders"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{list}");
    for id in [created, shipped] {
        let single = app.query(&format!("/orders/{id}"), &staff).await;
        let item = listed
            .iter()
            .find(|o| o["id"] == id.to_string())
            .unwrap_or_else(|| panic!("{id} is listed: {list}"));
        for (name, value) in item.as_object().unwrap() {
            if let Some(same) = single.get(name) {
                assert_eq!(value, same, "`{name}` of {id}: list {item} vs get {single}");
            }
        }
        for name in [
            "id",
            "customer_id",
            "status",
            "currency",
            "items",
            "total",
            "version",
        ] {
            assert!(
                item.get(name).is_some() && single.get(name).is_some(),
                "`{name}` in both: list {item} vs get {single}"
            );
        }
        let mut found = Vec::new();
        nulls(item, "list", &mut found);
        nulls(&single, "get", &mut found);
        assert!(found.is_empty(), "null fields {found:?}: {item} / {single}");
    }
}

async fn lists_find_orders_by_id_prefix_and_creation_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let (first, _) = create(&app, customer).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (second, position) = create(&app, customer).await;
    let staff = app.staff();
    let list = |query: String| {
        let app = &app;
        let staff = staff.clone();
        async move {
            ids(&app
                .query(&format!("/orders?min_position={position}&{query}"), &staff)
                .await)
        }
    };
    let time = |t: chrono::DateTime<chrono::Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .replace('+', "%2B")
    };

    // A prefix as typed: with or without hyphens, either case.
    let full = second.to_string();
    assert_eq!(
        list(format!("id_prefix={}", &full[..23])).await,
        vec![full.clone()]
    );
    assert_eq!(
        list(format!(
            "id_prefix={}",
            full.replace('-', "").to_uppercase()
        ))
        .await,
        vec![full.clone()]
    );
    assert_eq!(
        list(format!("id_prefix={}", &first.to_string()[..36])).await,
        [first.to_string()]
    );
    // Both were created within the same few seconds: a short prefix finds both, newest first.
    assert_eq!(
        list(format!("customer={customer}&id_prefix={}", &full[..4])).await,
        [full.clone(), first.to_string()]
    );

    assert_eq!(
        list(format!(
            "customer={customer}&created_from={}",
            time(between)
        ))
        .await,
        vec![full.clone()]
    );
    assert_eq!(
        list(format!(
            "customer={customer}&created_before={}",
            time(between)
        ))
        .await,
        [first.to_string()]
    );
    assert!(
        list(format!(
            "customer={customer}&created_from={0}&created_before={0}",
            time(between)
        ))
        .await
        .is_empty()
    );
    // The cursor narrows the same range.
    assert_eq!(
        list(format!(
            "customer={customer}&cursor={second}&id_prefix={}",
            &full[..4]
        ))
        .await,
        [first.to_string()]
    );
    assert!(list(format!("cursor={}", Uuid::nil())).await.is_empty());

    for (query, code) in [
        ("id_prefix=xyz", "invalid-id-prefix"),
        ("id_prefix=", "invalid-id-prefix"),
        (
            "id_prefix=0123456789abcdef0123456789abcdef0",
            "invalid-id-prefix",
        ),
        ("created_from=1969-12-31T23:59:59Z", "invalid-time"),
    ] {
        assert_problem(
            app.get(&format!("/orders?{query}"), &staff).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
    let response = app.get("/orders?created_before=yesterday", &staff).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
