//! Live streams of the global feed, for consumers that have only HTTP (server-sent events in
//! `orders`, the console's live feed): one follower per process reads the feed once and fans
//! each event out to every subscriber ([`Hub`]); a subscriber first replays what it missed from
//! the feed itself, then follows the fan-out, and is cut off, told where to resume, when it falls
//! further behind than the fan-out keeps ([`FANOUT`]). Memory stays bounded whatever a consumer
//! does: the fan-out is one ring shared by all, and a replay reads one page at a time.
//!
//! A stream never skips or repeats a position: it tracks the last position it handed out,
//! drops what the fan-out repeats, and fills any gap from the feed (the feed is dense).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_store::{Feed, FeedEvent};
use futures::Stream;
use tokio::sync::{broadcast, watch};

/// Events the fan-out keeps for subscribers that are behind; one that falls further behind is
/// cut off with [`Item::Behind`].
pub const FANOUT: usize = 1024;

/// How long a client should wait before reconnecting after its stream broke (the SSE `retry`
/// field): short, since a reconnect resumes exactly where it left off.
pub const RECONNECT: Duration = Duration::from_millis(500);

/// Events a replay reads from the feed at a time.
const PAGE: usize = 500;

/// Longest wait between two reads of the feed when no wake-up comes (wake-ups may be lost).
const POLL: Duration = Duration::from_millis(500);

/// An event as the fan-out shares it: the event, and its renderings for the wire, each made by
/// the first subscriber that needs it and shared by every other (a thousand streams of one event
/// cost one encoding, not a thousand).
#[derive(Debug)]
pub struct LiveEvent {
    event: FeedEvent,
    /// Renderings by their name (one per kind of stream: a handful).
    rendered: Mutex<Vec<(&'static str, Arc<str>)>>,
}

impl LiveEvent {
    fn new(event: FeedEvent) -> Arc<Self> {
        Arc::new(Self {
            event,
            rendered: Mutex::new(Vec::new()),
        })
    }

    /// The event.
    pub fn event(&self) -> &FeedEvent {
        &self.event
    }

    /// The event as `render` renders it, rendered once for every subscriber that asks for the
    /// same `name` (each name must always go with the same function).
    pub fn rendered(
        &self,
        name: &'static str,
        render: impl FnOnce(&FeedEvent) -> String,
    ) -> Arc<str> {
        // A poisoned lock only means a render panicked elsewhere: the list is still valid.
        let mut rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, text)) = rendered.iter().find(|(n, _)| *n == name) {
            return text.clone();
        }
        let text: Arc<str> = Arc::from(render(&self.event));
        rendered.push((name, text.clone()));
        text
    }
}

impl std::ops::Deref for LiveEvent {
    type Target = FeedEvent;

    fn deref(&self) -> &FeedEvent {
        &self.event
    }
}

/// What a stream hands out.
#[derive(Debug, Clone)]
pub enum Item {
    /// The next event, in position order.
    Event(Arc<LiveEvent>),
    /// The subscriber fell too far behind and the stream ends: resume after this position
    /// (the last event it was handed).
    Behind {
        /// The position to resume after.
        resume_after: u64,
    },
    /// The feed could not be read; the stream ends: resume after this position.
    Failed {
        /// The position to resume after.
        resume_after: u64,
    },
}

/// The process's one follower of the feed and its fan-out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    shutdown: watch::Receiver<bool>,
}

