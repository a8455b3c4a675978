//! An application message as the broker keeps it between publisher and subscribers.
//!
//! A PUBLISH is decoded once into a [`Message`] behind an `Arc`; every subscriber's queue holds a
//! [`Delivery`] that points at it plus the few fields that differ per subscriber (granted QoS,
//! retain flag, subscription identifiers). The payload is never copied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::protocol::{LastWill, Publish, PublishProperties, QoS};
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
    ///
    /// Decoded fields are slices of the connection's read buffer; a message can outlive that
    /// buffer by a long time (offline queues, the retained store), and a slice would keep the
    /// whole read chunk alive. So topic and payload are copied once here, into one allocation
    /// of exactly their size — once per message, never per subscriber.
    pub fn from_publish(publish: Publish, publisher: u64, now: Instant) -> Message {
        let (topic, payload) = compact_topic_and_payload(&publish.topic, &publish.payload);
        let mut properties = compact_properties(publish.properties);
        properties.topic_alias = None;
        properties.subscription_identifiers = Vec::new();
        let expires_at = properties
            .message_expiry_interval
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        Message {
            topic,
            payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            received_at: now,
            publisher,
        }
    }

    /// The message a client's will turns into (copied out of the CONNECT's buffer).
    pub fn from_will(will: LastWill, publisher: u64, now: Instant) -> Message {
        let (topic, payload) = compact_topic_and_payload(&will.topic, &will.payload);
        let props = will.properties;
        let properties = compact_properties(PublishProperties {
            payload_format_indicator: props.payload_format_indicator,
            message_expiry_interval: props.message_expiry_interval,
            response_topic: props.response_topic,
            correlation_data: props.correlation_data,
            user_properties: props.user_properties,
            content_type: props.content_type,
            ..PublishProperties::default()
        });
        Message {
            topic,
            payload,
            qos: will.qos,
            retain: will.retain,
            expires_at: properties
                .message_expiry_interval
                .map(|secs| now + Duration::from_secs(u64::from(secs))),
            properties,
            received_at: now,
            publisher,
        }
    }

    /// A message the broker itself publishes (`$SYS`).
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

/// Copies topic and payload into one fresh allocation.
fn compact_topic_and_payload(topic: &ByteString, payload: &Bytes) -> (ByteString, Bytes) {
    let mut buffer = BytesMut::with_capacity(topic.len() + payload.len());
    buffer.put_slice(topic.as_bytes());
    buffer.put_slice(payload);
    let mut payload = buffer.freeze();
    let topic = payload.split_to(topic.len());
    let topic = ByteString::try_from(topic).expect("copied from a valid string");
    (topic, payload)
}

/// A copy of a string that owns exactly its bytes.
pub fn owned_string(text: &ByteString) -> ByteString {
    ByteString::from(&**text)
}

/// Copies the (rarely present) reference-counted properties out of the read buffer.
fn compact_properties(mut properties: PublishProperties) -> PublishProperties {
    let own = |s: &mut Option<ByteString>| {
        if let Some(text) = s {
            *text = owned_string(text);
        }
    };
    own(&mut properties.response_topic);
    own(&mut properties.content_type);
    if let Some(data) = &mut properties.correlation_data {
        *data = Bytes::copy_from_slice(data);
    }
    for (key, value) in &mut properties.user_properties {
        *key = owned_string(key);
        *value = owned_string(value);
    }
    properties
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
