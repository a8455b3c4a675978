//! Who is subscribed to what, and where a PUBLISH goes.
//!
//! [`Router`] holds every subscription in a trie over topic levels: each node has a hash map of
//! literal children plus dedicated `+` and `#` slots, so routing a topic costs O(topic depth ×
//! wildcard branching) hash lookups and is independent of how many subscriptions exist elsewhere
//! in the tree. The trie sits behind one `RwLock`: publishers only take the read lock and run in
//! parallel; the only thing they mutate is the round-robin cursor of shared groups, which is
//! atomic. SUBSCRIBE/UNSUBSCRIBE take the write lock briefly.
//!
//! [`RetainedStore`] is the companion trie for retained messages, keyed by topic name and
//! queried by filter.

mod retained;
mod trie;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::protocol::topic::{levels, parse_filter, split_level, FilterKind, TopicError};
use crate::protocol::{QoS, SubscriptionOptions};

pub use retained::RetainedStore;

use trie::PathNode;

/// What the router needs from a subscriber handle.
///
/// The router is generic so it can be tested without sessions and so it never looks inside one;
/// the broker's implementation wraps an `Arc<Session>`. Cloning must be cheap: every route
/// carries a clone.
pub trait Subscriber: Clone + Send + Sync + 'static {
    /// Identity of the subscriber, unique per session. Replacing and removing subscriptions,
    /// no-local and merging overlapping matches are all decided by this id.
    fn id(&self) -> u64;
    /// Whether the subscriber is connected right now; shared groups prefer online members.
    fn is_online(&self) -> bool;
}

/// Names one shared-subscription group: the text `"{group}/{filter}"` (e.g. `"g1/sensors/+"`).
///
/// A delivery made through a shared subscription remembers its group so that, if the receiver
/// goes away without acknowledging it, the broker can hand it to another member with
/// [`Router::pick_shared_member`]. Cloning only bumps a reference count.
pub type SharedGroupKey = Arc<str>;

/// One subscriber that should receive a published message, with the delivery parameters that
/// the matching subscriptions granted.
#[derive(Debug, Clone)]
pub struct Route<K> {
    /// Who receives the message.
    pub subscriber: K,
    /// Maximum QoS granted: for a non-shared route, the highest of all this subscriber's
    /// matching non-shared subscriptions; for a shared route, that member's granted QoS. The
    /// delivery QoS is the minimum of this and the published QoS.
    pub qos: QoS,
    /// True if any matching subscription asked for Retain As Published.
    pub retain_as_published: bool,
    /// Subscription Identifiers (5.0) of every matching subscription, without duplicates, in
    /// no particular order. Empty (and unallocated) when none of them had one.
    pub subscription_ids: Vec<u32>,
    /// Set when the route comes from a shared subscription, so the delivery can be handed to
    /// another member if this one disconnects with it unacknowledged.
    pub shared_group: Option<SharedGroupKey>,
}

/// Result of a successful [`Router::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeOutcome {
    /// Whether this subscriber already had this exact filter (its options were replaced). The
    /// broker needs it for Retain Handling 1 ("send retained only if new").
    pub existed: bool,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The filter (or its `$share/` / `$exclusive/` prefix) is malformed; SUBACK 0x8F.
    #[error("invalid topic filter: {0}")]
    InvalidFilter(#[from] TopicError),
    /// Another subscriber holds this `$exclusive/` filter; the broker answers SUBACK 0x97
    /// (Quota exceeded).
    #[error("exclusive subscription is held by another client")]
    ExclusiveTaken,
}

/// The subscription table: matches published topics to subscribers.
///
/// Exists once per broker and is shared by all connections. See the module documentation for
/// the data structure and locking.
pub struct Router<K: Subscriber> {
    root: RwLock<Node<K>>,
    /// All subscriptions (normal, exclusive and shared members). Written under the write lock,
    /// read without any lock for metrics.
    subscriptions: AtomicUsize,
    /// Shared-subscription memberships only.
    shared_subscriptions: AtomicUsize,
}

/// One subscription as stored in the trie.
struct Entry<K> {
    subscriber: K,
    options: SubscriptionOptions,
    identifier: Option<u32>,
}

