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
        "ORDERS_MASTER_KEY",
        "ORDERS_NEW_MASTER_KEY",
        "RUST_LOG",
        "REDIS_URL",
        "KAFKA_BROKERS",
        "KAFKA_PROPERTIES",
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
    // The secret `serve` generates on its first start.
    orders::auth::load_or_create_secret(None, dir.path()).unwrap();
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
    assert_eq!(principal.subject(), customer);
}

#[test]
fn console_link_prints_a_one_time_link_for_the_service_s_console() {
    let dir = tempfile::tempdir().unwrap();
    orders::auth::load_or_create_secret(None, dir.path()).unwrap();
    let output = orders()
        .args([
            "console-link",
            "--sub",
            "alice",
            "--base-url",
            "https://ops.example/",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("ORDERS_PUBLIC_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let link = String::from_utf8(output.stdout).unwrap();
    let token = link
        .trim()
        .strip_prefix("https://ops.example/console/login?token=")
        .unwrap_or_else(|| panic!("{link}"));
    let secret = std::fs::read(dir.path().join("jwt-secret")).unwrap();
    let keys = operator_console::ConsoleKeys::derive(&secret);
    assert_eq!(keys.verify_link(token).unwrap().subject, "alice");
    // A link is not an API token.
    assert!(orders::auth::JwtKeys::new(&secret).verify(token).is_err());

    let too_long = orders()
        .args(["console-link", "--ttl", "1h", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!too_long.status.success());
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("at most"));
    let empty = tempfile::tempdir().unwrap();
    let no_secret = orders()
        .args(["console-link", "--data-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!no_secret.status.success());
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("no token secret"));
}

#[test]
fn bad_input_fails_with_a_clear_message_and_a_non_zero_exit() {
    let output = orders()
        .args(["token", "--role", "customer", "--sub", "alice"])
        .env(
            "ORDERS_JWT_SECRET",
            "a-secret-long-enough-for-hs256-tokens!",
        )
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

/// Output of `orders <args>` with `envs` set: (success, stdout + stderr).
fn run_with(args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let mut command = orders();
    command.args(args).envs(envs.iter().copied());
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn no_secret_appears_in_help_errors_or_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let secrets = [
        (
            "DATABASE_URL",
            "postgres://orders:hunter2-db@127.0.0.1:1/orders",
        ),
        ("REDIS_URL", "redis://:hunter2-redis@127.0.0.1:1"),
        ("KAFKA_PROPERTIES", "sasl.password=hunter2-kafka"),
        (
            "ORDERS_JWT_SECRET",
            "hunter2-jwt-0123456789abcdef0123456789",
        ),
        ("ORDERS_DATA_DIR", data_dir),
    ];
    let without_database: Vec<_> = secrets
        .iter()
        .copied()
        .filter(|(name, _)| *name != "DATABASE_URL")
        .collect();
    let mut seen = Vec::new();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["doctor", "--help"],
        &["token", "--help"],
        &["feed", "tail", "--help"],
        &["doctor"],
        &["verify"],
        &["feed", "tail"],
        &["migrate"],
    ] {
        seen.push((args.join(" "), run_with(args, &secrets)));
    }
    // The service on SQLite, failing at Redis (refused connection, password in the URL).
    seen.push((
        "serve (redis)".into(),
        run_with(&["serve", "--listen", "127.0.0.1:0"], &without_database),
    ));
    // A Kafka property list that does not parse: clap would print the value whole.
    seen.push((
        "serve (kafka)".into(),
        run_with(
            &[
                "serve",
                "--kafka-properties",
                "sasl.password=hunter2-kafka,broken",
            ],
            &without_database,
        ),
    ));
    for (args, (_, output)) in &seen {
        assert!(
            !output.contains("hunter2"),
            "`orders {args}` showed a secret:\n{output}"
        );
    }
    let (ok, doctor) = &seen[5].1;
    assert!(!ok, "doctor cannot reach the database or Redis");
    assert!(
        doctor.contains("postgres://orders:***@127.0.0.1:1/orders"),
        "{doctor}"
    );
    let (_, serve) = &seen[seen.len() - 2].1;
    assert!(serve.contains("redis://:***@127.0.0.1:1"), "{serve}");
    assert_eq!(
        serve.matches("cannot connect to Redis").count(),
        1,
        "printed once:\n{serve}"
    );
}

#[test]
fn inspection_commands_create_nothing_and_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("not-there");
    let data = data_dir.to_str().unwrap();
    for args in [
        &["verify", "--data-dir", data][..],
        &[
            "streams",
            "show",
            "0190d3c8-6f2e-7c3a-9a4b-2f1e0d9c8b7a",
            "--data-dir",
            data,
        ],
        &["feed", "tail", "--data-dir", data],
        &["projections", "status", "--data-dir", data],
    ] {
        let (ok, output) = run_with(args, &[]);
        assert!(!ok, "`orders {}` on nothing", args.join(" "));
        assert!(output.contains("there is no database at"), "{output}");
        assert_eq!(
            output.matches("error:").count(),
            1,
            "the error once:\n{output}"
        );
    }
    let (ok, output) = run_with(
        &["doctor", "--data-dir", data, "--listen", "127.0.0.1:0"],
        &[],
    );
    assert!(ok, "{output}");
    assert!(output.contains("no database yet"), "{output}");
    assert!(output.contains("none yet"), "{output}");
    let (ok, output) = run_with(
        &[
            "token",
            "--role",
            "staff",
            "--sub",
            "ops",
            "--data-dir",
            data,
        ],
        &[],
    );
    assert!(!ok);
    assert!(output.contains("jwt-secret does not exist"), "{output}");
    assert!(
        !data_dir.exists(),
        "an inspection command created {}",
        data_dir.display()
    );
}

#[tokio::test]
async fn inspection_commands_refuse_an_unmigrated_postgres_database() {
    let database = test_support::postgres::fresh_database().await;
    let (ok, output) = run_with(&["verify", "--database-url", database.url()], &[]);
    assert!(!ok);
    assert!(output.contains("run `orders migrate` first"), "{output}");
    let (ok, output) = run_with(
        &[
            "doctor",
            "--database-url",
            database.url(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(ok, "{output}");
    assert!(output.contains("not applied yet"), "{output}");
    // Still nothing there: neither command migrated it.
    let (_, output) = run_with(&["verify", "--database-url", database.url()], &[]);
    assert!(output.contains("run `orders migrate` first"), "{output}");
    let missing = database.url().rsplit_once('/').unwrap().0.to_owned() + "/orders_no_such_db";
    let (ok, output) = run_with(&["migrate", "--database-url", &missing], &[]);
    assert!(!ok);
    assert!(output.contains("createdb orders_no_such_db"), "{output}");
}

#[tokio::test]
async fn feed_tail_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let config = common::DatabaseConfig {
        database_url: None,
        data_dir: dir.path().to_path_buf(),
        max_connections: 2,
        group_commit: false,
    };
    let store = store::Store::open(&config).await.unwrap();
    let handler = orders::commands::CommandHandler::new(store, Default::default());
    let create = domain::testing::fixtures::create_order();
    handler
        .execute::<domain::OrderAggregate>(
            create.order_id,
            domain::OrderCommand::Create(create),
            &orders::commands::CommandContext::new(),
            |_| Ok(()),
            |_, _| serde_json::Value::Null,
        )
        .await
        .unwrap();
    drop(handler);
    let mut child = orders()
        .args(["feed", "tail", "--after", "0", "--data-dir", data])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Creates one order (a new id each time) through the command handler on `store`.
async fn create_one(store: store::Store) {
    let handler = orders::commands::CommandHandler::new(store, Default::default());
    let create = domain::CreateOrder {
        order_id: uuid::Uuid::now_v7(),
        ..domain::testing::fixtures::create_order()
    };
    handler
        .execute::<domain::OrderAggregate>(
            create.order_id,
            domain::OrderCommand::Create(create),
            &orders::commands::CommandContext::new(),
            |_| Ok(()),
            |_, _| serde_json::Value::Null,
        )
        .await
        .unwrap();
}

/// `feed tail --follow` prints the table's header once, however many pages follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_tail_follow_prints_its_header_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::DatabaseConfig {
        database_url: None,
        data_dir: dir.path().to_path_buf(),
        max_connections: 2,
        group_commit: false,
    };
    let store = store::Store::open(&config).await.unwrap();
    create_one(store.clone()).await;
    let mut child = Running(
        orders()
            .args(["feed", "tail", "--follow", "--after", "0", "--data-dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = stdout_lines(&mut child);
    let mut seen = Vec::new();
    let next = |seen: &mut Vec<String>| {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no more output after {seen:#?}"));
        seen.push(line);
    };
    next(&mut seen); // the header
    next(&mut seen); // the first order's event
    for _ in 0..2 {
        create_one(store.clone()).await;
        next(&mut seen);
    }
    assert_eq!(
        seen.iter().filter(|l| l.contains("POSITION")).count(),
        1,
        "{seen:#?}"
    );
    assert_eq!(
        seen.iter().filter(|l| l.contains("OrderCreated")).count(),
        3,
        "{seen:#?}"
    );
}

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct Running(std::process::Child);

/// The lines `child` prints on its (piped) stdout, read on a thread of their own so that a full
/// pipe never blocks it.
fn stdout_lines(child: &mut Running) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.0.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released; another process could take it, which the caller
/// would see as a failure to start).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The running service, on PostgreSQL with a password in `DATABASE_URL`, a JWT secret and a
/// password-protected Redis, logging at debug: its password and secrets appear in none of its
/// output, its `/metrics`, or its answers. A wrong Redis password is reported as refused
/// credentials (not as a Redis that did not answer), without the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_service_shows_no_secret_in_its_output_metrics_or_answers() {
    let dir = tempfile::tempdir().unwrap();
    let database = test_support::postgres::fresh_database().await;
    let mut database_url = reqwest::Url::parse(database.url()).unwrap();
    // The shared server trusts loopback, so any password connects; it must still not be shown.
    database_url.set_password(Some("hunter2-db")).unwrap();
    let redis_port = free_port();
    let mut redis = Running(
        Command::new("redis-server")
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                "hunter2-redis",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (Debian package redis-server)"),
    );
    let jwt_secret = "hunter2-jwt-0123456789abcdef0123456789";
    let environment = |redis_password: &str| {
        [
            ("DATABASE_URL", database_url.to_string()),
            ("ORDERS_JWT_SECRET", jwt_secret.to_owned()),
            ("ORDERS_DATA_DIR", dir.path().to_str().unwrap().to_owned()),
            (
                "REDIS_URL",
                format!("redis://:{redis_password}@127.0.0.1:{redis_port}"),
            ),
            ("RUST_LOG", "debug".to_owned()),
        ]
    };
    for _ in 0..50 {
        let ping = Command::new("redis-cli")
            .args(["-p", &redis_port.to_string(), "ping"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&ping.stdout).contains("NOAUTH") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        redis.0.try_wait().unwrap().is_none(),
        "redis-server started"
    );

    // A wrong Redis password: refused, said so, nothing shown.
    let wrong = environment("hunter2-wrong");
    let envs: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, refused) = run_with(&["serve", "--listen", "127.0.0.1:0"], &envs);
    assert!(!ok, "the service does not start with a refused password");
    assert!(refused.contains("refused the credentials"), "{refused}");
    assert!(
        !refused.contains("hunter2"),
        "a secret was shown:\n{refused}"
    );

    // The right one: the service runs; look at everything it says and serves.
    let stderr_path = dir.path().join("stderr.log");
    let mut service = Running(
        orders()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(environment("hunter2-redis"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let banner = stdout_lines(&mut service);
    let mut printed = String::new();
    let addr = loop {
        let line = banner
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the service did not print its address:\n{printed}{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.strip_prefix("orders listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    let token = orders::auth::JwtKeys::new(jwt_secret.as_bytes())
        .issue(
            &uuid::Uuid::now_v7().to_string(),
            orders::auth::Role::Customer,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let mut answers = String::new();
    let created = client
        .post(url("/orders"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "currency": "EUR",
            "items": [{"product_id": uuid::Uuid::now_v7(), "sku": "SKU-1", "quantity": 1, "unit_price": 100}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let order: serde_json::Value = created.json().await.unwrap();
    let id = order["id"].as_str().unwrap();
    for request in [
        client
            .get(url(&format!("/orders/{id}")))
            .bearer_auth(&token),
        client
            .get(url(&format!("/orders/{id}")))
            .bearer_auth(&token),
        client.get(url("/orders")).bearer_auth("not-a-token"),
        client.get(url("/health/ready")),
        client.get(url("/metrics")),
    ] {
        let response = request.send().await.unwrap();
        answers.push_str(&format!("{:?}\n", response.headers()));
        answers.push_str(&response.text().await.unwrap());
    }
    assert!(answers.contains("http_requests_total"), "{answers}");
    drop(service);
    while let Ok(line) = banner.try_recv() {
        printed.push_str(&line);
        printed.push('\n');
    }
    let logged = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        logged.contains("DEBUG") || logged.contains("debug"),
        "logged at debug:\n{logged}"
    );
    // The first start on a new database: the sequencer may run before the migrations for a
    // moment, which is no cause for a warning.
    assert!(
        !logged
            .lines()
            .any(|line| line.contains("WARN") && line.contains("sequencer")),
        "a false warning on the first start:\n{logged}"
    );
    for (what, text) in [
        ("stdout", &printed),
        ("log", &logged),
        ("answers", &answers),
    ] {
        assert!(
            !text.contains("hunter2"),
            "a secret in the service's {what}:\n{text}"
        );
    }
}

/// What the inspection commands open on PostgreSQL cannot write: an append through it is refused
/// by the server (read-only transactions), and the stream stays empty.
#[tokio::test]
async fn inspection_connections_to_postgres_are_read_only() {
    use event_store::EventStore;
    let database = test_support::postgres::fresh_database().await;
    let config = common::DatabaseConfig {
        database_url: Some(database.url().to_owned()),
        data_dir: tempfile::tempdir().unwrap().path().to_path_buf(),
        max_connections: 2,
        group_commit: false,
    };
    store::Store::open(&config).await.unwrap(); // migrates
    let inspecting = store::Store::open_existing(&config).await.unwrap();
    let id = uuid::Uuid::now_v7();
    let event = event_store::NewEvent::new("Order", "OrderConfirmed", 1, serde_json::json!({}));
    let refused = inspecting.append_events(id, 0, vec![event]).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("read-only")
                || std::error::Error::source(e)
                    .is_some_and(|s| s.to_string().contains("read-only"))),
        "{refused:?}"
    );
    assert_eq!(inspecting.get_current_version(id).await.unwrap(), 0);
}

/// `projections parked list|retry|skip` on both backends: a parked event is listed with its
/// error, a retry that fails again leaves it parked, a skip removes it, and each action is
/// logged with who did it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_are_listed_retried_and_skipped_from_the_cli() {
    use event_store::{EventStore, ExpectedVersion, NewEvent};

    let dir = tempfile::tempdir().unwrap();
    let postgres = test_support::postgres::fresh_database_url().await;
    for database_url in [None, Some(postgres)] {
        let config = common::DatabaseConfig {
            database_url: database_url.clone(),
            data_dir: dir.path().to_path_buf(),
            max_connections: 2,
            group_commit: false,
        };
        let store = store::Store::open(&config).await.unwrap();
        let bad = NewEvent::new("Order", "OrderTeleported", 1, serde_json::json!({}));
        let bad_id = uuid::Uuid::now_v7();
        store
            .append_events(bad_id, ExpectedVersion::NoStream, vec![bad])
            .await
            .unwrap();
        store.global_position(bad_id, 1).await.unwrap(); // numbered (PostgreSQL: a moment later)
        let read_model = order_views::ReadModel::for_store(&store);
        read_model.register().await.unwrap();
        while read_model
            .run_batch(100, order_views::OnError::Park)
            .await
            .unwrap()
            .events
            > 0
        {}
        let position = read_model.parked().await.unwrap()[0].position;
        let database: Vec<String> = match &database_url {
            Some(url) => vec!["--database-url".into(), url.clone()],
            None => vec!["--data-dir".into(), dir.path().display().to_string()],
        };
        let run = |action: &[&str]| {
            let mut args: Vec<&str> = vec!["projections", "parked"];
            args.extend(action);
            args.extend(database.iter().map(String::as_str));
            run_with(&args, &[("USER", "operator-7"), ("RUST_LOG", "warn")])
        };
        let (ok, listed) = run(&["list"]);
        assert!(ok, "{listed}");
        assert!(listed.contains("parked events of orders: 1"), "{listed}");
        assert!(listed.contains(&format!("position {position}")), "{listed}");
        assert!(listed.contains("OrderTeleported"), "{listed}");

        let position_arg = position.to_string();
        let (ok, retried) = run(&["retry", &position_arg]);
        assert!(!ok, "a retry that fails again must fail: {retried}");
        assert!(retried.contains("still fails"), "{retried}");
        assert!(
            retried.contains("operator-7"),
            "the retry is audited: {retried}"
        );
        assert_eq!(read_model.parked().await.unwrap().len(), 1);

        let (ok, skipped) = run(&["skip", &position_arg]);
        assert!(ok, "{skipped}");
        assert!(
            skipped.contains("operator-7"),
            "the skip is audited: {skipped}"
        );
        assert!(read_model.parked().await.unwrap().is_empty());
        let (ok, again) = run(&["skip", &position_arg]);
        assert!(!ok, "skipping what is not parked is an error: {again}");
        assert!(again.contains("no parked event"), "{again}");
    }
}

/// Personal data from the command line: `streams show` reveals with the master key of the data
/// directory; `keys rotate-master` re-wraps the keys, after which only the new master key opens
/// them; `customers forget` erases them for good (and says so again when run twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_show_reveals_and_rotation_and_forgetting_work_from_the_cli() {
    reveal_rotate_and_forget_from_the_cli(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_forgetting_work_from_the_cli_on_postgres() {
    let database = test_support::postgres::fresh_database().await;
    reveal_rotate_and_forget_from_the_cli(Some(database.url().to_owned())).await;
}

/// `streams show` reveals with the data directory's master key, `keys rotate-master` re-wraps
/// every data key so that only the new key opens them, and `customers forget` (twice) erases:
/// on the embedded SQLite file (`database_url` `None`) or on PostgreSQL.
async fn reveal_rotate_and_forget_from_the_cli(database_url: Option<String>) {
    use personal_data::{KeyRing, KeyTable, MasterKey};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let url_args: Vec<String> = database_url
        .iter()
        .flat_map(|url| ["--database-url".to_owned(), url.clone()])
        .collect();
    let config = common::DatabaseConfig {
        database_url: database_url.clone(),
        data_dir: dir.path().to_path_buf(),
        max_connections: 2,
        group_commit: false,
    };
    let store = store::Store::open(&config).await.unwrap();
    let master = MasterKey::load_or_create(None, dir.path()).unwrap();
    // A webhook endpoint whose signing secret the rotation must carry over too.
    let endpoints = webhooks::EndpointTable::new(store.db());
    let endpoint = uuid::Uuid::now_v7();
    let signing = webhooks::SigningSecret::generate().unwrap();
    let context = webhooks::secret_context(endpoint);
    endpoints
        .insert(&webhooks::endpoints::NewEndpoint {
            id: endpoint,
            url: "https://93.184.216.34/hook".into(),
            description: String::new(),
            filter: Default::default(),
            secret: personal_data::cipher::wrap_secret(&master, &context, signing.bytes()),
            master_key_id: master.id().to_owned(),
            created_by: "test".into(),
            after: 0,
        })
        .await
        .unwrap();
    let ring = KeyRing::new(KeyTable::new(store.db()), master);
    let handler =
        orders::commands::CommandHandler::new(store, Default::default()).with_key_ring(ring);
    let create = domain::testing::fixtures::create_order();
    let (order, customer) = (create.order_id.to_string(), create.customer_id.to_string());
    handler
        .execute::<domain::OrderAggregate>(
            create.order_id,
            domain::OrderCommand::Create(create),
            &orders::commands::CommandContext::new(),
            |_| Ok(()),
            |_, _| serde_json::Value::Null,
        )
        .await
        .unwrap();
    drop(handler);
    if database_url.is_none() {
        let file = std::fs::read(dir.path().join("orders.db")).unwrap();
        assert!(
            !String::from_utf8_lossy(&file).contains("Ada Lovelace"),
            "sealed at rest"
        );
    }

    let show = |key: Option<&str>| {
        let mut command = orders();
        command.args([
            "streams",
            "show",
            &order,
            "--format",
            "json",
            "--data-dir",
            data,
        ]);
        command.args(&url_args);
        if let Some(key) = key {
            command.env("ORDERS_MASTER_KEY", key);
        }
        let output = command.output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = show(None);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Ada Lovelace"),
        "revealed with the data directory's key: {stdout}"
    );

    let new = MasterKey::generate().to_base64();
    let rotated = orders()
        .args(["keys", "rotate-master", "--data-dir", data])
        .args(&url_args)
        .env("ORDERS_NEW_MASTER_KEY", &new)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        said.contains("1 data keys and the signing secrets of 1 webhook endpoints re-wrapped"),
        "{said}"
    );
    let stored = endpoints.get(endpoint).await.unwrap().unwrap();
    let new_key = MasterKey::from_base64(&new).unwrap();
    assert_eq!(stored.master_key_id, new_key.id());
    assert_eq!(
        personal_data::cipher::unwrap_secret(&new_key, &context, &stored.secret).as_deref(),
        Some(signing.bytes()),
        "the rotated master key opens the webhook's secret"
    );
    assert!(!said.contains(&new), "the new key is not printed");
    let (ok, _, stderr) = show(None);
    assert!(!ok, "the old master key no longer unwraps the data key");
    assert!(stderr.contains("ORDERS_MASTER_KEY"), "{stderr}");
    let (ok, stdout, stderr) = show(Some(&new));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Ada Lovelace"), "{stdout}");

    for _ in 0..2 {
        let forgot = orders()
            .args(["customers", "forget", &customer, "--data-dir", data])
            .args(&url_args)
            .env("ORDERS_MASTER_KEY", &new)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&forgot.stdout);
        assert!(
            forgot.status.success(),
            "{}",
            String::from_utf8_lossy(&forgot.stderr)
        );
        assert!(
            said.contains(&format!("customer {customer} forgotten")) && said.contains("by cli"),
            "{said}"
        );
    }
    let (ok, stdout, stderr) = show(Some(&new));
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("Ada Lovelace"), "{stdout}");
    assert!(stdout.contains("\"personal_data\":\"erased\""), "{stdout}");
}
