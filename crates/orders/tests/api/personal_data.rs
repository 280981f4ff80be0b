//! Personal data end to end: sealed in every store, shown to its owners, erased when the
//! customer is forgotten, with orders, amounts and history intact.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, assert_problem, spawn_app};
use crate::on_both_backends;

/// Unique marker strings, one per personal field (the phone's is digits only).
struct Markers {
    name: String,
    line1: String,
    line2: String,
    postal_code: String,
    city: String,
    email: String,
    phone: String,
    new_line1: String,
    reason: String,
}

impl Markers {
    fn new() -> Self {
        let tag = Uuid::new_v4().simple().to_string()[..10].to_uppercase();
        let digits: String = Uuid::new_v4().as_u128().to_string()[..9].to_owned();
        Self {
            name: format!("NAME{tag}"),
            line1: format!("LINEONE{tag}"),
            line2: format!("LINETWO{tag}"),
            postal_code: format!("PC{tag}"),
            city: format!("CITY{tag}"),
            email: format!("mail{}@example.com", tag.to_lowercase()),
            phone: format!("+49{digits}"),
            new_line1: format!("MOVED{tag}"),
            reason: format!("REASON{tag}"),
        }
    }

    fn all(&self) -> [&str; 9] {
        [
            &self.name,
            &self.line1,
            &self.line2,
            &self.postal_code,
            &self.city,
            &self.email,
            &self.phone,
            &self.new_line1,
            &self.reason,
        ]
    }

    fn address(&self, line1: &str) -> Value {
        json!({
            "recipient_name": self.name, "line1": line1, "line2": self.line2,
            "postal_code": self.postal_code, "city": self.city, "country": "DE"
        })
    }

    /// Fails if `haystack` (bytes of a dump, a file, a response) holds any marker.
    fn assert_none_in(&self, haystack: &[u8], what: &str) {
        for marker in self.all() {
            assert!(
                memchr::memmem::find(haystack, marker.as_bytes()).is_none(),
                "{what} contains the personal value {marker}"
            );
        }
    }
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

/// Everything the service stores, as bytes: a `pg_dump` of its database, or every file of its
/// SQLite data directory (database, WAL), plus every cache entry of this test's prefix.
async fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = match &app.database_url {
        Some(url) => {
            let dump = std::process::Command::new("pg_dump")
                .arg("--data-only")
                .arg(url)
                .output()
                .expect("pg_dump runs (Debian package postgresql-client)");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            assert!(dump.stdout.len() > 1000, "the dump holds the data");
            dump.stdout
        }
        None => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(&app.config.database.data_dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            all
        }
    };
    let client = redis::Client::open(test_support::redis::url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}*", app.config.cache.prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "orders were cached");
    for key in keys {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        bytes.extend(value);
    }
    bytes
}

