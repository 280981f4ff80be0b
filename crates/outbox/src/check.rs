//! The consumer contract, executable: dedupe on (order id, version) and demand contiguous versions.
//!
//! A consumer keeps, per order, the highest version it has processed. A message with a version at
//! or below it is a redelivery: skip it. The next version is processed. A higher one would mean a
//! lost or reordered event: the relay never produces one, so [`Checker`] reports it.

use std::collections::HashMap;

use uuid::Uuid;

use crate::consume::Received;
use crate::event::{OrderEventV1, SCHEMA_V1, headers};

/// What the checker made of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The next version of its order: process it.
    New,
    /// Already seen (same order, version and event id): skip it.
    Duplicate,
    /// A contract violation (gap, reordering, bad key or headers, undecodable value).
    Problem(String),
}

/// Dedupes messages and checks per-order contiguity, from version 1 (consume from the start of
/// the topic, i.e. with a new group).
#[derive(Debug, Default)]
pub struct Checker {
    /// Per order: event ids by version, in version order (index = version − 1).
    orders: HashMap<Uuid, Vec<Uuid>>,
    new: u64,
    duplicates: u64,
    problems: Vec<String>,
}

impl Checker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies `message` and records it.
    pub fn observe(&mut self, message: &Received) -> Verdict {
        let verdict = match &message.event {
            Err(error) => Verdict::Problem(format!(
                "partition {} offset {}: undecodable value: {error}",
                message.partition, message.offset
            )),
            Ok(event) => match envelope_problem(message, event) {
                Some(problem) => Verdict::Problem(problem),
                None => self.sequence(event),
            },
        };
        match &verdict {
            Verdict::New => self.new += 1,
            Verdict::Duplicate => self.duplicates += 1,
            Verdict::Problem(problem) => self.problems.push(problem.clone()),
        }
        verdict
    }

    fn sequence(&mut self, event: &OrderEventV1) -> Verdict {
        let seen = self.orders.entry(event.order_id).or_default();
        let version = event.order_version;
        let Ok(index) = usize::try_from(version.saturating_sub(1)) else {
            return Verdict::Problem(format!("order {}: version {version}", event.order_id));
        };
        if version == 0 {
            Verdict::Problem(format!("order {}: version 0", event.order_id))
        } else if let Some(id) = seen.get(index) {
            if *id == event.event_id {
                Verdict::Duplicate
            } else {
                Verdict::Problem(format!(
                    "order {} version {version}: event {} after a different event {id}",
                    event.order_id, event.event_id
                ))
            }
        } else if index == seen.len() {
            seen.push(event.event_id);
            Verdict::New
        } else {
            Verdict::Problem(format!(
                "order {}: version {version} arrived after version {} (gap)",
                event.order_id,
                seen.len()
            ))
        }
    }

    /// Distinct events processed.
    pub fn new_events(&self) -> u64 {
        self.new
    }

    /// Redeliveries skipped.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Violations found, in arrival order.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The highest version processed per order.
    pub fn versions(&self) -> HashMap<Uuid, u64> {
        self.orders
            .iter()
            .map(|(id, seen)| (*id, seen.len() as u64))
            .collect()
    }

    /// The event ids processed for `order`, in version order.
    pub fn events_of(&self, order: Uuid) -> &[Uuid] {
        self.orders.get(&order).map_or(&[], Vec::as_slice)
    }
}