impl<K: Subscriber> Entry<K> {
    fn route(&self, shared_group: Option<SharedGroupKey>) -> Route<K> {
        Route {
            subscriber: self.subscriber.clone(),
            qos: self.options.qos,
            retain_as_published: self.options.retain_as_published,
            subscription_ids: match self.identifier {
                Some(id) => vec![id],
                None => Vec::new(),
            },
            shared_group,
        }
    }

    /// No-local: the subscriber does not want its own publications.
    fn suppressed_for(&self, publisher_id: u64) -> bool {
        self.options.no_local && self.subscriber.id() == publisher_id
    }
}

/// The members of one `$share/{group}/{filter}`; each message goes to one of them.
struct SharedGroup<K> {
    /// `"{group}/{filter}"`, handed out with every delivery.
    key: SharedGroupKey,
    /// Length of the group-name prefix of `key`.
    name_len: usize,
    /// In subscription order; replaced in place when a member re-subscribes.
    members: Vec<Entry<K>>,
    /// Round-robin ticket counter, advanced by publishers under the read lock.
    cursor: AtomicUsize,
}

impl<K: Subscriber> SharedGroup<K> {
    fn name(&self) -> &str {
        &self.key[..self.name_len]
    }

    /// Picks the next member in round-robin order, skipping `excluded` ones and preferring
    /// online members; falls back to the next offline member when none is online.
    ///
    /// O(1) when the member at the cursor is online; at worst one pass over the members. When
    /// offline members are skipped the cursor jumps past them, so the online members share the
    /// load evenly instead of the one after an offline member getting its turns too.
    fn pick(&self, excluded: impl Fn(&Entry<K>) -> bool) -> Option<&Entry<K>> {
        let count = self.members.len();
        if count == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let mut fallback = None;
        for offset in 0..count {
            let member = &self.members[start.wrapping_add(offset) % count];
            if excluded(member) {
                continue;
            }
            if member.subscriber.is_online() {
                if offset > 0 {
                    self.cursor.fetch_add(offset, Ordering::Relaxed);
                }
                return Some(member);
            }
            fallback.get_or_insert(member);
        }
        fallback
    }
}

/// A trie node: one topic level of one or more filters.
struct Node<K> {
    /// Literal next levels.
    children: HashMap<Box<str>, Node<K>>,
    /// The `+` next level.
    plus: Option<Box<Node<K>>>,
    /// The `#` next level (always a leaf).
    hash: Option<Box<Node<K>>>,
    /// Normal subscriptions ending here, by subscriber id.
    subscriptions: HashMap<u64, Entry<K>>,
    /// The `$exclusive/` holder of the filter ending here.
    exclusive: Option<Entry<K>>,
    /// Shared groups whose filter ends here (usually zero or a handful).
    shared: Vec<SharedGroup<K>>,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            hash: None,
            subscriptions: HashMap::new(),
            exclusive: None,
            shared: Vec::new(),
        }
    }
}

impl<K> Node<K> {
    /// The node for `filter`, creating the missing levels.
    fn descend_or_create(&mut self, filter: &str) -> &mut Node<K> {
        let mut node = self;
        for level in levels(filter) {
            node = match level {
                "+" => node.plus.get_or_insert_with(Box::default),
                "#" => node.hash.get_or_insert_with(Box::default),
                _ => {
                    if !node.children.contains_key(level) {
                        node.children.insert(level.into(), Node::default());
                    }
                    node.children.get_mut(level).expect("inserted above")
                }
            };
        }
        node
    }

    fn move_children_into(&mut self, stack: &mut Vec<Node<K>>) {
        stack.extend(self.children.drain().map(|(_, child)| child));
        if let Some(plus) = self.plus.take() {
            stack.push(*plus);
        }
        if let Some(hash) = self.hash.take() {
            stack.push(*hash);
        }
    }

    #[cfg(test)]
    fn count_nodes(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
            stack.extend(node.plus.as_deref());
            stack.extend(node.hash.as_deref());
        }
        count
    }
}