impl Hub {
    /// Starts following `feed` from its head on the current runtime, until `shutdown` turns true.
    pub fn start<F: Feed + 'static>(feed: F, shutdown: watch::Receiver<bool>) -> Self {
        let (sender, _) = broadcast::channel(FANOUT);
        tokio::spawn(follow(feed, sender.clone(), shutdown.clone()));
        Self { sender, shutdown }
    }

    /// How many streams follow the fan-out now.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Every event of `feed` after position `after`, in position order: what the feed holds now,
    /// then each new one as it is numbered. Ends after an [`Item::Behind`] or [`Item::Failed`],
    /// and when the process shuts down.
    pub fn subscribe<F: Feed + 'static>(
        &self,
        feed: F,
        after: u64,
    ) -> impl Stream<Item = Item> + Send + use<F> {
        // Subscribed before the replay reads the feed: whatever the follower sends from now on is
        // in the ring, and whatever it sent before is in the feed the replay reads.
        let state = Subscription {
            feed,
            live: self.sender.subscribe(),
            shutdown: self.shutdown.clone(),
            last: after,
            handed: after,
            pending: VecDeque::new(),
            replaying: true,
            done: false,
        };
        futures::stream::unfold(state, Subscription::next)
    }
}

struct Subscription<F> {
    feed: F,
    live: broadcast::Receiver<Arc<LiveEvent>>,
    shutdown: watch::Receiver<bool>,
    /// The last position queued or handed out (or the start): the next must follow it.
    last: u64,
    /// The last position handed out: where a stream that ends resumes.
    handed: u64,
    pending: VecDeque<Arc<LiveEvent>>,
    /// Reading the feed (at the start, or to fill a gap) rather than the fan-out.
    replaying: bool,
    done: bool,
}

impl<F: Feed> Subscription<F> {
    async fn next(mut self) -> Option<(Item, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.handed = event.position;
                return Some((Item::Event(event), self));
            }
            if self.done || *self.shutdown.borrow() {
                return None;
            }
            if self.replaying {
                match self.feed.read_feed(self.last, PAGE).await {
                    Ok(events) if events.is_empty() => self.replaying = false,
                    Ok(events) => {
                        self.last = events.last().map_or(self.last, |e| e.position);
                        self.pending.extend(events.into_iter().map(LiveEvent::new));
                    }
                    Err(error) => {
                        tracing::warn!(%error, after = self.last, "a live stream could not read the feed");
                        self.done = true;
                        let resume_after = self.handed;
                        return Some((Item::Failed { resume_after }, self));
                    }
                }
                continue;
            }
            let received = tokio::select! {
                received = self.live.recv() => received,
                _ = self.shutdown.changed() => return None,
            };
            if let Err(end) = self.take(received) {
                return end.map(|item| (item, self));
            }
        }
    }

    /// Takes what the fan-out handed this stream; `Err` ends the stream (with its last item).
    fn take(
        &mut self,
        received: Result<Arc<LiveEvent>, broadcast::error::RecvError>,
    ) -> Result<(), Option<Item>> {
        match received {
            Ok(event) if event.position <= self.last => {} // replayed already
            Ok(event) if event.position == self.last + 1 => {
                self.last = event.position;
                self.pending.push_back(event);
            }
            // A gap (the follower started after this stream's replay ended): the feed has it.
            Ok(_) => self.replaying = true,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                metrics::counter!("live_stream_cutoffs_total").increment(1);
                self.done = true;
                self.pending.clear();
                return Err(Some(Item::Behind {
                    resume_after: self.handed,
                }));
            }
            Err(broadcast::error::RecvError::Closed) => return Err(None),
        }
        Ok(())
    }
}

