//! The customer summary in SQLite (the same shape as on PostgreSQL; UUIDs as text).

use std::collections::HashMap;

use event_store::RecordedEvent;
use read_model::{Applied, OnError, Projection, SqliteDialect, position_to_sql};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::{
    CUSTOMERS_PROJECTION, CustomerProjection, CustomerSummary, CustomerTables, OrderLine,
    fold_batch,
};
use crate::batch::order_ids;
use crate::schema::from_sql;

type Tx = Transaction<'static, Sqlite>;

impl Projection<SqliteDialect> for CustomerProjection {
    fn name(&self) -> &str {
        CUSTOMERS_PROJECTION
    }

    async fn create_tables(&self, db: &SqliteDialect, generation: i32) -> read_model::Result<()> {
        let t = CustomerTables::new(generation);
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {orders} (order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,
                status TEXT NOT NULL, currency TEXT NOT NULL, total_minor INTEGER NOT NULL,
                spent INTEGER NOT NULL, version INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS {customers} (customer_id TEXT PRIMARY KEY, orders INTEGER NOT NULL,
                first_order_at TEXT NOT NULL, last_order_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {statuses} (customer_id TEXT NOT NULL, status TEXT NOT NULL,
                orders INTEGER NOT NULL, PRIMARY KEY (customer_id, status));
             CREATE TABLE IF NOT EXISTS {spend} (customer_id TEXT NOT NULL, currency TEXT NOT NULL,
                orders INTEGER NOT NULL, total_minor INTEGER NOT NULL, PRIMARY KEY (customer_id, currency));",
            orders = t.orders,
            customers = t.customers,
            statuses = t.statuses,
            spend = t.spend
        );
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(db.writer())
            .await?;
        Ok(())
    }

    async fn drop_tables(&self, db: &SqliteDialect, generation: i32) -> read_model::Result<()> {
        let t = CustomerTables::new(generation);
        let ddl = format!(
            "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
            t.orders, t.customers, t.statuses, t.spend
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
        let t = CustomerTables::new(generation);
        let ids = order_ids(events);
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let current = sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM {} WHERE order_id IN (SELECT value FROM json_each($1))",
            t.orders
        )))
        .bind(serde_json::Value::from(ids).to_string())
        .fetch_all(&mut **tx)
        .await?;
        let lines: HashMap<Uuid, OrderLine> = current
            .iter()
            .map(line)
            .map(|l| l.map(|l| (l.order_id, l)))
            .collect::<sqlx::Result<_>>()?;
        let writes = fold_batch(events, lines, after, on_error);
        let upsert = format!(
            "INSERT INTO {} (order_id, customer_id, status, currency, total_minor, spent, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, spent = EXCLUDED.spent,
                version = EXCLUDED.version",
            t.orders
        );
        for line in &writes.lines {
            sqlx::query(AssertSqlSafe(upsert.clone()))
                .bind(line.order_id.to_string())
                .bind(line.customer_id.to_string())
                .bind(&line.status)
                .bind(&line.currency)
                .bind(line.total_minor)
                .bind(line.spent)
                .bind(position_to_sql(line.version)?)
                .execute(&mut **tx)
                .await?;
        }
        let customers = format!(
            "INSERT INTO {0} (customer_id, orders, first_order_at, last_order_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (customer_id) DO UPDATE SET orders = {0}.orders + EXCLUDED.orders,
                first_order_at = MIN({0}.first_order_at, EXCLUDED.first_order_at),
                last_order_at = MAX({0}.last_order_at, EXCLUDED.last_order_at)",
            t.customers
        );
        let statuses = format!(
            "INSERT INTO {0} (customer_id, status, orders) VALUES ($1, $2, $3)
             ON CONFLICT (customer_id, status) DO UPDATE SET orders = {0}.orders + EXCLUDED.orders",
            t.statuses
        );
        let spend = format!(
            "INSERT INTO {0} (customer_id, currency, orders, total_minor) VALUES ($1, $2, $3, $4)
             ON CONFLICT (customer_id, currency) DO UPDATE SET orders = {0}.orders + EXCLUDED.orders,
                total_minor = {0}.total_minor + EXCLUDED.total_minor",
            t.spend
        );
        for (customer, change) in &writes.changes {
            if let (Some(first), Some(last)) = (change.first_order_at, change.last_order_at) {
                sqlx::query(AssertSqlSafe(customers.clone()))
                    .bind(customer.to_string())
                    .bind(change.orders)
                    .bind(first)
                    .bind(last)
                    .execute(&mut **tx)
                    .await?;
            }
            for (status, delta) in &change.by_status {
                sqlx::query(AssertSqlSafe(statuses.clone()))
                    .bind(customer.to_string())
                    .bind(status)
                    .bind(delta)
                    .execute(&mut **tx)
                    .await?;
            }
            for (currency, (orders, total)) in &change.spend {
                sqlx::query(AssertSqlSafe(spend.clone()))
                    .bind(customer.to_string())
                    .bind(currency)
                    .bind(orders)
                    .bind(total)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(writes.applied)
    }
}

fn uuid(r: &SqliteRow, column: &str) -> sqlx::Result<Uuid> {
    let text: &str = r.try_get(column)?;
    Uuid::parse_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn line(r: &SqliteRow) -> sqlx::Result<OrderLine> {
    Ok(OrderLine {
        order_id: uuid(r, "order_id")?,
        customer_id: uuid(r, "customer_id")?,
        status: r.try_get("status")?,
        currency: r.try_get("currency")?,
        total_minor: r.try_get("total_minor")?,
        spent: r.try_get("spent")?,
        version: from_sql(r.try_get("version")?)?,
    })
}

/// One customer's summary from the tables of `generation`.
pub async fn summary(
    pool: &SqlitePool,
    generation: i32,
    customer: Uuid,
) -> sqlx::Result<CustomerSummary> {
    let t = CustomerTables::new(generation);
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT orders, first_order_at, last_order_at FROM {} WHERE customer_id = $1",
        t.customers
    )))
    .bind(customer.to_string())
    .fetch_optional(pool)
    .await?;
    let statuses = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT status, orders FROM {} WHERE customer_id = $1 AND orders <> 0 ORDER BY status",
        t.statuses
    )))
    .bind(customer.to_string())
    .fetch_all(pool)
    .await?;
    let spend = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT currency, orders, total_minor FROM {} WHERE customer_id = $1
           AND (orders <> 0 OR total_minor <> 0) ORDER BY currency",
        t.spend
    )))
    .bind(customer.to_string())
    .fetch_all(pool)
    .await?;
    Ok(CustomerSummary {
        orders: row
            .as_ref()
            .map(|r| r.try_get("orders"))
            .transpose()?
            .unwrap_or(0),
        first_order_at: row
            .as_ref()
            .map(|r| r.try_get("first_order_at"))
            .transpose()?,
        last_order_at: row
            .as_ref()
            .map(|r| r.try_get("last_order_at"))
            .transpose()?,
        by_status: statuses,
        spend,
    })
}