/// Key and headers must agree with the value.
fn envelope_problem(message: &Received, event: &OrderEventV1) -> Option<String> {
    let at = format!("partition {} offset {}", message.partition, message.offset);
    if event.schema != SCHEMA_V1 {
        return Some(format!("{at}: unknown schema {:?}", event.schema));
    }
    if message.key.as_deref() != Some(event.key().as_str()) {
        return Some(format!(
            "{at}: key {:?} is not the order id {}",
            message.key, event.order_id
        ));
    }
    let expected = event.headers();
    for (name, value) in &expected {
        if message.headers.get(*name) != Some(value) {
            return Some(format!(
                "{at}: header {name} is {:?}, expected {value:?}",
                message.headers.get(*name)
            ));
        }
    }
    if !expected.iter().any(|(name, _)| *name == headers::EVENT_ID) {
        return Some(format!("{at}: no event_id header"));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn event(order: Uuid, version: u64, event_id: Uuid) -> OrderEventV1 {
        OrderEventV1 {
            schema: SCHEMA_V1.into(),
            event_id,
            aggregate_type: "Order".into(),
            order_id: order,
            order_version: version,
            position: version + 100,
            event_type: "OrderPlaced".into(),
            event_schema_version: 2,
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
            correlation_id: None,
            causation_id: None,
            data: json!({}),
        }
    }

    /// The message as the consumer contract (ADR 0008) spells it, written out literally rather
    /// than with `OrderEventV1::key` / `headers`, which the checker itself relies on.
    fn message(order: Uuid, version: u64, event_id: Uuid) -> Received {
        let headers = [
            ("schema", "orders.order-event/v1".to_owned()),
            ("event_id", event_id.to_string()),
            ("event_type", "OrderPlaced".to_owned()),
            ("schema_version", "2".to_owned()),
            ("stream_version", version.to_string()),
        ];
        Received {
            partition: 0,
            offset: 7,
            key: Some(order.to_string()),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<BTreeMap<_, _>>(),
            event: Ok(event(order, version, event_id)),
        }
    }

    fn problem(verdict: Verdict) -> String {
        match verdict {
            Verdict::Problem(problem) => problem,
            other => panic!("expected a problem, got {other:?}"),
        }
    }

    #[test]
    fn dedupes_and_detects_gaps() {
        let order = Uuid::now_v7();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let mut checker = Checker::new();
        assert_eq!(checker.observe(&message(order, 1, ids[0])), Verdict::New);
        assert_eq!(checker.observe(&message(order, 2, ids[1])), Verdict::New);
        assert_eq!(
            checker.observe(&message(order, 1, ids[0])),
            Verdict::Duplicate
        );
        let gap = problem(checker.observe(&message(order, 4, Uuid::now_v7())));
        assert!(
            gap.contains("version 4 arrived after version 2 (gap)"),
            "{gap}"
        );
        let other = problem(checker.observe(&message(order, 2, Uuid::now_v7())));
        assert!(other.contains("after a different event"), "{other}");
        assert_eq!(checker.observe(&message(order, 3, ids[2])), Verdict::New);
        assert_eq!((checker.new_events(), checker.duplicates()), (3, 1));
        assert_eq!(checker.problems(), [gap, other]);
        assert_eq!(checker.versions(), HashMap::from([(order, 3)]));
        assert_eq!(checker.events_of(order), ids.as_slice());
        assert!(checker.events_of(Uuid::now_v7()).is_empty());
    }

    #[test]
    fn orders_are_sequenced_independently() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut checker = Checker::new();
        assert_eq!(
            checker.observe(&message(a, 1, Uuid::now_v7())),
            Verdict::New
        );
        assert_eq!(
            checker.observe(&message(b, 1, Uuid::now_v7())),
            Verdict::New
        );
        assert_eq!(
            checker.observe(&message(a, 2, Uuid::now_v7())),
            Verdict::New
        );
        assert_eq!(checker.versions(), HashMap::from([(a, 2), (b, 1)]));
        assert!(checker.problems().is_empty());
    }

    #[test]
    fn version_zero_and_a_first_version_above_one_are_problems() {
        let order = Uuid::now_v7();
        let mut checker = Checker::new();
        let zero = problem(checker.observe(&message(order, 0, Uuid::now_v7())));
        assert!(zero.contains("version 0"), "{zero}");
        let late = problem(checker.observe(&message(order, 2, Uuid::now_v7())));
        assert!(late.contains("(gap)"), "{late}");
        assert_eq!(checker.new_events(), 0);
    }

    #[test]
    fn the_producer_writes_the_envelope_the_contract_names() {
        let sample = message(Uuid::now_v7(), 5, Uuid::now_v7());
        let Ok(event) = &sample.event else {
            unreachable!()
        };
        assert_eq!(Some(event.key()), sample.key);
        let produced: BTreeMap<String, String> = event
            .headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(produced, sample.headers);
    }

    #[test]
    fn rejects_a_wrong_or_missing_key() {
        let mut wrong = message(Uuid::now_v7(), 1, Uuid::now_v7());
        wrong.key = Some("other".into());
        let found = problem(Checker::new().observe(&wrong));
        assert!(found.contains("partition 0 offset 7: key"), "{found}");
        wrong.key = None;
        problem(Checker::new().observe(&wrong));
    }

    #[test]
    fn rejects_each_wrong_or_missing_header() {
        for name in [
            "schema",
            "event_id",
            "event_type",
            "schema_version",
            "stream_version",
        ] {
            let mut wrong = message(Uuid::now_v7(), 1, Uuid::now_v7());
            wrong.headers.insert(name.to_owned(), "9".into());
            let found = problem(Checker::new().observe(&wrong));
            assert!(found.contains(&format!("header {name} is")), "{found}");
            wrong.headers.remove(name);
            let found = problem(Checker::new().observe(&wrong));
            assert!(found.contains(&format!("header {name} is None")), "{found}");
        }
    }

    #[test]
    fn checks_the_correlation_headers_when_the_event_has_them() {
        let mut sample = message(Uuid::now_v7(), 1, Uuid::now_v7());
        if let Ok(event) = &mut sample.event {
            event.correlation_id = Some("c-1".into());
            event.causation_id = Some("r-1".into());
        }
        problem(Checker::new().observe(&sample));
        sample.headers.insert("correlation_id".into(), "c-1".into());
        problem(Checker::new().observe(&sample));
        sample.headers.insert("causation_id".into(), "r-1".into());
        assert_eq!(Checker::new().observe(&sample), Verdict::New);
    }

    #[test]
    fn rejects_an_unknown_schema_and_an_undecodable_value() {
        let mut unknown = message(Uuid::now_v7(), 1, Uuid::now_v7());
        if let Ok(event) = &mut unknown.event {
            event.schema = "orders.order-event/v2".into();
        }
        let found = problem(Checker::new().observe(&unknown));
        assert!(found.contains("unknown schema"), "{found}");
        let mut garbage = message(Uuid::now_v7(), 1, Uuid::now_v7());
        garbage.event = Err("expected value at line 1".into());
        let found = problem(Checker::new().observe(&garbage));
        assert!(
            found.contains("undecodable value: expected value"),
            "{found}"
        );
    }
}
