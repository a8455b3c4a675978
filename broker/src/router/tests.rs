//! Behaviour of the subscription router and the retained store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::protocol::topic::filter_matches;

#[derive(Debug, Clone)]
struct Client {
    id: u64,
    online: Arc<AtomicBool>,
}

impl Client {
    fn new(id: u64) -> Client {
        Client {
            id,
            online: Arc::new(AtomicBool::new(true)),
        }
    }

    fn offline(id: u64) -> Client {
        let client = Client::new(id);
        client.online.store(false, Ordering::Relaxed);
        client
    }
}

impl Subscriber for Client {
    fn id(&self) -> u64 {
        self.id
    }

    fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }
}

fn qos(level: u8) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::from_u8(level).unwrap(),
        ..SubscriptionOptions::default()
    }
}

fn routes(router: &Router<Client>, topic: &str) -> Vec<Route<Client>> {
    let mut out = Vec::new();
    router.route(topic, 0, &mut out);
    out
}

fn ids(routes: &[Route<Client>]) -> Vec<u64> {
    let mut ids: Vec<u64> = routes.iter().map(|r| r.subscriber.id).collect();
    ids.sort_unstable();
    ids
}

fn matches(filter: &str, topic: &str) -> bool {
    let router = Router::new();
    router
        .subscribe(Client::new(1), filter, qos(0), None)
        .unwrap();
    !routes(&router, topic).is_empty()
}

#[test]
fn spec_matching_examples_hold() {
    // §4.7.1.2
    assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
    assert!(matches(
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking"
    ));
    assert!(matches(
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon"
    ));
    assert!(matches("sport/#", "sport"));
    assert!(matches("#", "sport/tennis"));
    // §4.7.1.3
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(matches("sport/tennis/+", "sport/tennis/player2"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
    assert!(matches("+/tennis/#", "sport/tennis/player1"));
    // §4.7.2
    assert!(!matches("#", "$SYS/monitor/Clients"));
    assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
    assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert!(
        matches("a/+", "a/$b"),
        "the $ rule only applies to the first level"
    );
    // §4.7.3: case-sensitive, exact levels
    assert!(!matches("ACCOUNTS", "Accounts"));
    assert!(!matches("sport/tennis", "sport/tennis/player1"));
    assert!(!matches("sport/tennis/player1", "sport/tennis"));
}

#[test]
fn overlapping_subscriptions_merge_into_one_route_with_max_qos_and_all_ids() {
    let router = Router::new();
    let one = Client::new(1);
    router
        .subscribe(one.clone(), "a/b", qos(0), Some(1))
        .unwrap();
    router
        .subscribe(one.clone(), "a/+", qos(2), Some(2))
        .unwrap();
    router.subscribe(one.clone(), "#", qos(1), None).unwrap();
    let rap = SubscriptionOptions {
        retain_as_published: true,
        ..qos(1)
    };
    router
        .subscribe(one.clone(), "$exclusive/a/b", rap, Some(2))
        .unwrap();
    router
        .subscribe(Client::new(2), "a/#", qos(1), None)
        .unwrap();

    let routes = routes(&router, "a/b");
    assert_eq!(ids(&routes), vec![1, 2]);
    let first = routes.iter().find(|r| r.subscriber.id == 1).unwrap();
    assert_eq!(first.qos, QoS::ExactlyOnce);
    assert!(first.retain_as_published);
    let mut sub_ids = first.subscription_ids.clone();
    sub_ids.sort_unstable();
    assert_eq!(sub_ids, vec![1, 2], "identifiers are all there, once each");
    assert!(first.shared_group.is_none());
    let second = routes.iter().find(|r| r.subscriber.id == 2).unwrap();
    assert_eq!(second.qos, QoS::AtLeastOnce);
    assert!(!second.retain_as_published);
    assert!(second.subscription_ids.is_empty());
}

#[test]
fn route_appends_without_clearing_and_merges_only_its_own_routes() {
    let router = Router::new();
    router
        .subscribe(Client::new(1), "a", qos(0), Some(5))
        .unwrap();
    router
        .subscribe(Client::new(1), "+", qos(1), Some(6))
        .unwrap();
    let mut out = Vec::new();
    router.route("a", 0, &mut out);
    router.route("a", 0, &mut out);
    assert_eq!(out.len(), 2, "one merged route per call, earlier ones kept");
    assert!(out.iter().all(|r| r.qos == QoS::AtLeastOnce));
}

#[test]
fn single_match_without_identifier_allocates_no_identifier_vector() {
    let router = Router::new();
    router
        .subscribe(Client::new(1), "a/b", qos(1), None)
        .unwrap();
    let routes = routes(&router, "a/b");
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].subscription_ids.capacity(), 0);
}

