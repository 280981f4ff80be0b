//! A read model's engine on the backend the service runs on, behind [`Operate`], so that every
//! read model gets every engine operation without a line of its own.

use std::sync::Arc;

use read_model::{Engine, Operate, PgDialect, Projection, SqliteDialect};

use store::{Db, Store};

/// `projection`'s engine in the database of `store`, fed by its feed.
pub fn engine_for<P>(store: &Store, projection: P) -> Arc<dyn Operate>
where
    P: Projection<PgDialect> + Projection<SqliteDialect>,
{
    match store.db() {
        Db::Postgres(pool) => {
            Arc::new(Engine::new(store.clone(), PgDialect::new(pool), projection))
        }
        Db::Sqlite { writer, reader } => Arc::new(Engine::new(
            store.clone(),
            SqliteDialect::new(writer, reader),
            projection,
        )),
    }
}
