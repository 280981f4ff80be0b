//! The `orders` binary's subcommands, run as a user runs them.
#![allow(clippy::unwrap_used)] // test code

use std::process::Command;

fn orders() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orders"));
    // Tests must not pick up a developer's settings.
    for var in [
        "DATABASE_URL",
        "ORDERS_DATA_DIR",
        "ORDERS_JWT_SECRET",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

#[tokio::test]
async fn migrate_applies_the_schema_to_postgres() {
    let database = test_support::postgres::fresh_database().await;
    let output = orders()
        .args(["migrate", "--database-url", database.url()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied (postgres)"));
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = orders()
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("orders.db").exists());
}

#[test]
fn token_prints_a_token_the_service_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let customer = uuid::Uuid::now_v7().to_string();
    let output = orders()
        .args([
            "token",
            "--role",
            "customer",
            "--sub",
            &customer,
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let secret = std::fs::read(dir.path().join("jwt-secret")).unwrap();
    let principal = orders::auth::JwtKeys::new(&secret)
        .verify(token.trim())
        .unwrap();
    assert_eq!(principal.subject, customer);
}

#[test]
fn bad_input_fails_with_a_clear_message_and_a_non_zero_exit() {
    let output = orders()
        .args(["token", "--role", "customer", "--sub", "alice"])
        .env("ORDERS_DATA_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("customer's UUID"));

    let output = orders()
        .args(["migrate", "--database-url", "mysql://root@localhost/x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not supported"));
}