#[test]
fn no_local_skips_only_the_publishers_own_subscriptions() {
    let router = Router::new();
    let no_local = SubscriptionOptions {
        no_local: true,
        ..qos(2)
    };
    router
        .subscribe(Client::new(1), "chat", no_local, Some(1))
        .unwrap();
    router
        .subscribe(Client::new(2), "chat", no_local, None)
        .unwrap();

    let mut out = Vec::new();
    router.route("chat", 1, &mut out);
    assert_eq!(ids(&out), vec![2]);

    // A second, local-allowed subscription of the publisher still delivers, at its own QoS.
    router
        .subscribe(Client::new(1), "#", qos(0), Some(9))
        .unwrap();
    out.clear();
    router.route("chat", 1, &mut out);
    assert_eq!(ids(&out), vec![1, 2]);
    let own = out.iter().find(|r| r.subscriber.id == 1).unwrap();
    assert_eq!(own.qos, QoS::AtMostOnce);
    assert_eq!(own.subscription_ids, vec![9]);
}

#[test]
fn shared_group_round_robin_balances_over_members() {
    let router = Router::new();
    let members = 5u64;
    for id in 1..=members {
        router
            .subscribe(
                Client::new(id),
                "$share/workers/jobs/+",
                qos(1),
                Some(id as u32),
            )
            .unwrap();
    }
    let mut received: HashMap<u64, usize> = HashMap::new();
    for _ in 0..1000 {
        let routes = routes(&router, "jobs/build");
        assert_eq!(
            routes.len(),
            1,
            "a shared message goes to exactly one member"
        );
        let route = &routes[0];
        assert_eq!(route.shared_group.as_deref(), Some("workers/jobs/+"));
        assert_eq!(route.subscription_ids, vec![route.subscriber.id as u32]);
        *received.entry(route.subscriber.id).or_default() += 1;
    }
    assert_eq!(received.len(), members as usize);
    assert!(received.values().all(|&count| count == 200), "{received:?}");
}

#[test]
fn shared_and_non_shared_subscriptions_of_one_client_deliver_separately() {
    let router = Router::new();
    router
        .subscribe(Client::new(1), "$share/g/t", qos(2), Some(1))
        .unwrap();
    router
        .subscribe(Client::new(1), "t", qos(0), Some(2))
        .unwrap();
    let routes = routes(&router, "t");
    assert_eq!(routes.len(), 2);
    let shared = routes.iter().find(|r| r.shared_group.is_some()).unwrap();
    let plain = routes.iter().find(|r| r.shared_group.is_none()).unwrap();
    assert_eq!(
        (shared.qos, shared.subscription_ids.clone()),
        (QoS::ExactlyOnce, vec![1])
    );
    assert_eq!(
        (plain.qos, plain.subscription_ids.clone()),
        (QoS::AtMostOnce, vec![2])
    );
}

