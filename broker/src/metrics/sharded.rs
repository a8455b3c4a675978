//! Counters and gauges that every worker thread updates on every message, kept in per-thread
//! cache lines and summed when Prometheus scrapes.
//!
//! A plain atomic counter is one instruction, but when two cores add to it for every message
//! the cache line holding it travels between them on each add, and the broker spends more
//! time on its bookkeeping than the counting suggests. Here a family's series are laid out
//! once per shard, each shard on its own cache lines, and a thread always adds to the shard
//! it was given the first time it counted: the hot path touches only lines its own core holds.
//! Reading a value adds the shards up, so a scrape is always exact.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

/// Shards per family: threads beyond this many share shards (still exact, merely contended).
const SHARDS: usize = 16;

/// Series a family can hold (the widest is one per MQTT packet type).
pub const MAX_SERIES: usize = 16;

/// One thread's values of every series of a family, on cache lines of its own.
#[repr(align(128))]
struct Shard([AtomicI64; MAX_SERIES]);

/// The next shard handed to a thread that counts for the first time.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard index, `usize::MAX` until it first counts.
    static THREAD_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's shard.
fn thread_shard() -> usize {
    THREAD_SHARD.with(|shard| {
        let mut index = shard.get();
        if index == usize::MAX {
            index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            shard.set(index);
        }
        index
    })
}

/// Whether a family is exported as a counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (names end in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

struct Family {
    desc: Desc,
    kind: Kind,
    /// Label pairs of each series, sorted by label name as Prometheus expects.
    labels: Vec<Vec<LabelPair>>,
    shards: Box<[Shard]>,
}

/// A metric family whose series (one per combination of label values, fixed at creation) are
/// updated through [`Series`] handles. Register it once; clones share the values.
#[derive(Clone)]
pub struct ShardedFamily(Arc<Family>);

impl ShardedFamily {
    /// A family `name` with the label names `label_names` and one series per entry of
    /// `series` (its label values, in `label_names` order). No labels: one series, `&[&[]]`.
    pub fn new(
        kind: Kind,
        name: &str,
        help: &str,
        label_names: &[&str],
        series: &[&[&str]],
    ) -> prometheus::Result<ShardedFamily> {
        if series.len() > MAX_SERIES {
            return Err(prometheus::Error::Msg(format!(
                "{name}: {} series, at most {MAX_SERIES}",
                series.len()
            )));
        }
        let desc = Desc::new(
            name.to_owned(),
            help.to_owned(),
            label_names.iter().map(|label| label.to_string()).collect(),
            HashMap::new(),
        )?;
        let mut labels = Vec::with_capacity(series.len());
        for values in series {
            if values.len() != label_names.len() {
                return Err(prometheus::Error::InconsistentCardinality {
                    expect: label_names.len(),
                    got: values.len(),
                });
            }
            let mut pairs: Vec<LabelPair> = label_names
                .iter()
                .zip(values.iter())
                .map(|(name, value)| {
                    let mut pair = LabelPair::default();
                    pair.set_name(name.to_string());
                    pair.set_value(value.to_string());
                    pair
                })
                .collect();
            pairs.sort_by(|a, b| a.name().cmp(b.name()));
            labels.push(pairs);
        }
        let shards = (0..SHARDS)
            .map(|_| Shard(std::array::from_fn(|_| AtomicI64::new(0))))
            .collect();
        Ok(ShardedFamily(Arc::new(Family {
            desc,
            kind,
            labels,
            shards,
        })))
    }

    /// The handle of the `index`-th series given to [`ShardedFamily::new`].
    ///
    /// # Panics
    /// If there is no such series (a programming error: the series are constants).
    pub fn series(&self, index: usize) -> Series {
        assert!(index < self.0.labels.len(), "no series {index}");
        Series {
            family: Arc::clone(&self.0),
            index,
        }
    }
}

impl Collector for ShardedFamily {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.0.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let family = &self.0;
        let metrics = family
            .labels
            .iter()
            .enumerate()
            .map(|(index, labels)| {
                let value = family.sum(index) as f64;
                let mut metric = proto::Metric::from_label(labels.clone());
                match family.kind {
                    Kind::Counter => {
                        let mut counter = proto::Counter::default();
                        counter.set_value(value);
                        metric.set_counter(counter);
                    }
                    Kind::Gauge => {
                        let mut gauge = proto::Gauge::default();
                        gauge.set_value(value);
                        metric.set_gauge(gauge);
                    }
                }
                metric
            })
            .collect();
        let mut out = MetricFamily::default();
        out.set_name(family.desc.fq_name.clone());
        out.set_help(family.desc.help.clone());
        out.set_field_type(match family.kind {
            Kind::Counter => MetricType::COUNTER,
            Kind::Gauge => MetricType::GAUGE,
        });
        out.set_metric(metrics);
        vec![out]
    }
}

impl Family {
    fn sum(&self, index: usize) -> i64 {
        self.shards
            .iter()
            .map(|shard| shard.0[index].load(Ordering::Relaxed))
            .sum()
    }
}

/// One series of a [`ShardedFamily`]: the handle the hot path counts with.
#[derive(Clone)]
pub struct Series {
    family: Arc<Family>,
    index: usize,
}

impl Series {
    /// Adds `delta` (negative to subtract; counters only ever get positive deltas).
    pub fn add(&self, delta: i64) {
        self.family.shards[thread_shard()].0[self.index].fetch_add(delta, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `count`, for counters.
    pub fn inc_by(&self, count: u64) {
        self.add(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Subtracts one, for gauges.
    pub fn dec(&self) {
        self.add(-1);
    }

    /// Subtracts `delta`, for gauges.
    pub fn sub(&self, delta: i64) {
        self.add(-delta);
    }

    /// The current value: the sum over every thread's shard.
    pub fn get(&self) -> i64 {
        self.family.sum(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_from_many_threads_sum_exactly() {
        let family =
            ShardedFamily::new(Kind::Counter, "t_total", "help", &["k"], &[&["a"], &["b"]])
                .unwrap();
        let a = family.series(0);
        std::thread::scope(|scope| {
            for _ in 0..(SHARDS + 4) {
                let a = a.clone();
                scope.spawn(move || (0..1000).for_each(|_| a.inc()));
            }
        });
        assert_eq!(a.get(), (SHARDS as i64 + 4) * 1000);
        assert_eq!(family.series(1).get(), 0);
    }

    #[test]
    fn a_family_renders_in_the_text_format() {
        let family = ShardedFamily::new(
            Kind::Gauge,
            "t_gauge",
            "A gauge.",
            &["z", "a"],
            &[&["1", "2"]],
        )
        .unwrap();
        family.series(0).add(5);
        family.series(0).dec();
        let registry = prometheus::Registry::new();
        registry.register(Box::new(family)).unwrap();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(text.contains("# TYPE t_gauge gauge"), "{text}");
        assert!(text.contains("t_gauge{a=\"2\",z=\"1\"} 4"), "{text}");
    }

    #[test]
    fn too_many_series_or_wrong_label_counts_are_refused() {
        let many: Vec<[&str; 1]> = vec![["x"]; MAX_SERIES + 1];
        let many: Vec<&[&str]> = many.iter().map(|v| &v[..]).collect();
        assert!(ShardedFamily::new(Kind::Counter, "t_total", "h", &["k"], &many).is_err());
        assert!(ShardedFamily::new(Kind::Counter, "t_total", "h", &["k"], &[&[]]).is_err());
    }
}
