//! The order read model in PostgreSQL.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use event_store::RecordedEvent;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::batch::{BatchWrites, OnError, fold_batch, order_ids};
use super::model::{ListQuery, Stats, Tables};
use super::view::OrderView;

/// The read model's tables and queries on PostgreSQL (same database as the events).
#[derive(Debug, Clone)]
pub struct PgReadModel {
    pool: PgPool,
}

type Tx = Transaction<'static, Postgres>;

impl PgReadModel {
    /// Over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the projection's row and the tables of `generation` if missing.
    pub async fn create_tables(&self, generation: i32) -> sqlx::Result<()> {
        let t = Tables::new(generation);
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {details} (
                order_id UUID PRIMARY KEY, customer_id UUID NOT NULL, status TEXT NOT NULL,
                currency TEXT NOT NULL, total_minor BIGINT NOT NULL, items JSONB NOT NULL,
                cancellation_reason TEXT, carrier TEXT, tracking_number TEXT,
                created_at TIMESTAMPTZ NOT NULL, confirmed_at TIMESTAMPTZ, cancelled_at TIMESTAMPTZ,
                shipped_at TIMESTAMPTZ, delivered_at TIMESTAMPTZ,
                version BIGINT NOT NULL, last_position BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS {details}_customer ON {details} (customer_id, order_id);
             CREATE INDEX IF NOT EXISTS {details}_status ON {details} (status, order_id);
             CREATE TABLE IF NOT EXISTS {counts} (status TEXT PRIMARY KEY, orders BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS {revenue} (day DATE NOT NULL, currency TEXT NOT NULL,
                orders BIGINT NOT NULL, total_minor BIGINT NOT NULL, PRIMARY KEY (day, currency));",
            details = t.details,
            counts = t.counts,
            revenue = t.revenue
        );
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops the tables of `generation`.
    pub async fn drop_tables(&self, generation: i32) -> sqlx::Result<()> {
        let t = Tables::new(generation);
        let ddl = format!(
            "DROP TABLE IF EXISTS {}, {}, {}",
            t.details, t.counts, t.revenue
        );
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ensures the projection row exists; returns (generation, position).
    pub async fn register(&self, name: &str) -> sqlx::Result<(i32, u64)> {
        sqlx::query("INSERT INTO projections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT generation, position FROM projections WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok((
            row.try_get("generation")?,
            unsigned(row.try_get("position")?),
        ))
    }

    /// Applies up to `limit` events after the checkpoint, with the checkpoint, in one transaction.
    /// The projection row is locked first, so concurrent runners (other instances) take turns and
    /// never apply an event twice. Returns the writes made.
    pub async fn run_batch(
        &self,
        name: &str,
        limit: usize,
        on_error: OnError,
    ) -> sqlx::Result<BatchWrites> {
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("SELECT generation, position FROM projections WHERE name = $1 FOR UPDATE")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        let (generation, position): (i32, i64) =
            (row.try_get("generation")?, row.try_get("position")?);
        let writes = apply_after(
            &mut tx,
            name,
            generation,
            unsigned(position),
            limit,
            on_error,
        )
        .await?;
        if writes.events > 0 {
            sqlx::query("UPDATE projections SET position = $2, updated_at = now() WHERE name = $1")
                .bind(name)
                .bind(signed(writes.last_position))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(writes)
    }

    /// Applies events after `after` into the tables of `generation` without touching the
    /// projection's checkpoint (rebuilds keep their own cursor).
    pub async fn apply_into(
        &self,
        name: &str,
        generation: i32,
        after: u64,
        limit: usize,
    ) -> sqlx::Result<BatchWrites> {
        let mut tx = self.pool.begin().await?;
        let writes = apply_after(&mut tx, name, generation, after, limit, OnError::Park).await?;
        tx.commit().await?;
        Ok(writes)
    }

    /// Finishes a rebuild: with the live projection locked, applies what is left into
    /// `generation` and switches the projection to it. Returns the final position.
    pub async fn switch_to(
        &self,
        name: &str,
        generation: i32,
        mut after: u64,
    ) -> sqlx::Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT position FROM projections WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        loop {
            let writes =
                apply_after(&mut tx, name, generation, after, 10_000, OnError::Park).await?;
            if writes.events == 0 {
                break;
            }
            after = writes.last_position;
        }
        sqlx::query("UPDATE projections SET generation = $2, position = $3, updated_at = now() WHERE name = $1")
            .bind(name)
            .bind(generation)
            .bind(signed(after))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The projection's generation and checkpoint.
    pub async fn state(&self, name: &str) -> sqlx::Result<Option<(i32, u64)>> {
        let row = sqlx::query("SELECT generation, position FROM projections WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok((
                row.try_get("generation")?,
                unsigned(row.try_get("position")?),
            ))
        })
        .transpose()
    }