#[test]
fn each_matching_shared_group_delivers_one_copy() {
    let router = Router::new();
    router
        .subscribe(Client::new(1), "$share/a/t/+", qos(0), None)
        .unwrap();
    router
        .subscribe(Client::new(2), "$share/a/t/+", qos(0), None)
        .unwrap();
    router
        .subscribe(Client::new(3), "$share/b/t/+", qos(0), None)
        .unwrap();
    router
        .subscribe(Client::new(4), "$share/a/t/#", qos(0), None)
        .unwrap();
    let routes = routes(&router, "t/x");
    let mut groups: Vec<&str> = routes
        .iter()
        .map(|r| r.shared_group.as_deref().unwrap())
        .collect();
    groups.sort_unstable();
    assert_eq!(groups, vec!["a/t/#", "a/t/+", "b/t/+"]);
}

#[test]
fn shared_group_prefers_online_members_and_falls_back_to_offline_ones() {
    let router = Router::new();
    let clients: Vec<Client> = (1..=4)
        .map(|id| {
            if id % 2 == 0 {
                Client::offline(id)
            } else {
                Client::new(id)
            }
        })
        .collect();
    for client in &clients {
        router
            .subscribe(client.clone(), "$share/g/t", qos(1), None)
            .unwrap();
    }
    let mut received: BTreeMap<u64, usize> = BTreeMap::new();
    for _ in 0..100 {
        for route in routes(&router, "t") {
            *received.entry(route.subscriber.id).or_default() += 1;
        }
    }
    assert_eq!(
        received,
        BTreeMap::from([(1, 50), (3, 50)]),
        "online members share evenly"
    );

    for client in &clients {
        client.online.store(false, Ordering::Relaxed);
    }
    received.clear();
    for _ in 0..100 {
        for route in routes(&router, "t") {
            *received.entry(route.subscriber.id).or_default() += 1;
        }
    }
    assert_eq!(
        received.values().sum::<usize>(),
        100,
        "still delivered when all are offline"
    );
    assert_eq!(received.len(), 4, "{received:?}");
}

#[test]
fn pick_shared_member_excludes_the_given_subscriber() {
    let router = Router::new();
    router
        .subscribe(Client::new(1), "$share/g/t/#", qos(1), Some(11))
        .unwrap();
    router
        .subscribe(Client::new(2), "$share/g/t/#", qos(2), Some(22))
        .unwrap();
    let key: SharedGroupKey = routes(&router, "t/x")[0].shared_group.clone().unwrap();
    for _ in 0..10 {
        let route = router.pick_shared_member(&key, 1).unwrap();
        assert_eq!(route.subscriber.id, 2);
        assert_eq!(route.qos, QoS::ExactlyOnce);
        assert_eq!(route.subscription_ids, vec![22]);
        assert_eq!(route.shared_group.as_deref(), Some("g/t/#"));
    }
    router.unsubscribe(2, "$share/g/t/#");
    assert!(
        router.pick_shared_member(&key, 1).is_none(),
        "no other member left"
    );
    assert!(router.pick_shared_member(&key, 2).is_some());
    assert!(router
        .pick_shared_member(&Arc::from("other/t/#"), 2)
        .is_none());
    assert!(router
        .pick_shared_member(&Arc::from("nonsense"), 2)
        .is_none());
}

#[test]
fn exclusive_subscription_is_refused_while_held_and_free_after_release() {
    let router = Router::new();
    let outcome = router
        .subscribe(Client::new(1), "$exclusive/door", qos(1), None)
        .unwrap();
    assert!(!outcome.existed);
    assert!(matches!(
        router.subscribe(Client::new(2), "$exclusive/door", qos(1), None),
        Err(SubscribeError::ExclusiveTaken)
    ));
    // The holder may re-subscribe (replacing its options); plain subscriptions are unaffected.
    let outcome = router
        .subscribe(Client::new(1), "$exclusive/door", qos(2), Some(3))
        .unwrap();
    assert!(outcome.existed);
    router
        .subscribe(Client::new(2), "door", qos(0), None)
        .unwrap();
    let delivered = routes(&router, "door");
    assert_eq!(ids(&delivered), vec![1, 2]);
    let holder = delivered.iter().find(|r| r.subscriber.id == 1).unwrap();
    assert_eq!(
        (holder.qos, holder.subscription_ids.clone()),
        (QoS::ExactlyOnce, vec![3])
    );
    assert!(holder.shared_group.is_none());

    assert!(
        !router.unsubscribe(2, "$exclusive/door"),
        "only the holder can release it"
    );
    assert!(router.unsubscribe(1, "$exclusive/door"));
    assert!(router
        .subscribe(Client::new(2), "$exclusive/door", qos(0), None)
        .is_ok());
    assert_eq!(ids(&routes(&router, "door")), vec![2]);
}

