//! An application message as the broker keeps it between publisher and subscribers.
//!
//! A PUBLISH is decoded once into a [`Message`] behind an `Arc`; every subscriber's queue holds a
//! [`Delivery`] that points at it plus the few fields that differ per subscriber (granted QoS,
//! retain flag, subscription identifiers). The payload is never copied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;

use crate::protocol::{Publish, PublishProperties, QoS};
use crate::router::SharedGroupKey;

/// A message as published, shared by all its deliveries.
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic name (never an alias).
    pub topic: ByteString,
    /// Application payload.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// Retain flag it was published with.
    pub retain: bool,
    /// 5.0 properties to forward: never a topic alias or subscription identifiers, which are
    /// per connection / per subscriber.
    pub properties: PublishProperties,
    /// When the Message Expiry Interval runs out, if one was set.
    pub expires_at: Option<Instant>,
    /// When the broker read it, for the delivery-latency histogram.
    pub received_at: Instant,
    /// Session id of the publisher (0 for the broker itself), for No Local.
    pub publisher: u64,
}

impl Message {
    /// Turns a received PUBLISH (topic alias already resolved) into a message.
    pub fn from_publish(publish: Publish, publisher: u64, now: Instant) -> Message {
        let mut properties = publish.properties;
        properties.topic_alias = None;
        properties.subscription_identifiers = Vec::new();
        let expires_at = properties
            .message_expiry_interval
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            received_at: now,
            publisher,
        }
    }

    /// A message the broker itself publishes (`$SYS`, wills are built from their CONNECT).
    pub fn from_broker(topic: ByteString, payload: Bytes, retain: bool) -> Message {
        Message {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain,
            properties: PublishProperties::default(),
            expires_at: None,
            received_at: Instant::now(),
            publisher: 0,
        }
    }

    /// Whether the Message Expiry Interval has run out.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The expiry interval to forward: what is left of the original, rounded up so an unexpired
    /// message never goes out with 0.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
        })
    }
}

/// One message on its way to one subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// min(published QoS, granted QoS).
    pub qos: QoS,
    /// RETAIN flag to send: set for retained replays, or kept by Retain As Published.
    pub retain: bool,
    /// Identifiers of the subscriptions that matched (5.0).
    pub subscription_ids: Vec<u32>,
    /// Set when delivered through a shared subscription, so an unacknowledged message can be
    /// handed to another member if this subscriber goes away.
    pub shared_group: Option<SharedGroupKey>,
}
