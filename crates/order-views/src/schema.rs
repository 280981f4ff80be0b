//! The order read model's tables, written once for both backends: their names per generation,
//! their DDL (in each dialect's column types), its projection's name, the shape of its queries
//! and answers.

use std::collections::HashMap;

use chrono::NaiveDate;
use event_store::RecordedEvent;
use read_model::{Applied, Dialect, OnError};
use uuid::Uuid;

use crate::batch::{BatchWrites, fold_batch};
use crate::projection::PerOrderModel;
use crate::view::OrderView;

/// The tables of one generation of the order read model. A rebuild fills generation n+1 while
/// generation n keeps serving, then switches.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Order details.
    pub details: String,
    /// Orders per status.
    pub counts: String,
    /// Revenue per day and currency.
    pub revenue: String,
}

impl Tables {
    /// The names for `generation` (an integer we produce, never user input).
    pub fn new(generation: i32) -> Self {
        Self {
            details: format!("rm_order_details_g{generation}"),
            counts: format!("rm_status_counts_g{generation}"),
            revenue: format!("rm_daily_revenue_g{generation}"),
        }
    }

    /// Creates the tables (and their indexes) if missing, in `D`'s column types.
    pub fn create<D: Dialect>(&self) -> String {
        let ty = D::TYPES;
        format!(
            "CREATE TABLE IF NOT EXISTS {details} (
                order_id {id} PRIMARY KEY, customer_id {id} NOT NULL, status TEXT NOT NULL,
                currency TEXT NOT NULL, total_minor {int} NOT NULL, items {json} NOT NULL,
                cancellation_reason TEXT, carrier TEXT, tracking_number TEXT,
                created_at {time} NOT NULL, confirmed_at {time}, cancelled_at {time},
                shipped_at {time}, delivered_at {time},
                version {int} NOT NULL, last_position {int} NOT NULL);
             CREATE INDEX IF NOT EXISTS {details}_customer ON {details} (customer_id, order_id);
             CREATE INDEX IF NOT EXISTS {details}_status ON {details} (status, order_id);
             CREATE TABLE IF NOT EXISTS {counts} (status TEXT PRIMARY KEY, orders {int} NOT NULL);
             CREATE TABLE IF NOT EXISTS {revenue} (day {date} NOT NULL, currency TEXT NOT NULL,
                orders {int} NOT NULL, total_minor {int} NOT NULL, PRIMARY KEY (day, currency));",
            details = self.details,
            counts = self.counts,
            revenue = self.revenue,
            id = ty.id,
            int = ty.int,
            json = ty.json,
            time = ty.time,
            date = ty.date,
        )
    }

    /// Drops the tables if they exist.
    pub fn drop(&self) -> String {
        drop_tables(&[&self.details, &self.counts, &self.revenue])
    }
}

/// `DROP TABLE IF EXISTS` for each of `tables` (one statement each: SQLite drops one at a time).
pub(crate) fn drop_tables(tables: &[&str]) -> String {
    tables
        .iter()
        .map(|t| format!("DROP TABLE IF EXISTS {t};"))
        .collect()
}

/// Filters and cursor of `GET /orders`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this customer's orders.
    pub customer_id: Option<Uuid>,
    /// Only orders with this status.
    pub status: Option<String>,
    /// Only orders whose id is at least this. Order ids are UUID v7, so an id range is a range
    /// of creation times, and an id prefix is a range too (see `http::queries::IdRange`).
    pub lowest: Option<Uuid>,
    /// Only orders whose id is at most this (a cursor `c` is `c - 1`).
    pub highest: Option<Uuid>,
    /// Page size.
    pub limit: usize,
}

/// The summary: counts by status and revenue per day and currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// (status, orders).
    pub orders_by_status: Vec<(String, i64)>,
    /// (confirmation day, currency, orders, total minor units) of confirmed, not cancelled orders.
    pub revenue: Vec<(NaiveDate, String, i64, i64)>,
}

/// Name of the order read model's projection (its checkpoint row).
pub const ORDERS_PROJECTION: &str = "orders";

/// The order read model (details, counts by status, revenue per day): its tables here, its pure
/// fold in `view.rs`/`batch.rs`, its batch write per backend in `postgres.rs` and `sqlite.rs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderProjection;

impl PerOrderModel for OrderProjection {
    const NAME: &'static str = ORDERS_PROJECTION;
    type Tables = Tables;
    type Row = OrderView;
    type Writes = BatchWrites;

    fn tables(generation: i32) -> Tables {
        Tables::new(generation)
    }

    fn rows_table(tables: &Tables) -> &str {
        &tables.details
    }

    fn create<D: Dialect>(tables: &Tables) -> String {
        tables.create::<D>()
    }

    fn drop(tables: &Tables) -> String {
        tables.drop()
    }

    fn fold(
        events: &[RecordedEvent],
        rows: HashMap<Uuid, OrderView>,
        after: u64,
        on_error: OnError,
    ) -> BatchWrites {
        fold_batch(events, rows, after, on_error)
    }

    fn applied(writes: &BatchWrites) -> &Applied {
        &writes.applied
    }
}
