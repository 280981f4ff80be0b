//! The operator console: server-rendered pages under `/console` for staff (ADR 0018).
//!
//! - [`session`]: one-time login links, the session cookie and CSRF tokens, signed with a key of
//!   the console's own; [`links`] records each link's one use; [`guard`] checks them per request.
//! - [`api`]: pages read and act through the service's own API, in process, as the staff member.
//! - `pages/`: one file per page; [`health`] samples the service's metrics for the charts.
//! - `assets/`: the stylesheet and the one small script (live feed, chart refresh), compiled in.
//!
//! The console owns no rule: it cannot name the command handler or the domain's decisions (this
//! crate does not depend on them). What it uses is handed in ([`ConsoleDeps`]): the API router,
//! called in process as the signed-in staff member, a way to mint that member's short-lived API
//! token, the store's feed, and the process's metrics.

mod api;
mod assets;
mod guard;
pub mod health;
pub mod links;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use outbox::{RelayDb, RelayStatus};
use tokio::sync::watch;

pub use health::HealthSamples;
pub use links::LinkTable;
pub use session::ConsoleKeys;

use std::time::Duration;

use read_model::OnError;
use store::Store;
use store::replicas::Replicas;

/// The Kafka relay as the console shows it.
#[derive(Debug, Clone)]
pub struct RelayView {
    /// Its checkpoint's row name (`kafka-relay:<topic>`).
    pub checkpoint_name: String,
    /// The topic.
    pub topic: String,
    /// Where its checkpoint is stored.
    pub db: RelayDb,
    /// This instance's relay: whether it leads.
    pub status: watch::Receiver<RelayStatus>,
}

/// What the console needs besides the API.
#[derive(Debug, Clone)]
pub struct Console {
    /// Signs links, sessions and CSRF tokens.
    pub keys: ConsoleKeys,
    /// Records used links.
    pub links: LinkTable,
    /// The charts' samples.
    pub health: HealthSamples,
    /// The relay, when this instance publishes to Kafka.
    pub relay: Option<RelayView>,
}

/// Mints the short-lived staff API token one internal call carries: `(subject, lifetime)` →
/// the bearer token, or `None` when it cannot be signed.
pub type MintStaffToken = Arc<dyn Fn(&str, Duration) -> Option<String> + Send + Sync>;

/// What the console uses of the service, handed in so that it sees nothing else.
#[derive(Clone)]
pub struct ConsoleDeps {
    /// The API without the console: every page reads and acts through it.
    pub api: Router,
    /// Signs the staff token each internal API call carries.
    pub mint: MintStaffToken,
    /// The event store: the live feed, its head and backlog.
    pub store: Store,
    /// What the read models do with an event they cannot apply, for the operations page.
    pub on_error: OnError,
    /// The hot standbys that answer queries, shown with their lag.
    pub replicas: Option<Replicas>,
    /// The feed's fan-out: the live feed page follows it.
    pub live: live_feed::Hub,
}

/// What every console handler shares.
#[derive(Clone)]
pub struct ConsoleState {
    api: api::Api,
    store: Store,
    on_error: OnError,
    replicas: Option<Replicas>,
    live: live_feed::Hub,
    console: Arc<Console>,
}

/// The console's routes, to be nested at `/console`.
pub fn routes(deps: ConsoleDeps, console: Console) -> Router {
    let state = ConsoleState {
        api: api::Api::new(deps.api, deps.mint),
        store: deps.store,
        on_error: deps.on_error,
        replicas: deps.replicas,
        live: deps.live,
        console: Arc::new(console),
    };
    Router::new()
        .route("/", get(pages::orders::home))
        .route(
            "/login",
            get(pages::login::show).post(pages::login::sign_in),
        )
        .route("/logout", post(pages::login::sign_out))
        .route("/orders", get(pages::orders::list))
        .route("/orders/{id}", get(pages::order::show))
        .route("/orders/{id}/{action}", post(pages::order::act))
        .route("/feed", get(pages::feed::show))
        .route("/feed/events", get(pages::feed::events))
        .route("/operations", get(pages::operations::show))
        .route(
            "/projections/{name}/parked/{position}/{action}",
            post(pages::operations::act),
        )
        .route("/health", get(pages::health::show))
        .route("/health/charts", get(pages::health::charts))
        .route("/assets/{file}", get(assets::serve))
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(guard_headers))
        .with_state(state)
}

async fn guard_headers(response: axum::response::Response) -> axum::response::Response {
    guard::secured(response)
}
