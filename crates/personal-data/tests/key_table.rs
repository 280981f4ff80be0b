//! The `customer_keys` table on both backends: a customer's first key wins, forgetting destroys
//! it for good (the first forgetting's time and author stay), rotation rewraps only live keys.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::Utc;
use common::DatabaseConfig;
use personal_data::{KeyTable, StoredKey};
use store::Store;
use uuid::Uuid;

/// The table on a fresh SQLite file and on a fresh PostgreSQL database, migrated as `serve` does.
async fn tables() -> (Vec<(&'static str, KeyTable)>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut tables = Vec::new();
    for (name, url) in [
        ("sqlite", None),
        (
            "postgres",
            Some(test_support::postgres::fresh_database_url().await),
        ),
    ] {
        let config = DatabaseConfig {
            database_url: url,
            data_dir: dir.path().to_path_buf(),
            max_connections: 2,
            group_commit: false,
        };
        let store = Store::open(&config).await.unwrap();
        tables.push((name, KeyTable::new(store.db())));
    }
    (tables, dir)
}

#[tokio::test]
async fn the_first_key_of_a_customer_wins() {
    let (tables, _dir) = tables().await;
    for (backend, table) in tables {
        let customer = Uuid::now_v7();
        let first = table
            .insert_if_absent(customer, b"first", "m1")
            .await
            .unwrap();
        let second = table
            .insert_if_absent(customer, b"second", "m1")
            .await
            .unwrap();
        let expected = StoredKey::Active {
            wrapped: b"first".to_vec(),
            master_key_id: "m1".to_owned(),
        };
        assert_eq!(first, expected, "{backend}");
        assert_eq!(second, expected, "{backend}: another instance's key wins");
        assert_eq!(
            table.get(customer).await.unwrap(),
            Some(expected),
            "{backend}"
        );
        assert_eq!(table.get(Uuid::now_v7()).await.unwrap(), None, "{backend}");
    }
}

#[tokio::test]
async fn forgetting_destroys_the_key_once_and_for_good() {
    let (tables, _dir) = tables().await;
    for (backend, table) in tables {
        let customer = Uuid::now_v7();
        let before = Utc::now() - chrono::TimeDelta::seconds(1);
        table
            .insert_if_absent(customer, b"key", "m1")
            .await
            .unwrap();
        let first = table.forget(customer, "ops").await.unwrap();
        assert_eq!(first.by, "ops", "{backend}");
        let again = table.forget(customer, "someone-else").await.unwrap();
        assert_eq!(again, first, "{backend}: the first forgetting stays");
        assert_eq!(
            table.get(customer).await.unwrap(),
            Some(StoredKey::Forgotten(first)),
            "{backend}"
        );
        // A forgotten customer gets no new key.
        let refused = table
            .insert_if_absent(customer, b"new", "m1")
            .await
            .unwrap();
        assert!(
            matches!(refused, StoredKey::Forgotten(_)),
            "{backend}: {refused:?}"
        );
        assert!(
            table
                .forgotten_since(before)
                .await
                .unwrap()
                .contains(&customer),
            "{backend}"
        );
        // A customer never seen can be forgotten too (nothing to read later either).
        let unknown = Uuid::now_v7();
        table.forget(unknown, "ops").await.unwrap();
        assert!(matches!(
            table.get(unknown).await.unwrap(),
            Some(StoredKey::Forgotten(_))
        ));
    }
}

#[tokio::test]
async fn rotation_rewraps_every_live_key_and_only_those() {
    let (tables, _dir) = tables().await;
    for (backend, table) in tables {
        let (live, gone) = (Uuid::now_v7(), Uuid::now_v7());
        table.insert_if_absent(live, b"live", "m1").await.unwrap();
        table.insert_if_absent(gone, b"gone", "m1").await.unwrap();
        table.forget(gone, "ops").await.unwrap();
        let active = table.active().await.unwrap();
        assert_eq!(
            active,
            vec![(live, b"live".to_vec(), "m1".to_owned())],
            "{backend}"
        );
        table
            .rewrap_all(
                &[(live, b"rewrapped".to_vec()), (gone, b"x".to_vec())],
                "m2",
            )
            .await
            .unwrap();
        assert_eq!(
            table.get(live).await.unwrap(),
            Some(StoredKey::Active {
                wrapped: b"rewrapped".to_vec(),
                master_key_id: "m2".to_owned()
            }),
            "{backend}"
        );
        assert!(
            matches!(
                table.get(gone).await.unwrap(),
                Some(StoredKey::Forgotten(_))
            ),
            "{backend}"
        );
    }
}