#[test]
fn resubscribing_replaces_options_and_reports_that_it_existed() {
    let router = Router::new();
    assert!(
        !router
            .subscribe(Client::new(1), "a/+", qos(0), Some(1))
            .unwrap()
            .existed
    );
    assert!(
        router
            .subscribe(Client::new(1), "a/+", qos(2), None)
            .unwrap()
            .existed
    );
    assert!(
        !router
            .subscribe(Client::new(1), "$share/g/a/+", qos(0), None)
            .unwrap()
            .existed
    );
    assert!(
        router
            .subscribe(Client::new(1), "$share/g/a/+", qos(1), None)
            .unwrap()
            .existed
    );
    assert_eq!(router.subscription_count(), 2);
    assert_eq!(router.shared_subscription_count(), 1);
    let routes = routes(&router, "a/b");
    let plain = routes.iter().find(|r| r.shared_group.is_none()).unwrap();
    assert_eq!(plain.qos, QoS::ExactlyOnce);
    assert!(plain.subscription_ids.is_empty());
    let shared = routes.iter().find(|r| r.shared_group.is_some()).unwrap();
    assert_eq!(shared.qos, QoS::AtLeastOnce);
}

#[test]
fn invalid_filters_are_rejected_and_unsubscribe_of_unknown_filters_reports_false() {
    let router = Router::<Client>::new();
    for filter in [
        "",
        "a/#/b",
        "a+",
        "a/b#",
        "$share/g",
        "$share//a",
        "$share/g+/a",
    ] {
        assert!(
            matches!(
                router.subscribe(Client::new(1), filter, qos(0), None),
                Err(SubscribeError::InvalidFilter(_))
            ),
            "{filter:?}"
        );
    }
    assert_eq!(router.node_count(), 1);
    router.subscribe(Client::new(1), "a", qos(0), None).unwrap();
    assert!(!router.unsubscribe(2, "a"), "another subscriber's filter");
    assert!(!router.unsubscribe(1, "b"));
    assert!(!router.unsubscribe(1, "a/#/b"));
    assert!(!router.unsubscribe(1, "$share/g/a"));
    assert!(router.unsubscribe(1, "a"));
    assert!(!router.unsubscribe(1, "a"));
}

#[test]
fn unsubscribe_removes_emptied_nodes() {
    let router = Router::new();
    let filters = [
        "a/b/c",
        "a/b",
        "a/+/c",
        "a/#",
        "+/x/#",
        "#",
        "$share/g/a/b/c",
        "$share/h/q/+",
        "$exclusive/e/f",
        "/",
    ];
    for (id, filter) in filters.iter().enumerate() {
        router
            .subscribe(Client::new(id as u64), filter, qos(0), None)
            .unwrap();
        router
            .subscribe(Client::new(100), filter, qos(0), None)
            .unwrap_or_default_outcome();
    }
    assert!(router.node_count() > 1);
    assert_eq!(router.shared_subscription_count(), 4);

    // Removing a deeper filter keeps the nodes a shorter one still needs.
    router.unsubscribe(0, "a/b/c");
    router.unsubscribe(100, "a/b/c");
    assert_eq!(
        ids(&routes(&router, "a/b"))
            .iter()
            .filter(|&&id| id == 1)
            .count(),
        1
    );

    for (id, filter) in filters.iter().enumerate() {
        router.unsubscribe(id as u64, filter);
        router.unsubscribe(100, filter);
    }
    assert_eq!(router.node_count(), 1, "only the root is left");
    assert_eq!(router.subscription_count(), 0);
    assert_eq!(router.shared_subscription_count(), 0);
    assert!(routes(&router, "a/b/c").is_empty());
}

