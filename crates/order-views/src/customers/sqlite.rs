//! The customer summary's batch write on SQLite: one statement per row, in the single writer's
//! transaction.

use read_model::{SqliteDialect, position_to_sql};
use sqlx::AssertSqlSafe;
use store::SqlId;

use super::{CustomerProjection, CustomerTables, SummaryWrites};
use crate::projection::Storage;
use crate::sqlite::Tx;

impl Storage<CustomerProjection> for SqliteDialect {
    async fn write(
        tx: &mut Tx,
        t: &CustomerTables,
        writes: &SummaryWrites,
    ) -> read_model::Result<()> {
        let upsert = format!(
            "INSERT INTO {} (order_id, customer_id, status, currency, total_minor, spent, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, spent = EXCLUDED.spent,
                version = EXCLUDED.version",
            t.orders
        );
        for line in &writes.lines {
            sqlx::query(AssertSqlSafe(upsert.clone()))
                .bind(SqlId(line.order_id))
                .bind(SqlId(line.customer_id))
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
                    .bind(SqlId(*customer))
                    .bind(change.orders)
                    .bind(first)
                    .bind(last)
                    .execute(&mut **tx)
                    .await?;
            }
            for (status, delta) in &change.by_status {
                sqlx::query(AssertSqlSafe(statuses.clone()))
                    .bind(SqlId(*customer))
                    .bind(status)
                    .bind(delta)
                    .execute(&mut **tx)
                    .await?;
            }
            for (currency, (orders, total)) in &change.spend {
                sqlx::query(AssertSqlSafe(spend.clone()))
                    .bind(SqlId(*customer))
                    .bind(currency)
                    .bind(orders)
                    .bind(total)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}
