//! Tern's MQTT broker as a library: the `tern-broker` binary is a thin wrapper around it, and the
//! end-to-end tests and the operator use its types directly.
//!
//! Reading order, following one PUBLISH from socket to subscriber: [`listener`] accepts,
//! [`connection`] decodes with [`protocol`] and hands the message to [`broker`], which asks the
//! [`router`] who is subscribed and queues a [`message::Delivery`] in each [`session`]; the
//! subscriber's connection drains its session onto its socket.

pub mod acl;
pub mod auth;
pub mod broker;
pub mod config;
pub mod connection;
pub mod credential_expiry;
pub mod enforce;
pub mod http;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod protocol;
pub mod reload;
pub mod router;
pub mod server;
pub mod session;
pub mod sys;
pub mod tls;