trait OrDefaultOutcome {
    fn unwrap_or_default_outcome(self);
}

impl OrDefaultOutcome for Result<SubscribeOutcome, SubscribeError> {
    /// Subscriber 100 cannot take exclusive filters already held; that is expected here.
    fn unwrap_or_default_outcome(self) {
        match self {
            Ok(_) | Err(SubscribeError::ExclusiveTaken) => {}
            Err(error) => panic!("{error}"),
        }
    }
}

#[test]
fn churn_does_not_grow_the_trie() {
    let router = Router::new();
    for round in 0..50u64 {
        for device in 0..20u64 {
            let filter = format!("devices/{}/cmd/+", round * 100 + device);
            router
                .subscribe(Client::new(device), &filter, qos(1), None)
                .unwrap();
        }
        for device in 0..20u64 {
            let filter = format!("devices/{}/cmd/+", round * 100 + device);
            assert!(router.unsubscribe(device, &filter));
        }
    }
    assert_eq!(router.node_count(), 1);
}

#[test]
fn very_deep_filters_and_topics_do_not_overflow_the_stack() {
    let router = Router::new();
    let deep_filter = vec!["+"; 30_000].join("/");
    let deep_topic = vec!["x"; 30_000].join("/");
    router
        .subscribe(Client::new(1), &deep_filter, qos(0), None)
        .unwrap();
    router
        .subscribe(Client::new(2), &deep_topic, qos(0), None)
        .unwrap();
    router
        .subscribe(Client::new(3), "x/#", qos(0), None)
        .unwrap();
    assert_eq!(ids(&routes(&router, &deep_topic)), vec![1, 2, 3]);
    assert!(router.unsubscribe(1, &deep_filter));
    drop(router); // iterative teardown of a 30,000-level branch
}

#[test]
fn topics_deeper_than_the_inline_walk_stack_still_match() {
    let router = Router::new();
    let levels = 100;
    let topic = vec!["l"; levels].join("/");
    // Alternate literal and `+` levels so the walk branches at every level.
    let filter: Vec<&str> = (0..levels)
        .map(|i| if i % 2 == 0 { "+" } else { "l" })
        .collect();
    router
        .subscribe(Client::new(1), &filter.join("/"), qos(0), None)
        .unwrap();
    router
        .subscribe(Client::new(2), &topic, qos(0), None)
        .unwrap();
    router
        .subscribe(
            Client::new(3),
            &format!("{}/#", vec!["+"; levels - 1].join("/")),
            qos(0),
            None,
        )
        .unwrap();
    assert_eq!(ids(&routes(&router, &topic)), vec![1, 2, 3]);
}

#[test]
fn publishers_route_concurrently_with_subscription_changes() {
    let router = Arc::new(Router::new());
    router
        .subscribe(Client::new(0), "t/#", qos(0), None)
        .unwrap();
    let writers: Vec<_> = (1..=2u64)
        .map(|id| {
            let router = Arc::clone(&router);
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let filter = format!("t/{}", i % 50);
                    router
                        .subscribe(Client::new(id), &filter, qos(1), None)
                        .unwrap();
                    router.unsubscribe(id, &filter);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let router = Arc::clone(&router);
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for i in 0..5000 {
                    out.clear();
                    router.route(&format!("t/{}", i % 50), 99, &mut out);
                    assert!(out.iter().any(|r| r.subscriber.id == 0));
                }
            })
        })
        .collect();
    for handle in writers.into_iter().chain(readers) {
        handle.join().unwrap();
    }
    assert_eq!(router.subscription_count(), 1);
    assert_eq!(router.node_count(), 3);
}

// ---------------------------------------------------------------------------------------------
// Retained store

fn retained_matching(store: &RetainedStore<&'static str>, filter: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    store.matching(filter, &mut out);
    out.sort_unstable();
    out
}

