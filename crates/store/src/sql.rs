//! Writing a statement once for both backends: [`SqlId`], the one column type whose storage
//! differs (`uuid` on PostgreSQL, hyphenated text on SQLite), and [`with_reader!`] /
//! [`with_writer!`], which compile one statement, its binds and its row type for whichever
//! backend a [`crate::Db`] holds.
//!
//! Every other column type the service stores (`TEXT`, `BIGINT`/`INTEGER`, timestamps, dates,
//! `sqlx::types::Json`) already encodes on both backends with the same Rust type.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use uuid::Uuid;

/// A UUID column: `uuid` on PostgreSQL, its hyphenated lower-case text on SQLite (which has no
/// UUID type; sqlx's own `Uuid` would store 16-byte blobs there, unreadable by hand and unlike
/// every table the service already has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SqlId(pub Uuid);

impl From<Uuid> for SqlId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl From<SqlId> for Uuid {
    fn from(id: SqlId) -> Self {
        id.0
    }
}

impl Type<Postgres> for SqlId {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for SqlId {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Uuid as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Decode<'_, Postgres> for SqlId {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        <Uuid as Decode<Postgres>>::decode(value).map(Self)
    }
}

impl Type<Sqlite> for SqlId {
    fn type_info() -> SqliteTypeInfo {
        <uuid::fmt::Hyphenated as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for SqlId {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <uuid::fmt::Hyphenated as Encode<Sqlite>>::encode_by_ref(&self.0.hyphenated(), buf)
    }
}

impl Decode<'_, Sqlite> for SqlId {
    fn decode(value: SqliteValueRef<'_>) -> Result<Self, BoxDynError> {
        <uuid::fmt::Hyphenated as Decode<Sqlite>>::decode(value).map(|id| Self(id.into_uuid()))
    }
}

/// Runs `$body` with `$pool` bound to the pool that `$db` (a [`crate::Db`]) reads from: the
/// PostgreSQL pool, or SQLite's readers. The body is written once and compiled for each backend,
/// so its statement, binds and row types must suit both (see [`SqlId`]).
#[macro_export]
macro_rules! with_reader {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Postgres($pool) => $body,
            $crate::Db::Sqlite { reader: $pool, .. } => $body,
        }
    };
}

/// [`with_reader!`] for writes: the PostgreSQL pool, or SQLite's single writer (which also reads
/// what it has just written).
#[macro_export]
macro_rules! with_writer {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Postgres($pool) => $body,
            $crate::Db::Sqlite { writer: $pool, .. } => $body,
        }
    };
}
