//! The order read model's batch on PostgreSQL: ids and rows travel as arrays, so a batch loads
//! in one statement and writes in another.

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, FromRow, Postgres, Transaction};
use uuid::Uuid;

use read_model::{PgDialect, position_to_sql};

use crate::batch::BatchWrites;
use crate::projection::{LoadRows, Storage};
use crate::schema::{OrderProjection, Tables};
use crate::view::OrderView;

pub(crate) type Tx = Transaction<'static, Postgres>;

impl LoadRows for PgDialect {
    type SqlRow = PgRow;

    /// One statement, the ids as one array.
    async fn load<R>(tx: &mut Tx, table: &str, ids: &[Uuid]) -> read_model::Result<Vec<R>>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let sql = format!("SELECT * FROM {table} WHERE order_id = ANY($1)");
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?)
    }
}

impl Storage<OrderProjection> for PgDialect {
    async fn write(tx: &mut Tx, t: &Tables, writes: &BatchWrites) -> read_model::Result<()> {
        write_batch(tx, t, writes).await
    }
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
