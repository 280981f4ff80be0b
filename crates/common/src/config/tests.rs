use clap::Parser;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    database: DatabaseConfig,
    #[command(flatten)]
    server: ServerConfig,
    #[command(flatten)]
    telemetry: TelemetryConfig,
}

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("orders").chain(args.iter().copied())).unwrap()
}

#[test]
fn defaults_are_the_zero_setup_service() {
    // SAFETY of the test: clap reads the environment; these names are not set in CI.
    let cli = parse(&[]);
    assert_eq!(cli.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(cli.server.body_limit, 64 * 1024);
    assert_eq!(cli.server.request_timeout, Duration::from_secs(30));
    assert_eq!(cli.telemetry.log_format, LogFormat::Text);
    assert_eq!(
        cli.database.backend().unwrap(),
        DatabaseBackend::Sqlite {
            url: "sqlite://data/orders.db".into()
        }
    );
}

#[test]
fn flags_override_defaults() {
    let cli = parse(&[
        "--listen",
        "0.0.0.0:9000",
        "--database-url",
        "postgres://u:secret@db:5432/orders",
        "--request-timeout",
        "250ms",
        "--log-format",
        "json",
    ]);
    assert_eq!(cli.server.listen.port(), 9000);
    assert_eq!(cli.server.request_timeout, Duration::from_millis(250));
    assert_eq!(cli.telemetry.log_format, LogFormat::Json);
    assert!(matches!(
        cli.database.backend().unwrap(),
        DatabaseBackend::Postgres { .. }
    ));
}

#[test]
fn an_unknown_database_scheme_is_refused_without_leaking_the_password() {
    let cli = parse(&["--database-url", "mysql://root:hunter2@db/orders"]);
    let message = cli.database.backend().unwrap_err().to_string();
    assert!(message.contains("mysql://root:***@db/orders"), "{message}");
    assert!(!message.contains("hunter2"));
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    assert!(parse_duration("fast").is_err());
    assert!(parse_duration("5h").is_err());
}

#[test]
fn a_bad_value_is_a_clear_error() {
    let err = Cli::try_parse_from(["orders", "--listen", "nowhere"])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--listen"), "{err}");
}