    /// The feed head (highest assigned position) and the age of the oldest committed event not yet
    /// numbered, for lag metrics.
    pub async fn feed_head(&self) -> sqlx::Result<u64> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM event_positions")
            .fetch_one(&self.pool)
            .await?;
        Ok(unsigned(head.unwrap_or(0)))
    }

    /// Committed events not yet numbered, and the age in seconds of the oldest of them.
    pub async fn feed_backlog(&self) -> sqlx::Result<(u64, f64)> {
        // Two index lookups, not a join: the queue is tiny but its statistics can be stale (it
        // churns), and a join plan chosen on them can scan the whole events table.
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM feed_queue) AS events,
                    COALESCE(EXTRACT(EPOCH FROM now() - (SELECT e.recorded_at FROM events e
                        WHERE e.seq = (SELECT MIN(seq) FROM feed_queue)))::float8, 0) AS oldest",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((unsigned(row.try_get("events")?), row.try_get("oldest")?))
    }

    /// Recorded time of the event at `position`.
    pub async fn recorded_at(&self, position: u64) -> sqlx::Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar("SELECT e.recorded_at FROM event_positions p JOIN events e ON e.seq = p.seq WHERE p.position = $1")
            .bind(signed(position))
            .fetch_optional(&self.pool)
            .await
    }

    /// Parked events of a projection: (position, event id, error).
    pub async fn parked(&self, name: &str) -> sqlx::Result<Vec<(u64, Uuid, String)>> {
        let rows = sqlx::query("SELECT position, event_id, error FROM parked_events WHERE projection = $1 ORDER BY position")
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    unsigned(r.try_get("position")?),
                    r.try_get("event_id")?,
                    r.try_get("error")?,
                ))
            })
            .collect()
    }

    /// One order's row.
    pub async fn order(&self, generation: i32, id: Uuid) -> sqlx::Result<Option<OrderView>> {
        let sql = format!(
            "SELECT * FROM {} WHERE order_id = $1",
            Tables::new(generation).details
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(view).transpose()
    }

    /// A page of orders, newest first.
    pub async fn list(&self, generation: i32, query: &ListQuery) -> sqlx::Result<Vec<OrderView>> {
        let sql = format!(
            "SELECT * FROM {} WHERE ($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
               AND ($3::uuid IS NULL OR order_id < $3) ORDER BY order_id DESC LIMIT $4",
            Tables::new(generation).details
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(query.customer_id)
            .bind(query.status.as_deref())
            .bind(query.before)
            .bind(i64::try_from(query.limit).unwrap_or(100))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(view).collect()
    }

    /// Counts by status and revenue per day and currency.
    pub async fn stats(&self, generation: i32) -> sqlx::Result<Stats> {
        let t = Tables::new(generation);
        let counts = sqlx::query(AssertSqlSafe(format!(
            "SELECT status, orders FROM {} WHERE orders <> 0 ORDER BY status",
            t.counts
        )))
        .fetch_all(&self.pool)
        .await?;
        let revenue = sqlx::query(AssertSqlSafe(format!(
            "SELECT day, currency, orders, total_minor FROM {} WHERE orders <> 0 OR total_minor <> 0 ORDER BY day, currency",
            t.revenue
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(Stats {
            orders_by_status: counts
                .iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("orders")?)))
                .collect::<sqlx::Result<_>>()?,
            revenue: revenue
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<NaiveDate, _>("day")?,
                        r.try_get("currency")?,
                        r.try_get("orders")?,
                        r.try_get("total_minor")?,
                    ))
                })
                .collect::<sqlx::Result<_>>()?,
        })
    }
}

