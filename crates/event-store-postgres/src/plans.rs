//! The plans of this backend's statements on a database that has never been analysed.
//!
//! The shared server runs with autovacuum off, and any freshly created or bulk-loaded database is
//! the same until someone runs `ANALYZE`: the planner then guesses, and a guess that turns a
//! lookup into a scan of a whole table makes every command slower as the store grows (measured:
//! the first stream load joined `event_positions` and scanned it on every load, and throughput
//! at 64 workers fell 3.4× within 25 s). Each statement is explained (not run), with the values
//! bound and as the generic plan the command connections use, against 20 000 never-analysed
//! events, and no plan may read the whole of a table that grows with the store.

#![allow(clippy::unwrap_used)] // test code

use serde_json::{Value, json};
use sqlx::postgres::{PgArguments, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres};
use uuid::Uuid;

use crate::{MIGRATOR, append, group_commit, load, store};

/// Tables that grow with the store; a sequential scan of one is a plan that degrades.
const GROWING: [&str; 4] = ["events", "event_positions", "snapshots", "idempotency_keys"];

const STREAMS: i64 = 2_000;
const EVENTS_PER_STREAM: i64 = 10;

/// Stream `n` of the fill (1-based).
fn stream(n: i64) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n as u128)
}

/// A database with `STREAMS` × `EVENTS_PER_STREAM` numbered events, a snapshot of every other
/// stream and an idempotency key per stream, never analysed.
async fn filled() -> (test_support::postgres::TestDatabase, PgPool) {
    let database = test_support::postgres::fresh_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(database.url())
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type,
                             schema_version, payload, metadata)
         SELECT gen_random_uuid(),
                ('01900000-0000-7000-8000-' || lpad(to_hex(s), 12, '0'))::uuid,
                'Order', v, 'OrderCreated', 1, '{\"n\": 1}', '{}'
         FROM generate_series(1, $1::int8) AS s, generate_series(1, $2::int8) AS v
         ORDER BY s, v",
    )
    .bind(STREAMS)
    .bind(EVENTS_PER_STREAM)
    .execute(&pool)
    .await
    .unwrap();
    for fill in [
        "INSERT INTO event_positions (position, seq)
         SELECT row_number() OVER (ORDER BY seq), seq FROM events",
        "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state)
         SELECT aggregate_id, 'Order', version, 1, '{}' FROM events
         WHERE version = 5 AND (seq / 10) % 2 = 0",
        "INSERT INTO idempotency_keys (scope, key, request_hash, response)
         SELECT 'orders', 'key-' || seq, 'hash', '{}' FROM events WHERE version = 1",
    ] {
        sqlx::query(fill).execute(&pool).await.unwrap();
    }
    let analysed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_user_tables
         WHERE last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(analysed, 0, "the point is a database without statistics");
    (database, pool)
}

type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

/// The plan PostgreSQL chooses for `sql` with the values `bind` adds (explained, not run).
async fn explain(pool: &PgPool, sql: &str, bind: impl FnOnce(Query) -> Query) -> Value {
    let query = sqlx::query(AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {sql}")));
    let row = bind(query).fetch_one(pool).await.unwrap();
    sqlx::Row::try_get(&row, 0).unwrap()
}

/// The generic plan of `sql` (one that holds for any values of its `params` parameters), as the
/// command connections run it (`plan_cache_mode = force_generic_plan`, see `connections.rs`).
async fn explain_generic(pool: &PgPool, sql: &str, params: usize) -> Value {
    let mut connection = pool.acquire().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE explained AS {sql}"
    )))
    .execute(&mut *connection)
    .await
    .unwrap();
    let nulls = vec!["NULL"; params].join(", ");
    let plan: Value = sqlx::query_scalar(AssertSqlSafe(format!(
        "EXPLAIN (FORMAT JSON) EXECUTE explained({nulls})"
    )))
    .fetch_one(&mut *connection)
    .await
    .unwrap();
    sqlx::raw_sql("DEALLOCATE explained; RESET plan_cache_mode")
        .execute(&mut *connection)
        .await
        .unwrap();
    plan
}

/// Every `(node type, relation)` in `plan` that reads a whole growing table.
fn full_scans(plan: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![plan];
    while let Some(node) = stack.pop() {
        match node {
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => {
                let relation = fields.get("Relation Name").and_then(Value::as_str);
                let kind = fields.get("Node Type").and_then(Value::as_str);
                if let (Some("Seq Scan"), Some(relation)) = (kind, relation)
                    && GROWING.contains(&relation)
                {
                    found.push(format!("Seq Scan on {relation}"));
                }
                stack.extend(fields.values());
            }
            _ => {}
        }
    }
    found
}

