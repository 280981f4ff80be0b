//! The order read model in SQLite (the same shape as on PostgreSQL; UUIDs and JSON as text).

use std::collections::HashMap;

use chrono::NaiveDate;
use event_store::RecordedEvent;
use read_model::{Applied, OnError, Projection, SqliteDialect, position_to_sql};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::batch::{fold_batch, order_ids};
use super::schema::{ListQuery, ORDERS_PROJECTION, OrderProjection, Stats, Tables, from_sql};
use super::view::OrderView;

type Tx = Transaction<'static, Sqlite>;

/// The order read model's queries in the SQLite file of the events (its read pool).
#[derive(Debug, Clone)]
pub struct SqliteReadModel {
    reader: SqlitePool,
}

impl SqliteReadModel {
    /// Over the store's read pool.
    pub fn new(reader: SqlitePool) -> Self {
        Self { reader }
    }

    /// One order's row.
    pub async fn order(&self, generation: i32, id: Uuid) -> sqlx::Result<Option<OrderView>> {
        let sql = format!(
            "SELECT * FROM {} WHERE order_id = $1",
            Tables::new(generation).details
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(view).transpose()
    }

    /// A page of orders, newest first.
    pub async fn list(&self, generation: i32, query: &ListQuery) -> sqlx::Result<Vec<OrderView>> {
        let sql = format!(
            "SELECT * FROM {} WHERE ($1 IS NULL OR customer_id = $1) AND ($2 IS NULL OR status = $2)
               AND ($3 IS NULL OR order_id >= $3) AND ($4 IS NULL OR order_id <= $4)
               ORDER BY order_id DESC LIMIT $5",
            Tables::new(generation).details
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(query.customer_id.map(|id| id.to_string()))
            .bind(query.status.as_deref())
            .bind(query.lowest.map(|id| id.to_string()))
            .bind(query.highest.map(|id| id.to_string()))
            .bind(i64::try_from(query.limit).unwrap_or(100))
            .fetch_all(&self.reader)
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
        .fetch_all(&self.reader)
        .await?;
        let revenue = sqlx::query(AssertSqlSafe(format!(
            "SELECT day, currency, orders, total_minor FROM {} WHERE orders <> 0 OR total_minor <> 0 ORDER BY day, currency",
            t.revenue
        )))
        .fetch_all(&self.reader)
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

/// The order read model as the engine drives it on SQLite.
impl Projection<SqliteDialect> for OrderProjection {
    fn name(&self) -> &str {
        ORDERS_PROJECTION
    }

    async fn create_tables(&self, db: &SqliteDialect, generation: i32) -> read_model::Result<()> {
        let t = Tables::new(generation);
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {details} (
                order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL,
                currency TEXT NOT NULL, total_minor INTEGER NOT NULL, items TEXT NOT NULL,
                cancellation_reason TEXT, carrier TEXT, tracking_number TEXT,
                created_at TEXT NOT NULL, confirmed_at TEXT, cancelled_at TEXT,
                shipped_at TEXT, delivered_at TEXT,
                version INTEGER NOT NULL, last_position INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS {details}_customer ON {details} (customer_id, order_id);
             CREATE INDEX IF NOT EXISTS {details}_status ON {details} (status, order_id);
             CREATE TABLE IF NOT EXISTS {counts} (status TEXT PRIMARY KEY, orders INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS {revenue} (day TEXT NOT NULL, currency TEXT NOT NULL,
                orders INTEGER NOT NULL, total_minor INTEGER NOT NULL, PRIMARY KEY (day, currency));",
            details = t.details, counts = t.counts, revenue = t.revenue
        );
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(db.writer())
            .await?;
        Ok(())
    }

    async fn drop_tables(&self, db: &SqliteDialect, generation: i32) -> read_model::Result<()> {
        let t = Tables::new(generation);
        let ddl = format!(
            "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
            t.details, t.counts, t.revenue
        );
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(db.writer())
            .await?;
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
        let sql = format!(
            "SELECT * FROM {} WHERE order_id IN (SELECT value FROM json_each($1))",
            t.details
        );
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let ids = serde_json::Value::from(ids).to_string();
        let current = sqlx::query(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?;
        let rows: HashMap<Uuid, OrderView> = current
            .iter()
            .map(view)
            .map(|v| v.map(|v| (v.order_id, v)))
            .collect::<sqlx::Result<_>>()?;
        let writes = fold_batch(events, rows, after, on_error);
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
                .bind(row.order_id.to_string())
                .bind(row.customer_id.to_string())
                .bind(&row.status)
                .bind(&row.currency)
                .bind(row.total_minor)
                .bind(row.items.to_string())
                .bind(&row.cancellation_reason)
                .bind(&row.carrier)
                .bind(&row.tracking_number)
                .bind(row.created_at)
                .bind(row.confirmed_at)
                .bind(row.cancelled_at)
                .bind(row.shipped_at)
                .bind(row.delivered_at)
                .bind(position_to_sql(row.version)?)
                .bind(position_to_sql(row.last_position)?)
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
        Ok(writes.applied)
    }
}

fn view(r: &SqliteRow) -> sqlx::Result<OrderView> {
    Ok(OrderView {
        order_id: uuid(r, "order_id")?,
        customer_id: uuid(r, "customer_id")?,
        status: r.try_get("status")?,
        currency: r.try_get("currency")?,
        total_minor: r.try_get("total_minor")?,
        items: json(r, "items")?,
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

fn uuid(r: &SqliteRow, column: &str) -> sqlx::Result<Uuid> {
    let text: &str = r.try_get(column)?;
    Uuid::parse_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn json(r: &SqliteRow, column: &str) -> sqlx::Result<serde_json::Value> {
    let text: &str = r.try_get(column)?;
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
