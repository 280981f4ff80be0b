//! The order read model's batch on SQLite: no arrays, so ids travel as one JSON array and rows
//! are written one statement each (in the single writer's transaction, without a round trip to
//! a server).

use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, Sqlite, Transaction};
use uuid::Uuid;

use read_model::{SqliteDialect, position_to_sql};
use store::SqlId;

use crate::batch::BatchWrites;
use crate::projection::{LoadRows, Storage};
use crate::schema::{OrderProjection, Tables};

pub(crate) type Tx = Transaction<'static, Sqlite>;

impl LoadRows for SqliteDialect {
    type SqlRow = SqliteRow;

    /// One statement, the ids as one JSON array.
    async fn load<R>(tx: &mut Tx, table: &str, ids: &[Uuid]) -> read_model::Result<Vec<R>>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let sql =
            format!("SELECT * FROM {table} WHERE order_id IN (SELECT value FROM json_each($1))");
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(Json(ids))
            .fetch_all(&mut **tx)
            .await?)
    }
}

impl Storage<OrderProjection> for SqliteDialect {
    async fn write(tx: &mut Tx, t: &Tables, writes: &BatchWrites) -> read_model::Result<()> {
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
                .bind(SqlId(row.order_id))
                .bind(SqlId(row.customer_id))
                .bind(&row.status)
                .bind(&row.currency)
                .bind(row.total_minor)
                .bind(Json(&row.items))
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
        Ok(())
    }
}
