//! The customer summary in PostgreSQL.

use std::collections::HashMap;

use event_store::RecordedEvent;
use read_model::{Applied, OnError, PgDialect, Projection, position_to_sql};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::{
    CUSTOMERS_PROJECTION, CustomerProjection, CustomerSummary, CustomerTables, OrderLine,
    SummaryWrites, fold_batch,
};
use crate::batch::order_ids;
use crate::schema::from_sql;

type Tx = Transaction<'static, Postgres>;

impl Projection<PgDialect> for CustomerProjection {
    fn name(&self) -> &str {
        CUSTOMERS_PROJECTION
    }

    async fn create_tables(&self, db: &PgDialect, generation: i32) -> read_model::Result<()> {
        let t = CustomerTables::new(generation);
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {orders} (order_id UUID PRIMARY KEY, customer_id UUID NOT NULL,
                status TEXT NOT NULL, currency TEXT NOT NULL, total_minor BIGINT NOT NULL,
                spent BOOLEAN NOT NULL, version BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS {customers} (customer_id UUID PRIMARY KEY, orders BIGINT NOT NULL,
                first_order_at TIMESTAMPTZ NOT NULL, last_order_at TIMESTAMPTZ NOT NULL);
             CREATE TABLE IF NOT EXISTS {statuses} (customer_id UUID NOT NULL, status TEXT NOT NULL,
                orders BIGINT NOT NULL, PRIMARY KEY (customer_id, status));
             CREATE TABLE IF NOT EXISTS {spend} (customer_id UUID NOT NULL, currency TEXT NOT NULL,
                orders BIGINT NOT NULL, total_minor BIGINT NOT NULL, PRIMARY KEY (customer_id, currency));",
            orders = t.orders,
            customers = t.customers,
            statuses = t.statuses,
            spend = t.spend
        );
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(db.pool()).await?;
        Ok(())
    }

    async fn drop_tables(&self, db: &PgDialect, generation: i32) -> read_model::Result<()> {
        let t = CustomerTables::new(generation);
        let ddl = format!(
            "DROP TABLE IF EXISTS {}, {}, {}, {}",
            t.orders, t.customers, t.statuses, t.spend
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
        let t = CustomerTables::new(generation);
        let ids = order_ids(events);
        let current = sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM {} WHERE order_id = ANY($1)",
            t.orders
        )))
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
        let lines: HashMap<Uuid, OrderLine> = current
            .iter()
            .map(line)
            .map(|l| l.map(|l| (l.order_id, l)))
            .collect::<sqlx::Result<_>>()?;
        let writes = fold_batch(events, lines, after, on_error);
        write_batch(tx, &t, &writes).await?;
        Ok(writes.applied)
    }
}

/// Writes a batch in one statement and one round trip, each table's upsert a data-modifying
/// `WITH` clause over `UNNEST`ed column arrays (as the order read model does). Within a batch
/// each order, customer, (customer, status) and (customer, currency) appears once, so no
/// statement updates a row twice.
async fn write_batch(
    tx: &mut Tx,
    t: &CustomerTables,
    writes: &SummaryWrites,
) -> read_model::Result<()> {
    let lines = &writes.lines;
    if lines.is_empty() && writes.changes.is_empty() {
        return Ok(());
    }
    let versions = lines
        .iter()
        .map(|l| position_to_sql(l.version))
        .collect::<read_model::Result<Vec<_>>>()?;
    let mut customers = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut statuses = (Vec::new(), Vec::new(), Vec::new());
    let mut spend = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (customer, change) in &writes.changes {
        if let (Some(first), Some(last)) = (change.first_order_at, change.last_order_at) {
            customers.0.push(*customer);
            customers.1.push(change.orders);
            customers.2.push(first);
            customers.3.push(last);
        }
        for (status, delta) in &change.by_status {
            statuses.0.push(*customer);
            statuses.1.push(status.as_str());
            statuses.2.push(*delta);
        }
        for (currency, (orders, total)) in &change.spend {
            spend.0.push(*customer);
            spend.1.push(currency.as_str());
            spend.2.push(*orders);
            spend.3.push(*total);
        }
    }
    let sql = format!(
        "WITH lines AS (
           INSERT INTO {orders} (order_id, customer_id, status, currency, total_minor, spent, version)
           SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[], $6::bool[], $7::int8[])
           ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, spent = EXCLUDED.spent,
             version = EXCLUDED.version),
         customers AS (
           INSERT INTO {customers} (customer_id, orders, first_order_at, last_order_at)
           SELECT * FROM UNNEST($8::uuid[], $9::int8[], $10::timestamptz[], $11::timestamptz[])
           ON CONFLICT (customer_id) DO UPDATE SET orders = {customers}.orders + EXCLUDED.orders,
             first_order_at = LEAST({customers}.first_order_at, EXCLUDED.first_order_at),
             last_order_at = GREATEST({customers}.last_order_at, EXCLUDED.last_order_at)),
         statuses AS (
           INSERT INTO {statuses} (customer_id, status, orders)
           SELECT * FROM UNNEST($12::uuid[], $13::text[], $14::int8[])
           ON CONFLICT (customer_id, status) DO UPDATE SET orders = {statuses}.orders + EXCLUDED.orders),
         spend AS (
           INSERT INTO {spend} (customer_id, currency, orders, total_minor)
           SELECT * FROM UNNEST($15::uuid[], $16::text[], $17::int8[], $18::int8[])
           ON CONFLICT (customer_id, currency) DO UPDATE SET orders = {spend}.orders + EXCLUDED.orders,
             total_minor = {spend}.total_minor + EXCLUDED.total_minor)
         SELECT 1",
        orders = t.orders,
        customers = t.customers,
        statuses = t.statuses,
        spend = t.spend
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(lines.iter().map(|l| l.order_id).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.customer_id).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.status.as_str()).collect::<Vec<_>>())
        .bind(
            lines
                .iter()
                .map(|l| l.currency.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(lines.iter().map(|l| l.total_minor).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.spent).collect::<Vec<_>>())
        .bind(versions)
        .bind(customers.0)
        .bind(customers.1)
        .bind(customers.2)
        .bind(customers.3)
        .bind(statuses.0)
        .bind(statuses.1)
        .bind(statuses.2)
        .bind(spend.0)
        .bind(spend.1)
        .bind(spend.2)
        .bind(spend.3)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn line(r: &PgRow) -> sqlx::Result<OrderLine> {
    Ok(OrderLine {
        order_id: r.try_get("order_id")?,
        customer_id: r.try_get("customer_id")?,
        status: r.try_get("status")?,
        currency: r.try_get("currency")?,
        total_minor: r.try_get("total_minor")?,
        spent: r.try_get("spent")?,
        version: from_sql(r.try_get("version")?)?,
    })
}

/// One customer's summary from the tables of `generation`.
pub async fn summary(
    pool: &PgPool,
    generation: i32,
    customer: Uuid,
) -> sqlx::Result<CustomerSummary> {
    let t = CustomerTables::new(generation);
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT orders, first_order_at, last_order_at FROM {} WHERE customer_id = $1",
        t.customers
    )))
    .bind(customer)
    .fetch_optional(pool)
    .await?;
    let statuses = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT status, orders FROM {} WHERE customer_id = $1 AND orders <> 0 ORDER BY status",
        t.statuses
    )))
    .bind(customer)
    .fetch_all(pool)
    .await?;
    let spend = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT currency, orders, total_minor FROM {} WHERE customer_id = $1
           AND (orders <> 0 OR total_minor <> 0) ORDER BY currency",
        t.spend
    )))
    .bind(customer)
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
