//! The customer summary's batch write on PostgreSQL: one statement over column arrays.

use read_model::{PgDialect, position_to_sql};
use sqlx::AssertSqlSafe;

use super::{CustomerProjection, CustomerTables, SummaryWrites};
use crate::postgres::Tx;
use crate::projection::Storage;

impl Storage<CustomerProjection> for PgDialect {
    async fn write(
        tx: &mut Tx,
        t: &CustomerTables,
        writes: &SummaryWrites,
    ) -> read_model::Result<()> {
        write_batch(tx, t, writes).await
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
