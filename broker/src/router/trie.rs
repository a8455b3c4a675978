//! Plumbing shared by the subscription trie and the retained-message trie: walking a path of
//! topic levels and removing the nodes a removal left empty.
//!
//! Everything here is iterative, never recursive. Topic names and filters may be up to 65,535
//! bytes, i.e. tens of thousands of levels, and both tries are shaped by what clients send, so
//! recursion depth would be attacker-controlled and could overflow a task's stack.

use crate::protocol::topic::{level_count, levels};

/// A trie node addressed by topic-level strings.
pub(super) trait PathNode: Sized {
    /// The child reached by `level`, if any.
    fn child(&self, level: &str) -> Option<&Self>;
    /// The child reached by `level`, mutably.
    fn child_mut(&mut self, level: &str) -> Option<&mut Self>;
    /// Removes (and drops) the child reached by `level`.
    fn remove_child(&mut self, level: &str);
    /// Whether the node itself holds something (subscriptions, a message) and must stay.
    fn has_payload(&self) -> bool;
    /// Number of direct children.
    fn child_count(&self) -> usize;

    /// The node at `path` (levels separated by `/`), without creating anything.
    fn descend(&self, path: &str) -> Option<&Self> {
        levels(path).try_fold(self, |node, level| node.child(level))
    }

    /// The node at `path`, mutably, without creating anything.
    fn descend_mut(&mut self, path: &str) -> Option<&mut Self> {
        let mut node = self;
        for level in levels(path) {
            node = node.child_mut(level)?;
        }
        Some(node)
    }
}

/// After something was removed from the node at `path`, removes that node and every ancestor
/// that is left holding nothing, so tries do not keep dead branches under subscription or
/// retained-topic churn. The root (`root` itself) is never removed.
///
/// Two passes over the path, no allocation: the first finds the deepest ancestor that must stay
/// (it holds a payload or another branch), the second detaches the dead branch below it.
pub(super) fn prune<N: PathNode>(root: &mut N, path: &str) {
    let depth = level_count(path);
    let mut node: &N = root;
    // Depth (0 = root) of the deepest node on the path that must be kept.
    let mut keep = 0;
    for (index, level) in levels(path).enumerate() {
        let Some(child) = node.child(level) else {
            return;
        };
        node = child;
        let at = index + 1;
        if at == depth {
            if node.has_payload() || node.child_count() > 0 {
                return;
            }
        } else if node.has_payload() || node.child_count() > 1 {
            keep = at;
        }
    }
    let mut levels = levels(path);
    let mut node = root;
    for _ in 0..keep {
        let Some(level) = levels.next() else { return };
        let Some(child) = node.child_mut(level) else {
            return;
        };
        node = child;
    }
    if let Some(level) = levels.next() {
        node.remove_child(level);
    }
}

/// Gives memory back from a children map that has shrunk well below its capacity, so a level
/// that once had many children (e.g. one per device) does not hold its peak size forever.
pub(super) fn maybe_shrink<K: std::hash::Hash + Eq, V>(map: &mut std::collections::HashMap<K, V>) {
    if map.capacity() > 32 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}