async fn personal_data_is_sealed_at_rest_shown_to_its_owners_and_erased_once_forgotten(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let m = Markers::new();
    let customer = Uuid::now_v7();
    let staff = app.staff();
    let mut body = crate::harness::order_body();
    body["shipping_address"] = m.address(&m.line1);
    body["contact"] = json!({ "email": m.email, "phone": m.phone });

    // Order A: created with an address and a contact, moved, then cancelled with a reason.
    let created = json_of(
        app.post("/orders", &app.customer(customer), Some(body.clone()))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let a = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["shipping_address"]["recipient_name"],
        m.name.as_str()
    );
    assert_eq!(created["contact"]["email"], m.email.as_str());
    assert_eq!(created["contact"]["phone"], m.phone.as_str());
    let change = json!({ "shipping_address": m.address(&m.new_line1) });
    let moved = json_of(
        app.post(
            &format!("/orders/{a}/shipping-address"),
            &app.customer(customer),
            Some(change.clone()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["shipping_address"]["line1"], m.new_line1.as_str());
    let cancelled = json_of(
        app.post(
            &format!("/orders/{a}/cancel"),
            &app.customer(customer),
            Some(json!({ "reason": m.reason })),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["cancellation_reason"], m.reason.as_str());
    // Order B: created and confirmed, for the commands after the forgetting.
    let b = json_of(
        app.post("/orders", &app.customer(customer), Some(body.clone()))
            .await,
        StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    json_of(
        app.post(&format!("/orders/{b}/confirm"), &staff, None)
            .await,
        StatusCode::OK,
    )
    .await;

    // The customer and staff see it all, on the order and in its events.
    for token in [app.customer(customer), staff.clone()] {
        let order = app.query(&format!("/orders/{a}"), &token).await;
        assert_eq!(order["shipping_address"]["line1"], m.new_line1.as_str());
        assert_eq!(
            order["shipping_address"]["postal_code"],
            m.postal_code.as_str()
        );
        assert_eq!(order["contact"]["email"], m.email.as_str());
        assert_eq!(order["cancellation_reason"], m.reason.as_str());
        assert!(order.get("personal_data").is_none());
        let events = app
            .query(&format!("/orders/{a}/events"), &token)
            .await
            .to_string();
        for marker in [&m.name, &m.line1, &m.new_line1, &m.reason] {
            assert!(events.contains(marker.as_str()), "events show {marker}");
        }
    }
    // Another customer sees nothing of it.
    assert_eq!(
        app.get(&format!("/orders/{a}"), &app.customer(Uuid::now_v7()))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // The list (read model) shows the reason once it has caught up.
    let listed = app
        .query(
            &format!(
                "/orders?customer_id={customer}&consistent_with={}",
                cancelled["consistency_token"].as_str().unwrap()
            ),
            &staff,
        )
        .await;
    assert!(listed.to_string().contains(m.reason.as_str()), "{listed}");

    // At rest: no marker in the database (events, snapshots, read models, idempotency
    // records, keys) or the cache.
    app.get(&format!("/orders/{b}"), &staff).await; // cached
    m.assert_none_in(&stored_bytes(&app).await, "the stores");

    // Forgetting: staff only, idempotent.
    let path = format!("/customers/{customer}/forget");
    assert_problem(
        app.post(&path, &app.customer(customer), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let first = json_of(app.post(&path, &staff, None).await, StatusCode::OK).await;
    assert_eq!(first["customer_id"], customer.to_string());
    assert_eq!(first["forgotten_by"], "ops");
    let again = json_of(app.post(&path, &staff, None).await, StatusCode::OK).await;
    assert_eq!(again["forgotten_at"], first["forgotten_at"]);

    // The record of the forgetting is a stream of its own, never read as an order.
    let record = personal_data::forget::stream_id(customer);
    for path in [
        format!("/orders/{record}"),
        format!("/orders/{record}/events"),
        format!("/orders/{customer}"),
    ] {
        assert_problem(
            app.get(&path, &staff).await,
            StatusCode::NOT_FOUND,
            "order-not-found",
        )
        .await;
    }
    assert_problem(
        app.post(&format!("/orders/{record}/confirm"), &staff, None)
            .await,
        StatusCode::NOT_FOUND,
        "order-not-found",
    )
    .await;

    // Every view: fields null and marked, amounts, status and history intact.
    let order = app.query(&format!("/orders/{a}"), &staff).await;
    assert_eq!(order["shipping_address"], Value::Null);
    assert_eq!(order["contact"], Value::Null);
    assert_eq!(order["cancellation_reason"], Value::Null);
    assert_eq!(order["personal_data"], "erased");
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["total"], created["total"]);
    assert_eq!(order["version"], 3);
    let events = app.query(&format!("/orders/{a}/events"), &staff).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 3);
    let mut seen = order.to_string();
    seen.push_str(&events.to_string());
    seen.push_str(
        &app.query(&format!("/orders?customer_id={customer}"), &staff)
            .await
            .to_string(),
    );
    seen.push_str(
        &app.query(&format!("/customers/{customer}/summary"), &staff)
            .await
            .to_string(),
    );
    seen.push_str(
        &app.query(&format!("/orders/{b}"), &app.customer(customer))
            .await
            .to_string(),
    );
    m.assert_none_in(seen.as_bytes(), "a response after the forgetting");
    // New personal data is refused with a clear problem, and nothing is written.
    let refused = assert_problem(
        app.post(
            &format!("/orders/{b}/shipping-address"),
            &staff,
            Some(change),
        )
        .await,
        StatusCode::CONFLICT,
        "customer-forgotten",
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("forgotten"));
    assert_problem(
        app.post("/orders", &app.customer(customer), Some(body))
            .await,
        StatusCode::CONFLICT,
        "customer-forgotten",
    )
    .await;
    assert_eq!(app.event_types(b.parse().unwrap()).await.len(), 2);
    // A command still works on a forgotten customer's order; its free text is not kept.
    let cancelled_b = json_of(
        app.post(
            &format!("/orders/{b}/cancel"),
            &staff,
            Some(json!({ "reason": m.reason })),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled_b["status"], "cancelled");
    assert_eq!(cancelled_b["cancellation_reason"], Value::Null);
    assert_eq!(cancelled_b["personal_data"], "erased");
    assert_eq!(app.event_types(b.parse().unwrap()).await.len(), 3);
    m.assert_none_in(&stored_bytes(&app).await, "the stores after the forgetting");

    // The store is consistent: every stream replays, snapshots and read models agree (once the
    // read model has caught up).
    let token = cancelled_b["consistency_token"].as_str().unwrap();
    app.query(&format!("/orders?consistent_with={token}"), &staff)
        .await;
    let store = store::Store::open(&app.config.database).await.unwrap();
    let report = orders::cli::verify::verify(&store).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report.streams >= 3,
        "two orders and the forgetting: {report:?}"
    );
}

async fn an_order_ships_only_once_it_has_an_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let staff = app.staff();
    let mut body = crate::harness::order_body();
    body.as_object_mut().unwrap().remove("shipping_address");
    body["customer_id"] = json!(Uuid::now_v7());
    let created = json_of(
        app.post("/orders", &staff, Some(body)).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(created.get("shipping_address").is_none());
    let id = created["id"].as_str().unwrap();
    json_of(
        app.post(&format!("/orders/{id}/confirm"), &staff, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_problem(
        app.post(&format!("/orders/{id}/ship"), &staff, None).await,
        StatusCode::CONFLICT,
        "shipping-address-required",
    )
    .await;
    let bad = json!({ "shipping_address": { "recipient_name": "A", "line1": "B", "postal_code": "1", "city": "C", "country": "XX" } });
    let problem = assert_problem(
        app.post(&format!("/orders/{id}/shipping-address"), &staff, Some(bad))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-shipping-address",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("shipping_address.country"),
        "{problem}"
    );
    let good = json!({ "shipping_address": { "recipient_name": "A", "line1": "B", "postal_code": "1", "city": "C", "country": "FR" } });
    json_of(
        app.post(
            &format!("/orders/{id}/shipping-address"),
            &staff,
            Some(good),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let shipped = json_of(
        app.post(&format!("/orders/{id}/ship"), &staff, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(shipped["shipping_address"]["country"], "FR");
    let late = json!({ "shipping_address": { "recipient_name": "A", "line1": "B", "postal_code": "1", "city": "C", "country": "DE" } });
    assert_problem(
        app.post(
            &format!("/orders/{id}/shipping-address"),
            &staff,
            Some(late),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid-transition",
    )
    .await;
    let contact = json!({ "currency": "EUR", "customer_id": Uuid::now_v7(), "items": [{ "product_id": Uuid::now_v7(), "sku": "S", "quantity": 1, "unit_price": 1 }], "contact": { "email": "not an email" } });
    assert_problem(
        app.post("/orders", &staff, Some(contact)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-contact",
    )
    .await;
}

/// An order stored before addresses existed (`OrderCreated` v1, written here as an older
/// build wrote it) loads through the upcaster on this backend: it reads without an address,
/// is refused `ship`, takes an address, then ships; `verify` replays the mixed stream.
async fn an_order_stored_at_schema_version_1_loads_takes_an_address_and_ships(backend: Backend) {
    use event_store::{EventStore, NewEvent};
    let app = spawn_app(backend).await;
    let staff = app.staff();
    let store = store::Store::open(&app.config.database).await.unwrap();
    let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
    let v1 = json!({
        "order_id": order, "customer_id": customer, "currency": "EUR",
        "items": [{ "product_id": Uuid::now_v7(), "sku": "OLD-1", "quantity": 2,
                    "unit_price": { "amount_minor": 500, "currency": "EUR" } }],
        "total": { "amount_minor": 1000, "currency": "EUR" }
    });
    store
        .append_events(
            order,
            0,
            vec![NewEvent::new("Order", "OrderCreated", 1, v1)],
        )
        .await
        .unwrap();
    let loaded = app.query(&format!("/orders/{order}"), &staff).await;
    assert_eq!(loaded["status"], "created");
    assert_eq!(loaded["total"], 1000);
    assert!(loaded.get("shipping_address").is_none(), "{loaded}");
    json_of(
        app.post(&format!("/orders/{order}/confirm"), &staff, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_problem(
        app.post(&format!("/orders/{order}/ship"), &staff, None)
            .await,
        StatusCode::CONFLICT,
        "shipping-address-required",
    )
    .await;
    let address = json!({ "shipping_address": { "recipient_name": "Grace Hopper", "line1": "1 Navy Way", "postal_code": "20001", "city": "Washington", "country": "US" } });
    json_of(
        app.post(
            &format!("/orders/{order}/shipping-address"),
            &staff,
            Some(address),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let shipped = json_of(
        app.post(&format!("/orders/{order}/ship"), &staff, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(
        shipped["shipping_address"]["recipient_name"],
        "Grace Hopper"
    );
    assert_eq!(shipped["version"], 4);
    let events = app.query(&format!("/orders/{order}/events"), &staff).await;
    let versions: Vec<u64> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["schema_version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 1, 1, 1]);
    assert_eq!(events["events"][2]["event_type"], "ShippingAddressChanged");
    // verify compares the read model too: let it catch up first.
    let token = shipped["consistency_token"].as_str().unwrap();
    app.query(&format!("/orders?consistent_with={token}"), &staff)
        .await;
    let report = orders::cli::verify::verify(&store).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

on_both_backends!(
    a_legacy_plain_cancellation_reason_is_erased_once_its_customer_is_forgotten,
    personal_data_is_sealed_at_rest_shown_to_its_owners_and_erased_once_forgotten,
    an_order_ships_only_once_it_has_an_address,
    an_order_stored_at_schema_version_1_loads_takes_an_address_and_ships,
);

/// Two instances on one database: the one that did not forget stops showing the customer's data
/// within a few seconds (it polls the key table for forgettings every second), not only when
/// its key cache's 30 s run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_stops_showing_a_forgotten_customer_s_data_at_once() {
    // Both instances must share the master key (as a deployment does).
    let master = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned();
    let shared = master.clone();
    let first =
        crate::harness::spawn_app_with(Backend::Postgres, |c| c.master_key = Some(shared)).await;
    let url = first.database_url.clone();
    let second = crate::harness::spawn_app_with(Backend::Postgres, |c| {
        c.database.database_url = url;
        c.master_key = Some(master);
    })
    .await;
    let customer = Uuid::now_v7();
    let marker = format!(
        "FAR{}",
        Uuid::new_v4().simple().to_string()[..10].to_uppercase()
    );
    let mut body = crate::harness::order_body();
    body["shipping_address"]["line1"] = json!(marker);
    let created = first
        .post("/orders", &first.customer(customer), Some(body))
        .await;
    let id = json_of(created, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The second instance reads it, and so caches the customer's key.
    let seen = second.get(&format!("/orders/{id}"), &second.staff()).await;
    assert!(
        json_of(seen, StatusCode::OK)
            .await
            .to_string()
            .contains(&marker)
    );

    let forgot = first
        .post(
            &format!("/customers/{customer}/forget"),
            &first.staff(),
            None,
        )
        .await;
    json_of(forgot, StatusCode::OK).await;
    let started = std::time::Instant::now();
    loop {
        let order = second.get(&format!("/orders/{id}"), &second.staff()).await;
        let order = json_of(order, StatusCode::OK).await;
        if !order.to_string().contains(&marker) {
            assert_eq!(order["personal_data"], "erased", "{order}");
            break;
        }
        // Well under the key cache's 30 s lifetime; the poll runs every second.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still shown: {order}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    println!("the other instance erased it after {:?}", started.elapsed());
}

/// A cancellation reason stored before sealing existed is plain text in its event and the read
/// model. It is shown while its customer is known and erased in every view once the customer is
/// forgotten; the order, its totals and history stay.
async fn a_legacy_plain_cancellation_reason_is_erased_once_its_customer_is_forgotten(
    backend: Backend,
) {
    use event_store::{EventStore, NewEvent};
    let app = spawn_app(backend).await;
    let staff = app.staff();
    let store = store::Store::open(&app.config.database).await.unwrap();
    let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
    let marker = format!(
        "LEGACY{}",
        Uuid::new_v4().simple().to_string()[..10].to_uppercase()
    );
    let created = json!({
        "order_id": order, "customer_id": customer, "currency": "EUR",
        "items": [{ "product_id": Uuid::now_v7(), "sku": "OLD-1", "quantity": 1,
                    "unit_price": { "amount_minor": 700, "currency": "EUR" } }],
        "total": { "amount_minor": 700, "currency": "EUR" }
    });
    store
        .append_events(
            order,
            0,
            vec![
                NewEvent::new("Order", "OrderCreated", 1, created),
                NewEvent::new("Order", "OrderCancelled", 1, json!({ "reason": marker })),
            ],
        )
        .await
        .unwrap();
    let position = store.global_position(order, 2).await.unwrap();
    for body in legacy_views(&app, order, customer, position).await {
        assert!(body.contains(&marker), "known customer: shown: {body}");
    }
    json_of(
        app.post(&format!("/customers/{customer}/forget"), &staff, None)
            .await,
        StatusCode::OK,
    )
    .await;
    for body in legacy_views(&app, order, customer, position).await {
        assert!(!body.contains(&marker), "forgotten: erased: {body}");
    }
    let order_view = app.query(&format!("/orders/{order}"), &staff).await;
    assert_eq!(order_view["status"], "cancelled");
    assert_eq!(order_view["total"], 700);
    assert_eq!(order_view["personal_data"], "erased", "{order_view}");
    let events = app.query(&format!("/orders/{order}/events"), &staff).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        events["events"][1]["payload"]["personal_data"], "erased",
        "{events}"
    );
    let report = orders::cli::verify::verify(&store).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Every view of `order` that shows its cancellation reason, as staff and as its customer.
async fn legacy_views(app: &TestApp, order: Uuid, customer: Uuid, position: u64) -> Vec<String> {
    let (staff, own) = (app.staff(), app.customer(customer));
    let paths = [
        (format!("/orders/{order}"), &staff),
        (format!("/orders/{order}"), &own),
        (format!("/orders/{order}/events"), &staff),
        (format!("/orders/{order}/events"), &own),
        (
            format!("/orders?customer={customer}&min_position={position}"),
            &staff,
        ),
    ];
    let mut bodies = Vec::new();
    for (path, token) in paths {
        bodies.push(app.query(&path, token).await.to_string());
    }
    bodies
}