/// Reads each new page of the feed once and sends its events to every subscriber. Without
/// subscribers it only keeps up with the head, reading nothing.
async fn follow<F: Feed>(
    feed: F,
    sender: broadcast::Sender<Arc<LiveEvent>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wakeups = feed.wakeups();
    let mut after = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let read = match after {
            // A stream that joins replays up to the head itself.
            _ if sender.receiver_count() == 0 => feed.head().await.map(|head| {
                after = Some(head);
                Vec::new()
            }),
            None => feed.head().await.map(|head| {
                after = Some(head);
                Vec::new()
            }),
            Some(position) => feed.read_feed(position, PAGE).await,
        };
        match read {
            Ok(events) if !events.is_empty() => {
                for event in events {
                    after = Some(event.position);
                    // No receiver: nobody to tell (a send only fails then).
                    let _ = sender.send(LiveEvent::new(event));
                }
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the live feed could not read the feed"),
        }
        tokio::select! {
            () = wakeups.changed() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use event_store::{EventStore, InMemoryEventStore, NewEvent};
    use futures::StreamExt;
    use uuid::Uuid;

    use super::*;

    async fn append(store: &InMemoryEventStore, events: usize) {
        for _ in 0..events {
            let event = NewEvent::new("Order", "OrderCreated", 1, serde_json::json!({}));
            store
                .append_events(Uuid::now_v7(), 0, vec![event])
                .await
                .unwrap();
        }
    }

    async fn positions(stream: impl Stream<Item = Item> + Unpin, n: usize) -> Vec<u64> {
        let items: Vec<Item> =
            tokio::time::timeout(Duration::from_secs(10), stream.take(n).collect())
                .await
                .unwrap();
        items
            .into_iter()
            .map(|item| match item {
                Item::Event(event) => event.position,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_stream_replays_what_it_missed_then_follows_live_without_gaps_or_repeats() {
        let store = InMemoryEventStore::new();
        let (_stop, shutdown) = watch::channel(false);
        let hub = Hub::start(store.clone(), shutdown);
        append(&store, 700).await; // more than a page
        let stream = Box::pin(hub.subscribe(store.clone(), 3));
        let writer = {
            let store = store.clone();
            tokio::spawn(async move { append(&store, 300).await })
        };
        let seen = positions(stream, 997).await;
        writer.await.unwrap();
        assert_eq!(seen, (4..=1000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_the_fan_out_is_told_where_to_resume() {
        let store = InMemoryEventStore::new();
        let (_stop, shutdown) = watch::channel(false);
        let hub = Hub::start(store.clone(), shutdown);
        let mut stream = Box::pin(hub.subscribe(store.clone(), 0));
        append(&store, 2).await;
        assert_eq!(positions(&mut stream, 2).await, vec![1, 2]);
        tokio::time::sleep(Duration::from_millis(100)).await; // the follower is at the head
        // The consumer reads nothing while more than the fan-out keeps goes by.
        append(&store, FANOUT + 100).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut rest = Vec::new();
        while let Some(item) = tokio::time::timeout(Duration::from_secs(3), stream.next())
            .await
            .unwrap()
        {
            rest.push(item);
        }
        match rest.last() {
            Some(Item::Behind { resume_after }) => {
                // Everything before the cut-off came in order, and resuming after it misses nothing.
                let handed: Vec<u64> = rest
                    .iter()
                    .filter_map(|i| match i {
                        Item::Event(e) => Some(e.position),
                        _ => None,
                    })
                    .collect();
                assert_eq!(handed, (3..=*resume_after).collect::<Vec<_>>());
            }
            other => panic!("expected a cut-off, got {other:?}"),
        }
        assert!(hub.subscribers() <= 1);
    }

    #[tokio::test]
    async fn streams_end_when_the_process_shuts_down() {
        let store = InMemoryEventStore::new();
        let (stop, shutdown) = watch::channel(false);
        let hub = Hub::start(store.clone(), shutdown);
        let mut stream = Box::pin(hub.subscribe(store.clone(), 0));
        let next = tokio::spawn(async move { stream.next().await.is_none() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), next)
                .await
                .unwrap()
                .unwrap()
        );
    }

    #[test]
    fn a_rendering_is_made_once_per_name_and_shared() {
        let event = LiveEvent::new(event_store::FeedEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: Uuid::now_v7(),
            aggregate_type: "Order".into(),
            version: 1,
            position: 7,
            event_type: "OrderCreated".into(),
            schema_version: 1,
            payload: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
            metadata: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
            recorded_at: chrono::Utc::now(),
        });
        let mut calls = 0;
        let a = event.rendered("wire", |e| {
            calls += 1;
            format!("at {}", e.position)
        });
        let b = event.rendered("wire", |_| unreachable!("rendered once"));
        let other = event.rendered("console", |_| "other".to_owned());
        assert_eq!((&*a, calls), ("at 7", 1));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*other, "other");
        assert_eq!(event.position, 7);
    }
}
