//! Metrics: the Prometheus recorder and the series the service reports at scrape time.
//!
//! Names follow Prometheus conventions: `_total` counters, `_seconds` in base units, bounded label
//! sets (route templates, command names, outcomes; never an order id).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from sub-millisecond appends to slow requests.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (a test harness): render an empty, private one.
            Err(error) => {
                tracing::warn!(%error, "a metrics recorder is already installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// Describes every series once, so `/metrics` carries HELP lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests by method, route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        "HTTP request latency by method and route template"
    );
    describe_counter!("commands_total", "Commands by command and outcome");
    describe_histogram!(
        "command_duration_seconds",
        "Command handling latency by command"
    );
    describe_counter!(
        "command_conflicts_total",
        "Optimistic-concurrency conflicts met while handling commands"
    );
    describe_counter!(
        "command_retries_total",
        "Commands decided again after losing a race"
    );
    describe_counter!("event_store_appends_total", "Appends by outcome");
    describe_counter!("event_store_appended_events_total", "Events written");
    describe_histogram!("event_store_append_duration_seconds", "Append latency");
    describe_counter!(
        "snapshot_loads_total",
        "Aggregate loads by snapshot result (hit, miss, ignored)"
    );
    describe_counter!(
        "idempotency_records_purged_total",
        "Idempotency records deleted after ORDERS_IDEMPOTENCY_RETENTION"
    );
    describe_gauge!(
        "event_store_primary",
        "1 for the PostgreSQL server (label server=host:port) connections go to, 0 for the others"
    );
    describe_gauge!(
        "event_store_primary_reachable",
        "1 while a server of DATABASE_URL that accepts writes answers, 0 while none does"
    );
    describe_counter!(
        "event_store_failovers_total",
        "Times the service moved its connections to another PostgreSQL server"
    );
    describe_counter!(
        "event_store_connection_errors_total",
        "Failed connection attempts by kind (unreachable, timeout, wrong_role, refused, tls, other)"
    );
    describe_gauge!(
        "event_store_commits_replicated",
        "1 while commits wait for a synchronous standby that is connected; 0 on one server or \
         while no synchronous standby is connected (alert on 0 in an HA formation)"
    );
    describe_gauge!(
        "event_store_synchronous_standbys",
        "Synchronous standbys connected to the primary"
    );
    describe_gauge!(
        "db_pool_connections",
        "Database connections by state (in_use, idle)"
    );
    describe_gauge!(
        "feed_unsequenced_events",
        "Committed events not yet numbered by the sequencer"
    );
    describe_gauge!(
        "feed_oldest_unsequenced_seconds",
        "Age of the oldest committed event not yet numbered"
    );
    describe_counter!("projection_events_total", "Events read by projections");
    describe_counter!(
        "projection_parked_events_total",
        "Events projections could not apply and parked"
    );
    describe_counter!("projection_errors_total", "Failed projection batches");
    describe_gauge!(
        "projection_lag_events",
        "Events in the feed not yet applied, per projection"
    );
    describe_gauge!(
        "projection_lag_seconds",
        "Age of the oldest event not yet applied, per projection"
    );
    describe_histogram!("projection_batch_seconds", "Projection batch latency");
    describe_gauge!(
        "projection_leader",
        "1 while this instance holds the projection's lease (applies its events), 0 on standby"
    );
    describe_gauge!(
        "projection_stopped",
        "1 while the projection is stopped at an event it cannot apply (ORDERS_PROJECTION_ON_ERROR=stop)"
    );
    describe_counter!(
        "cache_requests_total",
        "Order cache lookups by result (hit, miss)"
    );
    describe_counter!(
        "cache_failures_total",
        "Order cache operations that failed or timed out"
    );
}
