//! Access control: what an authenticated client may publish and subscribe to.

mod policy;

pub use policy::{AclPolicy, AclRule, Action, Effect, Principal};