#[test]
fn retained_set_replaces_and_clears() {
    let store = RetainedStore::new();
    assert!(store.is_empty());
    store.set("a/b", Some("one"));
    store.set("a/b", Some("two"));
    assert_eq!(store.len(), 1);
    assert_eq!(store.get("a/b"), Some("two"));
    assert_eq!(store.get("a"), None);
    store.set("a", Some("parent"));
    assert_eq!(store.len(), 2);
    store.set("a/b", None);
    assert_eq!(store.len(), 1);
    assert_eq!(store.get("a/b"), None);
    store.set("a/b", None);
    store.set("never/set", None);
    assert_eq!(store.len(), 1);
    assert_eq!(store.node_count(), 2, "root and `a`");
    store.set("a", None);
    assert!(store.is_empty());
    assert_eq!(store.node_count(), 1, "only the root is left");
}

#[test]
fn retained_matching_applies_wildcards_and_the_dollar_rule() {
    let store = RetainedStore::new();
    for topic in [
        "sport",
        "sport/tennis/player1",
        "sport/tennis/player2",
        "sport/tennis/player1/score",
        "sport/",
        "/finance",
        "$SYS/uptime",
        "a/$b",
    ] {
        store.set(topic, Some(topic));
    }
    assert_eq!(
        retained_matching(&store, "sport/tennis/player1/#"),
        vec!["sport/tennis/player1", "sport/tennis/player1/score"]
    );
    assert_eq!(
        retained_matching(&store, "sport/#"),
        vec![
            "sport",
            "sport/",
            "sport/tennis/player1",
            "sport/tennis/player1/score",
            "sport/tennis/player2"
        ]
    );
    assert_eq!(
        retained_matching(&store, "sport/tennis/+"),
        vec!["sport/tennis/player1", "sport/tennis/player2"]
    );
    assert_eq!(retained_matching(&store, "sport/+"), vec!["sport/"]);
    assert_eq!(
        retained_matching(&store, "+/+"),
        vec!["/finance", "a/$b", "sport/"]
    );
    assert_eq!(retained_matching(&store, "+"), vec!["sport"]);
    assert_eq!(
        retained_matching(&store, "#").len(),
        7,
        "everything but $SYS"
    );
    assert_eq!(retained_matching(&store, "$SYS/#"), vec!["$SYS/uptime"]);
    assert_eq!(retained_matching(&store, "$SYS/+"), vec!["$SYS/uptime"]);
    assert_eq!(
        retained_matching(&store, "sport/tennis/player2"),
        vec!["sport/tennis/player2"]
    );
    assert!(
        retained_matching(&store, "sport/#/x").is_empty(),
        "invalid filter"
    );
}

#[test]
fn retained_store_survives_very_deep_topics() {
    let store = RetainedStore::new();
    let topic = vec![""; 30_000].join("/");
    store.set(&topic, Some("deep"));
    assert_eq!(retained_matching(&store, "#"), vec!["deep"]);
    store.set(&topic, None);
    assert_eq!(store.node_count(), 1);
    store.set(&topic, Some("deep"));
    drop(store);
}

// ---------------------------------------------------------------------------------------------
// Property tests against the reference matcher

fn topic_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "", "$s"]), 1..5)
        .prop_map(|levels| levels.join("/"))
}

fn filter_strategy() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(vec!["a", "b", "", "$s", "+"]), 0..4),
        any::<bool>(),
    )
        .prop_filter_map("empty filter", |(mut levels, hash)| {
            if hash {
                levels.push("#");
            }
            let filter = levels.join("/");
            (!filter.is_empty()).then_some(filter)
        })
}

#[derive(Debug, Clone)]
struct Sub {
    client: u64,
    filter: String,
    qos: u8,
    identifier: Option<u32>,
    shared: bool,
}

fn sub_strategy() -> impl Strategy<Value = Sub> {
    (
        0..4u64,
        filter_strategy(),
        0..3u8,
        prop::option::of(1..4u32),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(client, filter, qos, identifier, shared)| Sub {
            client,
            filter,
            qos,
            identifier,
            shared,
        })
}

