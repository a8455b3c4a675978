//! Retained messages: the last retained PUBLISH of every topic, handed to new subscribers.
//!
//! Stored in a trie keyed by topic level so that a SUBSCRIBE only visits the part of the tree
//! its filter can reach: a filter without wildcards is a single path lookup, `a/+/c` visits the
//! children of `a`, and only `#` visits a whole subtree.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use super::trie::{self, PathNode};
use crate::protocol::topic::{levels, split_level, validate_topic_filter};

/// The retained message of every topic that has one.
///
/// Exists once per broker; publishers write it (`set`) and subscribers read it (`matching`),
/// so it has its own lock and does not contend with the subscription router. Generic over the
/// message type so it stores whatever the broker shares between deliveries (an
/// `Arc<Message>`); `M` should be cheap to clone.
pub struct RetainedStore<M: Clone> {
    root: RwLock<RetainedNode<M>>,
    /// Number of stored messages, readable without the lock for the metrics gauge.
    len: AtomicUsize,
}

/// One topic level.
struct RetainedNode<M> {
    children: HashMap<Box<str>, RetainedNode<M>>,
    message: Option<M>,
}

impl<M> Default for RetainedNode<M> {
    fn default() -> Self {
        RetainedNode {
            children: HashMap::new(),
            message: None,
        }
    }
}

impl<M> PathNode for RetainedNode<M> {
    fn child(&self, level: &str) -> Option<&Self> {
        self.children.get(level)
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Self> {
        self.children.get_mut(level)
    }

    fn remove_child(&mut self, level: &str) {
        self.children.remove(level);
        trie::maybe_shrink(&mut self.children);
    }

    fn has_payload(&self) -> bool {
        self.message.is_some()
    }

    fn child_count(&self) -> usize {
        self.children.len()
    }
}

impl<M> Drop for RetainedNode<M> {
    /// Iterative teardown: topic names can have tens of thousands of levels.
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        let mut stack: Vec<RetainedNode<M>> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain().map(|(_, n)| n));
        }
    }
}

impl<M: Clone> Default for RetainedStore<M> {
    fn default() -> Self {
        RetainedStore::new()
    }
}

impl<M: Clone> fmt::Debug for RetainedStore<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainedStore")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<M: Clone> RetainedStore<M> {
    /// An empty store; the broker creates one at start-up.
    pub fn new() -> Self {
        RetainedStore {
            root: RwLock::new(RetainedNode::default()),
            len: AtomicUsize::new(0),
        }
    }

    /// Stores `message` as the retained message of `topic` (a topic name, no wildcards),
    /// replacing the previous one; `None` clears it (a retained PUBLISH with an empty payload).
    /// Clearing removes the trie nodes left empty.
    pub fn set(&self, topic: &str, message: Option<M>) {
        let mut root = self.root.write();
        match message {
            Some(message) => {
                let mut node = &mut *root;
                for level in levels(topic) {
                    if !node.children.contains_key(level) {
                        node.children.insert(level.into(), RetainedNode::default());
                    }
                    node = node.children.get_mut(level).expect("inserted above");
                }
                if node.message.replace(message).is_none() {
                    self.len.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                let removed = root.descend_mut(topic).and_then(|node| node.message.take());
                if removed.is_some() {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    trie::prune(&mut *root, topic);
                }
            }
        }
    }

    /// The retained message of exactly `topic`, if any.
    pub fn get(&self, topic: &str) -> Option<M> {
        self.root.read().descend(topic)?.message.clone()
    }

    /// Appends to `out` every retained message whose topic matches `filter`, in no particular
    /// order, for replay to a new subscription.
    ///
    /// `filter` is a plain topic filter: callers strip `$exclusive/` and do not replay for
    /// `$share/` subscriptions. An invalid filter matches nothing. Wildcards at the first level
    /// do not match topics starting with `$` (§4.7.2).
    pub fn matching(&self, filter: &str, out: &mut Vec<M>) {
        if validate_topic_filter(filter).is_err() {
            return;
        }
        let root = self.root.read();
        // (node, remaining filter levels, whether they start at the first level)
        let mut stack: Vec<(&RetainedNode<M>, Option<&str>, bool)> =
            vec![(&root, Some(filter), true)];
        while let Some((node, rest, first)) = stack.pop() {
            let Some(rest) = rest else {
                out.extend(node.message.iter().cloned());
                continue;
            };
            let (level, next) = split_level(rest);
            match level {
                "#" => {
                    // The parent level itself ("sport/#" matches "sport"), then everything
                    // below.
                    out.extend(node.message.iter().cloned());
                    let mut subtree: Vec<&RetainedNode<M>> = node
                        .children
                        .iter()
                        .filter(|(name, _)| !(first && name.starts_with('$')))
                        .map(|(_, child)| child)
                        .collect();
                    while let Some(node) = subtree.pop() {
                        out.extend(node.message.iter().cloned());
                        subtree.extend(node.children.values());
                    }
                }
                "+" => {
                    for (name, child) in &node.children {
                        if !(first && name.starts_with('$')) {
                            stack.push((child, next, false));
                        }
                    }
                }
                _ => {
                    if let Some(child) = node.children.get(level) {
                        stack.push((child, next, false));
                    }
                }
            }
        }
    }

    /// Number of retained messages, for the metrics gauge. Lock-free.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no message is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Trie nodes currently allocated, root included; lets tests check that clearing frees
    /// the branches it emptied.
    #[cfg(test)]
    pub(super) fn node_count(&self) -> usize {
        let root = self.root.read();
        let mut count = 0;
        let mut stack = vec![&*root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
        }
        count
    }
}