#[tokio::test]
async fn no_statement_scans_a_growing_table_without_statistics() {
    let (_database, pool) = filled().await;
    let (known, new) = (stream(7), Uuid::now_v7());
    let text = |s: &str| Some(s.to_owned());
    let custom = [
        (
            "load (snapshot, key and events in one statement)",
            explain(&pool, load::LOAD_SQL, |q| {
                q.bind(vec![known, new])
                    .bind(vec![text("Order"), None])
                    .bind(vec![Some(1_i32), None])
                    .bind(vec![text("orders"), None])
                    .bind(vec![text("key-61"), None])
            })
            .await,
        ),
        (
            "append alone",
            explain(&pool, append::APPEND_SQL, |q| {
                q.bind(known)
                    .bind("Order")
                    .bind(10_i64)
                    .bind(10_i64)
                    .bind(vec![Uuid::now_v7()])
                    .bind(vec!["OrderConfirmed".to_owned()])
                    .bind(vec![1_i32])
                    .bind(vec![json!({})])
                    .bind(vec![json!({})])
                    .bind(text("orders"))
                    .bind(text("key-new"))
                    .bind(text("hash"))
                    .bind(Some(json!({})))
            })
            .await,
        ),
        (
            "group commit batch",
            explain(&pool, group_commit::BATCH_SQL, |q| {
                q.bind(vec![known, new])
                    .bind(vec!["Order".to_owned(), "Order".to_owned()])
                    .bind(vec![10_i64, 0])
                    .bind(vec![10_i64, 0])
                    .bind(vec![None, text("orders")])
                    .bind(vec![None, text("key-new")])
                    .bind(vec![None, text("hash")])
                    .bind(vec![None, Some(json!({}))])
                    .bind(vec![1_i64, 2])
                    .bind(vec![1_i64, 1])
                    .bind(vec![Uuid::now_v7(), Uuid::now_v7()])
                    .bind(vec!["OrderConfirmed".to_owned(), "OrderCreated".to_owned()])
                    .bind(vec![1_i32, 1])
                    .bind(vec![json!({}), json!({})])
                    .bind(vec![json!({}), json!({})])
            })
            .await,
        ),
        (
            "current version",
            explain(&pool, append::CURRENT_VERSION_SQL, |q| q.bind(known)).await,
        ),
        (
            "feed page",
            explain(&pool, &store::feed_sql(), |q| {
                q.bind(5_000_i64).bind(500_i64).bind(9_000_i64)
            })
            .await,
        ),
        (
            "events from a version",
            explain(&pool, &store::events_from_version_sql(), |q| {
                q.bind(known).bind(3_i64)
            })
            .await,
        ),
        (
            "position of an event",
            explain(&pool, store::POSITION_OF_SQL, |q| q.bind(known).bind(4_i64)).await,
        ),
        (
            "idempotency purge",
            explain(&pool, store::PURGE_IDEMPOTENCY_SQL, |q| {
                q.bind(86_400_000_000_i64).bind(10_000_000_i64)
            })
            .await,
        ),
    ];
    let generic = [
        explain_generic(&pool, load::LOAD_SQL, 5).await,
        explain_generic(&pool, append::APPEND_SQL, 13).await,
        explain_generic(&pool, group_commit::BATCH_SQL, 15).await,
        explain_generic(&pool, append::CURRENT_VERSION_SQL, 1).await,
        explain_generic(&pool, &store::feed_sql(), 3).await,
        explain_generic(&pool, &store::events_from_version_sql(), 2).await,
        explain_generic(&pool, store::POSITION_OF_SQL, 2).await,
        explain_generic(&pool, store::PURGE_IDEMPOTENCY_SQL, 2).await,
    ];
    let plans = custom
        .iter()
        .map(|(name, plan)| (format!("{name} (custom plan)"), plan))
        .chain(
            custom
                .iter()
                .zip(&generic)
                .map(|((name, _), plan)| (format!("{name} (generic plan)"), plan)),
        );
    let degraded: Vec<String> = plans
        .filter_map(|(name, plan)| {
            let scans = full_scans(plan);
            (!scans.is_empty()).then(|| format!("{name}: {scans:?} in\n{plan:#}"))
        })
        .collect();
    assert!(
        degraded.is_empty(),
        "statements whose plan reads a whole growing table when there are no statistics (they \
         get slower as the store grows; keep each lookup an index probe, e.g. a scalar subquery \
         or a lateral subquery with OFFSET 0):\n{}",
        degraded.join("\n\n")
    );
}

/// The check above must be able to fail: the stream load as it was first written (a plain join
/// to `event_positions`, which the issue measured scanning that table on every load) is caught.
#[tokio::test]
async fn a_join_the_planner_turns_into_a_scan_is_caught() {
    let (_database, pool) = filled().await;
    let naive = explain(
        &pool,
        "SELECT e.event_id, e.version, p.position FROM events e
         JOIN event_positions p ON p.seq = e.seq
         WHERE e.aggregate_id = $1 ORDER BY e.version",
        |q| q.bind(stream(7)),
    )
    .await;
    assert!(
        !full_scans(&naive).is_empty(),
        "expected a scan in the naive plan:\n{naive:#}"
    );
}
