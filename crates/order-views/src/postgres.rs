//! The order read model in PostgreSQL.

use std::collections::HashMap;

use chrono::NaiveDate;
use event_store::RecordedEvent;
use read_model::{Applied, OnError, PgDialect, Projection, position_to_sql};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::batch::{BatchWrites, fold_batch, order_ids};
use super::schema::{ListQuery, ORDERS_PROJECTION, OrderProjection, Stats, Tables, from_sql};
use super::view::OrderView;

type Tx = Transaction<'static, Postgres>;

/// The order read model's queries on PostgreSQL (same database as the events).
#[derive(Debug, Clone)]
pub struct PgReadModel {
    pool: PgPool,
}

impl PgReadModel {
    /// Over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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
               AND ($3::uuid IS NULL OR order_id >= $3) AND ($4::uuid IS NULL OR order_id <= $4)
               ORDER BY order_id DESC LIMIT $5",
            Tables::new(generation).details
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(query.customer_id)
            .bind(query.status.as_deref())
            .bind(query.lowest)
            .bind(query.highest)
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

/// The order read model as the engine drives it on PostgreSQL.
impl Projection<PgDialect> for OrderProjection {
    fn name(&self) -> &str {
        ORDERS_PROJECTION
    }

    async fn create_tables(&self, db: &PgDialect, generation: i32) -> read_model::Result<()> {
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
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(db.pool()).await?;
        Ok(())
    }

    async fn drop_tables(&self, db: &PgDialect, generation: i32) -> read_model::Result<()> {
        let t = Tables::new(generation);
        let ddl = format!(
            "DROP TABLE IF EXISTS {}, {}, {}",
            t.details, t.counts, t.revenue
        );
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(db.pool()).await?;
        Ok(())
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        generation: i32,
        after: u64,
        events: &[RecordedEvent],
        on_error: OnError,
    ) -> read_model::Result<Applied> {
        let t = Tables::new(generation);
        let ids = order_ids(events);
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
        let writes = fold_batch(events, rows, after, on_error);
        write_batch(tx, &t, &writes).await?;
        Ok(writes.applied)
    }
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
        version: from_sql(r.try_get("version")?)?,
        last_position: from_sql(r.try_get("last_position")?)?,
    })
}

/// Writes a batch in one statement and one round trip: the order rows, the status counts and
/// the revenue travel as one array per column, `UNNEST` turns them back into rows, and each
/// table's upsert is a data-modifying `WITH` clause (PostgreSQL runs every one of them, read or
/// not). Within a batch each order, status and (day, currency) appears once, so no statement
/// updates a row twice.
async fn write_batch(tx: &mut Tx, t: &Tables, writes: &BatchWrites) -> read_model::Result<()> {
    let rows = &writes.rows;
    let summary = &writes.summary;
    if rows.is_empty() && summary.status_counts.is_empty() && summary.revenue.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&OrderView) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let time = |f: fn(&OrderView) -> Option<chrono::DateTime<chrono::Utc>>| {
        rows.iter().map(f).collect::<Vec<_>>()
    };
    let versions = rows
        .iter()
        .map(|r| position_to_sql(r.version))
        .collect::<read_model::Result<Vec<_>>>()?;
    let positions = rows
        .iter()
        .map(|r| position_to_sql(r.last_position))
        .collect::<read_model::Result<Vec<_>>>()?;
    let mut revenue = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((day, currency), (orders, total)) in &summary.revenue {
        revenue.0.push(*day);
        revenue.1.push(currency.as_str());
        revenue.2.push(*orders);
        revenue.3.push(*total);
    }
    let (details, counts, revenue_table) = (&t.details, &t.counts, &t.revenue);
    let sql = format!(
        "WITH details AS (
           INSERT INTO {details} (order_id, customer_id, status, currency, total_minor, items, cancellation_reason,
             carrier, tracking_number, created_at, confirmed_at, cancelled_at, shipped_at, delivered_at, version,
             last_position)
           SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[], $6::jsonb[],
             $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
             $13::timestamptz[], $14::timestamptz[], $15::int8[], $16::int8[])
           ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, cancellation_reason = EXCLUDED.cancellation_reason,
             carrier = EXCLUDED.carrier, tracking_number = EXCLUDED.tracking_number, confirmed_at = EXCLUDED.confirmed_at,
             cancelled_at = EXCLUDED.cancelled_at, shipped_at = EXCLUDED.shipped_at, delivered_at = EXCLUDED.delivered_at,
             version = EXCLUDED.version, last_position = EXCLUDED.last_position),
         counts AS (
           INSERT INTO {counts} (status, orders) SELECT * FROM UNNEST($17::text[], $18::int8[])
           ON CONFLICT (status) DO UPDATE SET orders = {counts}.orders + EXCLUDED.orders),
         revenue AS (
           INSERT INTO {revenue_table} (day, currency, orders, total_minor)
           SELECT * FROM UNNEST($19::date[], $20::text[], $21::int8[], $22::int8[])
           ON CONFLICT (day, currency) DO UPDATE SET orders = {revenue_table}.orders + EXCLUDED.orders,
             total_minor = {revenue_table}.total_minor + EXCLUDED.total_minor)
         SELECT 1"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(rows.iter().map(|r| r.order_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.customer_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.currency.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.total_minor).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.items.clone()).collect::<Vec<_>>())
        .bind(column(|r| r.cancellation_reason.clone()))
        .bind(column(|r| r.carrier.clone()))
        .bind(column(|r| r.tracking_number.clone()))
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(time(|r| r.confirmed_at))
        .bind(time(|r| r.cancelled_at))
        .bind(time(|r| r.shipped_at))
        .bind(time(|r| r.delivered_at))
        .bind(versions)
        .bind(positions)
        .bind(
            summary
                .status_counts
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .bind(summary.status_counts.values().copied().collect::<Vec<_>>())
        .bind(revenue.0)
        .bind(revenue.1)
        .bind(revenue.2)
        .bind(revenue.3)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