proptest! {
    #[test]
    fn route_agrees_with_the_reference_matcher(
        subs in prop::collection::vec(sub_strategy(), 0..12),
        topics in prop::collection::vec(topic_strategy(), 1..6),
    ) {
        let router = Router::new();
        // Model: the last subscription per (client, filter) wins.
        let mut plain: BTreeMap<(u64, String), (u8, Option<u32>)> = BTreeMap::new();
        let mut shared: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for sub in &subs {
            let full = if sub.shared { format!("$share/g/{}", sub.filter) } else { sub.filter.clone() };
            router.subscribe(Client::new(sub.client), &full, qos(sub.qos), sub.identifier).unwrap();
            if sub.shared {
                shared.entry(sub.filter.clone()).or_default().insert(sub.client);
            } else {
                plain.insert((sub.client, sub.filter.clone()), (sub.qos, sub.identifier));
            }
        }
        prop_assert_eq!(router.subscription_count(), plain.len() + shared.values().map(BTreeSet::len).sum::<usize>());

        for topic in &topics {
            let routes = routes(&router, topic);

            let mut expected: BTreeMap<u64, (u8, BTreeSet<u32>)> = BTreeMap::new();
            for ((client, filter), (qos, identifier)) in &plain {
                if filter_matches(filter, topic) {
                    let slot = expected.entry(*client).or_insert((0, BTreeSet::new()));
                    slot.0 = slot.0.max(*qos);
                    slot.1.extend(*identifier);
                }
            }
            let mut actual: BTreeMap<u64, (u8, BTreeSet<u32>)> = BTreeMap::new();
            for route in routes.iter().filter(|r| r.shared_group.is_none()) {
                let ids: BTreeSet<u32> = route.subscription_ids.iter().copied().collect();
                prop_assert_eq!(ids.len(), route.subscription_ids.len(), "duplicate identifiers");
                let previous = actual.insert(route.subscriber.id, (route.qos as u8, ids));
                prop_assert!(previous.is_none(), "two non-shared routes for one subscriber");
            }
            prop_assert_eq!(&actual, &expected, "topic {:?}", topic);

            let mut expected_groups: Vec<String> = shared
                .keys()
                .filter(|filter| filter_matches(filter, topic))
                .map(|filter| format!("g/{filter}"))
                .collect();
            let mut actual_groups: Vec<String> = Vec::new();
            for route in routes.iter().filter(|r| r.shared_group.is_some()) {
                let group = route.shared_group.as_deref().unwrap().to_owned();
                let members = &shared[&group["g/".len()..]];
                prop_assert!(members.contains(&route.subscriber.id));
                actual_groups.push(group);
            }
            expected_groups.sort();
            actual_groups.sort();
            prop_assert_eq!(actual_groups, expected_groups);
        }

        for sub in &subs {
            let full = if sub.shared { format!("$share/g/{}", sub.filter) } else { sub.filter.clone() };
            router.unsubscribe(sub.client, &full);
        }
        prop_assert_eq!(router.node_count(), 1);
        prop_assert_eq!(router.subscription_count(), 0);
    }

    #[test]
    fn retained_matching_agrees_with_the_reference_matcher(
        topics in prop::collection::vec(topic_strategy(), 0..12),
        cleared in prop::collection::vec(topic_strategy(), 0..4),
        filter in filter_strategy(),
    ) {
        let store = RetainedStore::new();
        let mut model: BTreeSet<String> = BTreeSet::new();
        for topic in &topics {
            store.set(topic, Some(topic.clone()));
            model.insert(topic.clone());
        }
        for topic in &cleared {
            store.set(topic, None);
            model.remove(topic);
        }
        prop_assert_eq!(store.len(), model.len());
        let mut actual = Vec::new();
        store.matching(&filter, &mut actual);
        actual.sort();
        let expected: Vec<String> = model.iter().filter(|t| filter_matches(&filter, t)).cloned().collect();
        prop_assert_eq!(actual, expected);
    }
}
