//! The customer summary's tables, written once for both backends: their names per generation
//! and their DDL in each dialect's column types.

use std::collections::HashMap;

use event_store::RecordedEvent;
use read_model::{Applied, Dialect, OnError};
use uuid::Uuid;

use super::{CUSTOMERS_PROJECTION, CustomerProjection, OrderLine, SummaryWrites, fold_batch};
use crate::projection::PerOrderModel;
use crate::schema::drop_tables;

/// The table names of one generation.
#[derive(Debug, Clone)]
pub struct CustomerTables {
    /// Per order: enough to attribute its later events to its customer.
    pub orders: String,
    /// Per customer: order count, first and last order.
    pub customers: String,
    /// Per customer and status: orders.
    pub statuses: String,
    /// Per customer and currency: confirmed, not cancelled orders and their totals.
    pub spend: String,
}

impl CustomerTables {
    /// The names for `generation` (an integer we produce, never user input).
    pub fn new(generation: i32) -> Self {
        Self {
            orders: format!("rm_customer_orders_g{generation}"),
            customers: format!("rm_customers_g{generation}"),
            statuses: format!("rm_customer_statuses_g{generation}"),
            spend: format!("rm_customer_spend_g{generation}"),
        }
    }

    /// Creates the tables if missing, in `D`'s column types.
    pub fn create<D: Dialect>(&self) -> String {
        let ty = D::TYPES;
        format!(
            "CREATE TABLE IF NOT EXISTS {orders} (order_id {id} PRIMARY KEY, customer_id {id} NOT NULL,
                status TEXT NOT NULL, currency TEXT NOT NULL, total_minor {int} NOT NULL,
                spent {bool} NOT NULL, version {int} NOT NULL);
             CREATE TABLE IF NOT EXISTS {customers} (customer_id {id} PRIMARY KEY, orders {int} NOT NULL,
                first_order_at {time} NOT NULL, last_order_at {time} NOT NULL);
             CREATE TABLE IF NOT EXISTS {statuses} (customer_id {id} NOT NULL, status TEXT NOT NULL,
                orders {int} NOT NULL, PRIMARY KEY (customer_id, status));
             CREATE TABLE IF NOT EXISTS {spend} (customer_id {id} NOT NULL, currency TEXT NOT NULL,
                orders {int} NOT NULL, total_minor {int} NOT NULL, PRIMARY KEY (customer_id, currency));",
            orders = self.orders,
            customers = self.customers,
            statuses = self.statuses,
            spend = self.spend,
            id = ty.id,
            int = ty.int,
            bool = ty.bool,
            time = ty.time,
        )
    }

    /// Drops the tables if they exist.
    pub fn drop(&self) -> String {
        drop_tables(&[&self.orders, &self.customers, &self.statuses, &self.spend])
    }
}

impl PerOrderModel for CustomerProjection {
    const NAME: &'static str = CUSTOMERS_PROJECTION;
    type Tables = CustomerTables;
    type Row = OrderLine;
    type Writes = SummaryWrites;

    fn tables(generation: i32) -> CustomerTables {
        CustomerTables::new(generation)
    }

    fn rows_table(tables: &CustomerTables) -> &str {
        &tables.orders
    }

    fn create<D: Dialect>(tables: &CustomerTables) -> String {
        tables.create::<D>()
    }

    fn drop(tables: &CustomerTables) -> String {
        tables.drop()
    }

    fn fold(
        events: &[RecordedEvent],
        rows: HashMap<Uuid, OrderLine>,
        after: u64,
        on_error: OnError,
    ) -> SummaryWrites {
        fold_batch(events, rows, after, on_error)
    }

    fn applied(writes: &SummaryWrites) -> &Applied {
        &writes.applied
    }
}