async fn apply_after(
    tx: &mut Tx,
    name: &str,
    generation: i32,
    after: u64,
    limit: usize,
    on_error: OnError,
) -> sqlx::Result<BatchWrites> {
    let t = Tables::new(generation);
    let events = read_feed(tx, after, limit).await?;
    if events.is_empty() {
        return Ok(BatchWrites {
            last_position: after,
            ..Default::default()
        });
    }
    let ids = order_ids(&events);
    let sql = format!("SELECT * FROM {} WHERE order_id = ANY($1)", t.details);
    let current = sqlx::query(AssertSqlSafe(sql))
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
    let rows: HashMap<Uuid, OrderView> = current
        .iter()
        .map(view)
        .map(|v| v.map(|v| (v.order_id, v)))
        .collect::<sqlx::Result<_>>()?;
    let writes = fold_batch(&events, rows, after, on_error);
    let upsert = format!(
        "INSERT INTO {} (order_id, customer_id, status, currency, total_minor, items, cancellation_reason, carrier,
            tracking_number, created_at, confirmed_at, cancelled_at, shipped_at, delivered_at, version, last_position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, cancellation_reason = EXCLUDED.cancellation_reason,
            carrier = EXCLUDED.carrier, tracking_number = EXCLUDED.tracking_number, confirmed_at = EXCLUDED.confirmed_at,
            cancelled_at = EXCLUDED.cancelled_at, shipped_at = EXCLUDED.shipped_at, delivered_at = EXCLUDED.delivered_at,
            version = EXCLUDED.version, last_position = EXCLUDED.last_position",
        t.details
    );
    for row in &writes.rows {
        sqlx::query(AssertSqlSafe(upsert.clone()))
            .bind(row.order_id)
            .bind(row.customer_id)
            .bind(&row.status)
            .bind(&row.currency)
            .bind(row.total_minor)
            .bind(&row.items)
            .bind(&row.cancellation_reason)
            .bind(&row.carrier)
            .bind(&row.tracking_number)
            .bind(row.created_at)
            .bind(row.confirmed_at)
            .bind(row.cancelled_at)
            .bind(row.shipped_at)
            .bind(row.delivered_at)
            .bind(signed(row.version))
            .bind(signed(row.last_position))
            .execute(&mut **tx)
            .await?;
    }
    let counts = format!(
        "INSERT INTO {0} (status, orders) VALUES ($1, $2) ON CONFLICT (status) DO UPDATE SET orders = {0}.orders + EXCLUDED.orders",
        t.counts
    );
    for (status, delta) in &writes.summary.status_counts {
        sqlx::query(AssertSqlSafe(counts.clone()))
            .bind(status)
            .bind(delta)
            .execute(&mut **tx)
            .await?;
    }
    let revenue = format!(
        "INSERT INTO {0} (day, currency, orders, total_minor) VALUES ($1, $2, $3, $4) ON CONFLICT (day, currency)
         DO UPDATE SET orders = {0}.orders + EXCLUDED.orders, total_minor = {0}.total_minor + EXCLUDED.total_minor",
        t.revenue
    );
    for ((day, currency), (orders, total)) in &writes.summary.revenue {
        sqlx::query(AssertSqlSafe(revenue.clone()))
            .bind(day)
            .bind(currency)
            .bind(orders)
            .bind(total)
            .execute(&mut **tx)
            .await?;
    }
    for parked in &writes.parked {
        tracing::warn!(projection = name, position = parked.position, event_id = %parked.event_id, error = %parked.error, "event parked");
        sqlx::query(
            "INSERT INTO parked_events (projection, position, event_id, error) VALUES ($1, $2, $3, $4)
             ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error, parked_at = now()",
        )
        .bind(name)
        .bind(signed(parked.position))
        .bind(parked.event_id)
        .bind(&parked.error)
        .execute(&mut **tx)
        .await?;
    }
    Ok(writes)
}

async fn read_feed(tx: &mut Tx, after: u64, limit: usize) -> sqlx::Result<Vec<RecordedEvent>> {
    let rows = sqlx::query(
        "SELECT e.event_id, e.aggregate_id, e.aggregate_type, e.version, p.position, e.event_type,
                e.schema_version, e.payload, e.metadata, e.recorded_at
         FROM event_positions p JOIN events e ON e.seq = p.seq
         WHERE p.position > $1 ORDER BY p.position LIMIT $2",
    )
    .bind(signed(after))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RecordedEvent {
                event_id: r.try_get("event_id")?,
                aggregate_id: r.try_get("aggregate_id")?,
                aggregate_type: r.try_get("aggregate_type")?,
                version: unsigned(r.try_get("version")?),
                position: Some(unsigned(r.try_get("position")?)),
                event_type: r.try_get("event_type")?,
                schema_version: u32::try_from(r.try_get::<i32, _>("schema_version")?).unwrap_or(0),
                payload: r.try_get("payload")?,
                metadata: r.try_get("metadata")?,
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .collect()
}

fn view(r: &PgRow) -> sqlx::Result<OrderView> {
    Ok(OrderView {
        order_id: r.try_get("order_id")?,
        customer_id: r.try_get("customer_id")?,
        status: r.try_get("status")?,
        currency: r.try_get("currency")?,
        total_minor: r.try_get("total_minor")?,
        items: r.try_get("items")?,
        cancellation_reason: r.try_get("cancellation_reason")?,
        carrier: r.try_get("carrier")?,
        tracking_number: r.try_get("tracking_number")?,
        created_at: r.try_get("created_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
        cancelled_at: r.try_get("cancelled_at")?,
        shipped_at: r.try_get("shipped_at")?,
        delivered_at: r.try_get("delivered_at")?,
        version: unsigned(r.try_get("version")?),
        last_position: unsigned(r.try_get("last_position")?),
    })
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