impl<K> PathNode for Node<K> {
    fn child(&self, level: &str) -> Option<&Self> {
        match level {
            "+" => self.plus.as_deref(),
            "#" => self.hash.as_deref(),
            _ => self.children.get(level),
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Self> {
        match level {
            "+" => self.plus.as_deref_mut(),
            "#" => self.hash.as_deref_mut(),
            _ => self.children.get_mut(level),
        }
    }

    fn remove_child(&mut self, level: &str) {
        match level {
            "+" => self.plus = None,
            "#" => self.hash = None,
            _ => {
                self.children.remove(level);
                trie::maybe_shrink(&mut self.children);
            }
        }
    }

    fn has_payload(&self) -> bool {
        !self.subscriptions.is_empty() || self.exclusive.is_some() || !self.shared.is_empty()
    }

    fn child_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some()) + usize::from(self.hash.is_some())
    }
}

impl<K> Drop for Node<K> {
    /// Tears the subtree down iteratively: the default recursive drop could overflow the stack
    /// on a filter with tens of thousands of levels.
    fn drop(&mut self) {
        if self.children.is_empty() && self.plus.is_none() && self.hash.is_none() {
            return;
        }
        let mut stack = Vec::new();
        self.move_children_into(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.move_children_into(&mut stack);
        }
    }
}

/// A pending step of the routing walk: match `rest` of the topic below `node`.
struct Frame<'a, K> {
    node: &'a Node<K>,
    /// Remaining topic levels; `None` once every level has been consumed.
    rest: Option<&'a str>,
    /// Whether `rest` starts at the first topic level (for the `$` rule).
    first: bool,
}

impl<K> Clone for Frame<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Frame<'_, K> {}

/// Frames kept on the (thread's) stack before spilling to the heap. The walk holds at most
/// one frame per topic level plus one, so topics up to this deep route without allocating.
const INLINE_FRAMES: usize = 32;

/// LIFO of walk frames: a fixed inline array, then a heap vector for very deep topics.
struct WalkStack<'a, K> {
    inline: [Option<Frame<'a, K>>; INLINE_FRAMES],
    len: usize,
    spill: Vec<Frame<'a, K>>,
}

impl<'a, K> WalkStack<'a, K> {
    fn new() -> Self {
        WalkStack {
            inline: [None; INLINE_FRAMES],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, frame: Frame<'a, K>) {
        if self.len < INLINE_FRAMES {
            self.inline[self.len] = Some(frame);
            self.len += 1;
        } else {
            self.spill.push(frame);
        }
    }

    fn pop(&mut self) -> Option<Frame<'a, K>> {
        if let Some(frame) = self.spill.pop() {
            return Some(frame);
        }
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        self.inline[self.len].take()
    }
}

impl<K: Subscriber> Default for Router<K> {
    fn default() -> Self {
        Router::new()
    }
}

impl<K: Subscriber> fmt::Debug for Router<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("subscriptions", &self.subscription_count())
            .field("shared_subscriptions", &self.shared_subscription_count())
            .finish_non_exhaustive()
    }
}

impl<K: Subscriber> Router<K> {
    /// An empty router; the broker creates one at start-up.
    pub fn new() -> Self {
        Router {
            root: RwLock::new(Node::default()),
            subscriptions: AtomicUsize::new(0),
            shared_subscriptions: AtomicUsize::new(0),
        }
    }

