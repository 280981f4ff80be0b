//! The feed belongs to the event store (ADR 0002, ADR 0014): outside the backend crates, no
//! code names its tables or its notification channel; everything reads it through the
//! `event_store::Feed` port. This test keeps it so.

use std::path::{Path, PathBuf};

/// Crates whose `src/` must not know how the feed is stored. The backends
/// (`event-store-postgres`, `event-store-sqlite`) own it; `bench` compares against raw inserts
/// into the same tables on purpose.
const CONSUMERS: &[&str] = &[
    "common",
    "domain",
    "event-store",
    "orders",
    "outbox",
    "read-model",
    "test-support",
];

/// Does `line` (not a comment) name a feed table in SQL or the channel?
fn names_the_feed_storage(line: &str) -> bool {
    let code = line.trim_start();
    if code.starts_with("//") {
        return false;
    }
    let lower = code.to_ascii_lowercase();
    if ["event_positions", "feed_queue", "orders_feed"]
        .iter()
        .any(|name| lower.contains(name))
    {
        return true;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|pair| {
        matches!(pair[0], "from" | "join" | "into" | "update" | "table") && pair[1] == "events"
    })
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn only_the_backends_name_the_feed_tables_and_channel() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    let mut scanned = 0;
    for name in CONSUMERS {
        let mut files = Vec::new();
        rust_files(&crates.join(name).join("src"), &mut files);
        assert!(!files.is_empty(), "no sources found for crate {name}");
        for file in files {
            scanned += 1;
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (number, line) in text.lines().enumerate() {
                if names_the_feed_storage(line) {
                    offenders.push(format!(
                        "{}:{}: {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(scanned > 50, "only {scanned} files scanned");
    assert!(
        offenders.is_empty(),
        "the feed's storage is named outside the backend crates; go through event_store::Feed:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_check_recognises_what_it_forbids() {
    for line in [
        r#"sqlx::query("SELECT MAX(position) FROM event_positions")"#,
        r#""SELECT recorded_at FROM events WHERE position = ?1""#,
        r#"listener.listen("orders_feed")"#,
        r#"JOIN events e ON e.seq = p.seq"#,
        r#"INSERT INTO feed_queue (seq) VALUES ($1)"#,
    ] {
        assert!(names_the_feed_storage(line), "{line}");
    }
    for line in [
        "// events from the feed",
        "let events = store.read_all(after, limit).await?;",
        "for event in &events {",
        "/// Folds `events` from the feed",
    ] {
        assert!(!names_the_feed_storage(line), "{line}");
    }
}
