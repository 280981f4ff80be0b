//! What the relay published, read back by an independent client: the pure-Python kafka-python.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;
use uuid::Uuid;

use crate::harness::{TOPIC, load, setup};

/// Consumes `expected` messages with kafka-python and prints each as a JSON line.
const SCRIPT: &str = r#"
import json, sys
from kafka import KafkaConsumer
bootstrap, topic, group, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         consumer_timeout_ms=30000)
seen = 0
for m in consumer:
    print(json.dumps({
        "partition": m.partition, "offset": m.offset,
        "key": m.key.decode() if m.key is not None else None,
        "headers": {k: v.decode() for k, v in (m.headers or [])},
        "value": json.loads(m.value),
    }), flush=True)
    seen += 1
    if seen >= expected:
        break
consumer.close()
"#;

fn require_kafka_python() {
    let ok = Command::new("python3")
        .args(["-c", "import kafka"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "\n\nThe Python Kafka client kafka-python is missing (the independent reader of this test).\n\
         Install it: pip install kafka-python   (.ci/run does this when it is missing)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_client_reads_what_was_published() {
    require_kafka_python();
    let setup = setup().await;
    let relay = setup.relay(1000);
    load(&setup.store, 8, 4, 2).await;
    setup.wait_published(&relay, 32).await;
    let stored = setup.stored().await;

    let bootstrap = setup.broker.bootstrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([
                "-c",
                SCRIPT,
                &bootstrap,
                TOPIC,
                &format!("py-{}", Uuid::now_v7()),
                "32",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "kafka-python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        32,
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut versions: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for line in &lines {
        let value = &line["value"];
        assert_eq!(value["schema"], "orders.order-event/v1");
        let order: Uuid = value["order_id"].as_str().unwrap().parse().unwrap();
        let version = value["order_version"].as_u64().unwrap();
        let row = &stored[&order][usize::try_from(version).unwrap() - 1];
        assert_eq!(line["key"], order.to_string());
        assert_eq!(value["event_id"], row.event_id.to_string());
        assert_eq!(value["data"], row.payload);
        assert_eq!(line["headers"]["event_id"], row.event_id.to_string());
        assert_eq!(line["headers"]["event_type"], row.event_type);
        assert_eq!(line["headers"]["stream_version"], version.to_string());
        assert_eq!(
            line["headers"]["correlation_id"],
            row.metadata["correlation_id"]
        );
        versions.entry(order).or_default().push(version);
    }
    assert_eq!(versions.len(), 8);
    for (order, seen) in versions {
        assert_eq!(
            seen,
            vec![1, 2, 3, 4],
            "order {order}: versions in partition order"
        );
    }
}