    /// Adds or replaces a subscription of `subscriber` to `filter`, the full filter as the
    /// client sent it (including a `$share/{group}/` or `$exclusive/` prefix).
    ///
    /// Subscribing again to the same filter replaces the options and identifier and reports
    /// `existed: true`. An `$exclusive/` filter held by another subscriber is refused with
    /// [`SubscribeError::ExclusiveTaken`].
    pub fn subscribe(
        &self,
        subscriber: K,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> Result<SubscribeOutcome, SubscribeError> {
        let kind = parse_filter(filter)?;
        let id = subscriber.id();
        let entry = Entry {
            subscriber,
            options,
            identifier,
        };
        let mut root = self.root.write();
        let existed = match kind {
            FilterKind::Normal(filter) => root
                .descend_or_create(filter)
                .subscriptions
                .insert(id, entry)
                .is_some(),
            FilterKind::Exclusive(filter) => {
                // Look before creating, so a refused subscription leaves no empty nodes.
                if let Some(holder) = root.descend(filter).and_then(|n| n.exclusive.as_ref()) {
                    if holder.subscriber.id() != id {
                        return Err(SubscribeError::ExclusiveTaken);
                    }
                }
                root.descend_or_create(filter)
                    .exclusive
                    .replace(entry)
                    .is_some()
            }
            FilterKind::Shared {
                group,
                filter: inner,
            } => {
                let node = root.descend_or_create(inner);
                let index = match node.shared.iter().position(|g| g.name() == group) {
                    Some(index) => index,
                    None => {
                        node.shared.push(SharedGroup {
                            key: Arc::from(format!("{group}/{inner}")),
                            name_len: group.len(),
                            members: Vec::new(),
                            cursor: AtomicUsize::new(0),
                        });
                        node.shared.len() - 1
                    }
                };
                let members = &mut node.shared[index].members;
                match members.iter_mut().find(|m| m.subscriber.id() == id) {
                    Some(member) => {
                        *member = entry;
                        true
                    }
                    None => {
                        members.push(entry);
                        self.shared_subscriptions.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                }
            }
        };
        if !existed {
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(SubscribeOutcome { existed })
    }

    /// Removes the subscription of `subscriber_id` to `filter` (as sent, with any prefix) and
    /// the trie nodes it leaves empty. Returns whether it existed (UNSUBACK 0x00 vs 0x11).
    pub fn unsubscribe(&self, subscriber_id: u64, filter: &str) -> bool {
        let Ok(kind) = parse_filter(filter) else {
            return false;
        };
        let mut root = self.root.write();
        let (path, removed) = match kind {
            FilterKind::Normal(filter) => {
                let removed = root
                    .descend_mut(filter)
                    .and_then(|node| node.subscriptions.remove(&subscriber_id));
                (filter, removed.is_some())
            }
            FilterKind::Exclusive(filter) => {
                let removed = root.descend_mut(filter).and_then(|node| {
                    let held = node
                        .exclusive
                        .as_ref()
                        .is_some_and(|holder| holder.subscriber.id() == subscriber_id);
                    if held {
                        node.exclusive.take()
                    } else {
                        None
                    }
                });
                (filter, removed.is_some())
            }
            FilterKind::Shared {
                group,
                filter: inner,
            } => {
                let removed = root
                    .descend_mut(inner)
                    .is_some_and(|node| remove_shared_member(node, group, subscriber_id));
                if removed {
                    self.shared_subscriptions.fetch_sub(1, Ordering::Relaxed);
                }
                (inner, removed)
            }
        };
        if removed {
            self.subscriptions.fetch_sub(1, Ordering::Relaxed);
            trie::prune(&mut *root, path);
        }
        removed
    }

    /// Appends to `out` one route per subscriber that should receive a message published on
    /// `topic` by the session `publisher_id` (for no-local). `out` is not cleared, so callers
    /// can reuse one vector across publishes.
    ///
    /// Each subscriber gets at most one non-shared route (its matching subscriptions merged:
    /// highest QoS, all identifiers, any Retain As Published) and, separately, one route per
    /// matching shared group it was picked for. Each matching shared group delivers to exactly
    /// one member, round-robin, preferring online members.
    ///
    /// Takes only the read lock; cost is proportional to the topic depth and the number of
    /// matching subscriptions, not to the size of the table. No allocation beyond `out`'s
    /// growth and the identifier vectors, unless the topic is deeper than 31 levels.
    pub fn route(&self, topic: &str, publisher_id: u64, out: &mut Vec<Route<K>>) {
        let root = self.root.read();
        let base = out.len();
        // Number of trie slots (a node's normal map, an exclusive holder) that produced
        // non-shared routes. Within one slot subscribers are unique, so with at most one such
        // slot there is nothing to merge.
        let mut sources = 0usize;
        let mut emit = |node: &Node<K>, out: &mut Vec<Route<K>>| {
            let before = out.len();
            for entry in node.subscriptions.values() {
                if !entry.suppressed_for(publisher_id) {
                    out.push(entry.route(None));
                }
            }
            if out.len() > before {
                sources += 1;
            }
            if let Some(holder) = &node.exclusive {
                if !holder.suppressed_for(publisher_id) {
                    out.push(holder.route(None));
                    sources += 1;
                }
            }
            for group in &node.shared {
                if let Some(member) = group.pick(|m| m.suppressed_for(publisher_id)) {
                    out.push(member.route(Some(group.key.clone())));
                }
            }
        };

        let mut stack = WalkStack::new();
        stack.push(Frame {
            node: &root,
            rest: Some(topic),
            first: true,
        });
        while let Some(Frame { node, rest, first }) = stack.pop() {
            let Some(rest) = rest else {
                // Every level consumed: filters ending here match, and so does a trailing `#`
                // ("sport/#" matches "sport").
                emit(node, out);
                if let Some(hash) = &node.hash {
                    emit(hash, out);
                }
                continue;
            };
            let (level, next) = split_level(rest);
            // Topics starting with `$` are not matched by a leading wildcard (§4.7.2).
            if !(first && level.starts_with('$')) {
                if let Some(hash) = &node.hash {
                    emit(hash, out);
                }
                if let Some(plus) = &node.plus {
                    stack.push(Frame {
                        node: plus,
                        rest: next,
                        first: false,
                    });
                }
            }
            if let Some(child) = node.children.get(level) {
                stack.push(Frame {
                    node: child,
                    rest: next,
                    first: false,
                });
            }
        }
        drop(root);

        if sources > 1 {
            merge_duplicates(out, base);
        }
    }

    /// Picks a member of shared group `group` other than `exclude_id` (round-robin, online
    /// members first). Used to redeliver messages that a member received through the group
    /// but left unacknowledged when it disconnected. `None` if no other member exists.
    pub fn pick_shared_member(&self, group: &SharedGroupKey, exclude_id: u64) -> Option<Route<K>> {
        let (name, filter) = group.split_once('/')?;
        let root = self.root.read();
        let group = root
            .descend(filter)?
            .shared
            .iter()
            .find(|g| g.name() == name)?;
        let member = group.pick(|m| m.subscriber.id() == exclude_id)?;
        Some(member.route(Some(group.key.clone())))
    }

    /// Number of subscriptions of every kind (normal, exclusive, shared memberships), for the
    /// subscriptions gauge. Lock-free.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// Number of shared-subscription memberships (a subset of
    /// [`subscription_count`](Self::subscription_count)), for the shared-subscriptions gauge.
    pub fn shared_subscription_count(&self) -> usize {
        self.shared_subscriptions.load(Ordering::Relaxed)
    }

    /// Trie nodes currently allocated, root included; lets tests check that unsubscribing
    /// frees the branches it emptied.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.root.read().count_nodes()
    }
}

/// Removes `subscriber_id` from group `group` at `node`, and the group if it became empty.
fn remove_shared_member<K: Subscriber>(
    node: &mut Node<K>,
    group: &str,
    subscriber_id: u64,
) -> bool {
    let Some(index) = node.shared.iter().position(|g| g.name() == group) else {
        return false;
    };
    let members = &mut node.shared[index].members;
    let Some(position) = members
        .iter()
        .position(|m| m.subscriber.id() == subscriber_id)
    else {
        return false;
    };
    members.remove(position);
    if members.is_empty() {
        node.shared.swap_remove(index);
    }
    true
}

/// Merges the non-shared routes in `out[base..]` that go to the same subscriber into one
/// (highest QoS, union of identifiers, any Retain As Published). Shared routes are left alone.
///
/// In place: sorts the tail by (shared?, subscriber id) and compacts it, so the only
/// allocation is when two routes both carry identifiers.
fn merge_duplicates<K: Subscriber>(out: &mut Vec<Route<K>>, base: usize) {
    let tail = &mut out[base..];
    tail.sort_unstable_by_key(|r| (r.shared_group.is_some(), r.subscriber.id()));
    let mut kept = 0;
    for next in 1..tail.len() {
        let (head, rest) = tail.split_at_mut(next);
        let last = &mut head[kept];
        let candidate = &mut rest[0];
        let duplicate = last.shared_group.is_none()
            && candidate.shared_group.is_none()
            && last.subscriber.id() == candidate.subscriber.id();
        if duplicate {
            last.qos = last.qos.max(candidate.qos);
            last.retain_as_published |= candidate.retain_as_published;
            if last.subscription_ids.is_empty() {
                std::mem::swap(&mut last.subscription_ids, &mut candidate.subscription_ids);
            } else if !candidate.subscription_ids.is_empty() {
                last.subscription_ids
                    .extend_from_slice(&candidate.subscription_ids);
                last.subscription_ids.sort_unstable();
                last.subscription_ids.dedup();
            }
        } else {
            kept += 1;
            tail.swap(kept, next);
        }
    }
    let len = if tail.is_empty() { 0 } else { kept + 1 };
    out.truncate(base + len);
}
