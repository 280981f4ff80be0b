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
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("5h").unwrap(), Duration::from_secs(5 * 3600));
    assert_eq!(
        parse_duration("2d").unwrap(),
        Duration::from_secs(2 * 86_400)
    );
    assert!(parse_duration("5w").is_err());
    assert!(parse_duration("h").is_err());
}

#[test]
fn hours_and_days_beyond_the_largest_duration_are_refused() {
    for (unit, seconds) in [("h", 3600), ("d", 86_400)] {
        let largest = u64::MAX / seconds;
        assert_eq!(
            parse_duration(&format!("{largest}{unit}")).unwrap(),
            Duration::from_secs(largest * seconds)
        );
        let err = parse_duration(&format!("{}{unit}", largest + 1)).unwrap_err();
        assert!(err.contains("too long"), "{err}");
    }
}

#[test]
fn minutes_beyond_the_largest_duration_are_refused() {
    // Seen while writing the fuzz target verify_token (the TTL of `orders token`), which crashes
    // on it: `value * 60` overflowed, a panic in debug builds and a wrapped, far shorter duration
    // in release builds.
    let largest = u64::MAX / 60;
    assert_eq!(
        parse_duration(&format!("{largest}m")).unwrap(),
        Duration::from_secs(largest * 60)
    );
    let err = parse_duration(&format!("{}m", largest + 1)).unwrap_err();
    assert!(err.contains("too long"), "{err}");
    assert_eq!(
        parse_duration(&format!("{}s", u64::MAX)).unwrap(),
        Duration::from_secs(u64::MAX)
    );
}

#[test]
fn a_bad_value_is_a_clear_error() {
    let err = Cli::try_parse_from(["orders", "--listen", "nowhere"])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--listen"), "{err}");
}

/// Every character with a meaning in a URL, plus the space, the quote and the backslash.
const URL_SPECIAL: &[char] = &[
    ':', '/', '?', '#', '[', ']', '@', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '%',
    ' ', '"', '\\', '<', '>', '^', '`', '{', '|', '}', '~',
];

#[test]
fn a_password_containing_any_url_special_character_is_redacted_whole() {
    let mut passwords: Vec<String> = URL_SPECIAL
        .iter()
        .flat_map(|c| {
            [
                format!("se{c}cret"),
                format!("{c}secret"),
                format!("secret{c}"),
            ]
        })
        .collect();
    passwords.push(format!("se{}cret", URL_SPECIAL.iter().collect::<String>()));
    passwords.push("a@b@c".into());
    passwords.push("p@ss:w/rd?#x@".into());
    for password in &passwords {
        for (scheme, tail) in [
            ("postgres", "db.internal:5432/orders"),
            ("postgresql", "db.internal/orders?sslmode=require"),
            ("redis", "127.0.0.1:6379/0"),
            ("mysql", "db"),
        ] {
            let url = format!("{scheme}://app:{password}@{tail}");
            let redacted = redact_password(&url);
            assert_eq!(redacted, format!("{scheme}://app:***@{tail}"), "{url:?}");
            // The user-only form (`redis://:password@host`).
            let url = format!("{scheme}://:{password}@{tail}");
            assert_eq!(
                redact_password(&url),
                format!("{scheme}://:***@{tail}"),
                "{url:?}"
            );
        }
    }
}

#[test]
fn a_percent_encoded_password_is_redacted_whole() {
    let encoded = "se%40cr%3Aet%2F%3F%23%25";
    let url = format!("postgres://app:{encoded}@db:5432/orders");
    assert_eq!(redact_password(&url), "postgres://app:***@db:5432/orders");
}

#[test]
fn a_url_without_a_password_is_left_alone() {
    for url in [
        "postgres://db:5432/orders",
        "postgres://app@db:5432/orders",
        "postgres://app@db:5432/orders?sslmode=require&application_name=orders",
        "redis://127.0.0.1:6379",
        "sqlite://data/orders.db",
        "sqlite::memory:",
        "not a url",
        "",
    ] {
        assert_eq!(redact_password(url), url);
    }
}

#[test]
fn an_empty_password_is_still_marked() {
    assert_eq!(
        redact_password("postgres://app:@db/orders"),
        "postgres://app:***@db/orders"
    );
}

#[test]
fn a_password_query_parameter_is_redacted() {
    assert_eq!(
        redact_password("postgres://app@db/orders?sslmode=require&password=se%26cret&x=1"),
        "postgres://app@db/orders?sslmode=require&password=***&x=1"
    );
    assert_eq!(
        redact_password("postgres://db/orders?PASSWORD=secret#frag"),
        "postgres://db/orders?password=***#frag"
    );
    assert_eq!(
        redact_password("postgres://u:one@db/orders?password=two"),
        "postgres://u:***@db/orders?password=***"
    );
    // Only a parameter named `password`, not one that ends with it.
    assert_eq!(
        redact_password("postgres://db/orders?oldpassword=x&passwordfile=y"),
        "postgres://db/orders?oldpassword=x&passwordfile=y"
    );
}

#[test]
fn a_key_value_connection_string_has_its_password_redacted() {
    assert_eq!(
        redact_password("host=db user=app password=hunter2 dbname=orders"),
        "host=db user=app password=*** dbname=orders"
    );
    assert_eq!(
        redact_password("host=db password = 'with spaces \\' and quote' dbname=orders"),
        "host=db password=*** dbname=orders"
    );
    assert_eq!(
        redact_password("password='unterminated secret"),
        "password=***"
    );
}

#[test]
fn an_unsupported_key_value_database_url_is_refused_without_leaking_the_password() {
    let cli = parse(&["--database-url", "host=db password=hunter2"]);
    let message = cli.database.backend().unwrap_err().to_string();
    assert!(!message.contains("hunter2"), "{message}");
}
