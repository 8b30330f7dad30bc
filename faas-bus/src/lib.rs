//! [`MessageBus`](faas_core::MessageBus) adapters for **faas**.
//!
//! | adapter | module | built | durable | ordered per key |
//! |---|---|---|---|---|
//! | in-process | [`inproc`] | always | no | yes |
//! | in-process with a journal (SQLite) | [`inproc`] (`inproc:?journal=PATH`) | feature `journal` | yes (survives a crash of the process) | yes |
//! | Kafka (rdkafka, bundled librdkafka) | `kafka` | feature `kafka` | yes | yes |
//!
//! The in-process bus has the semantics a Kafka adapter offers — topics with partitions,
//! consumer groups, explicit commits, redelivery of what a dropped member left uncommitted —
//! so that code written against it behaves the same on a cluster. Every adapter here passes
//! the conformance suite [`faas_core::bus_conformance!`].
//!
//! The Kafka adapter (`kafka::KafkaBus`, feature `kafka`) talks to any broker that speaks the
//! Kafka protocol; the project's tests run it against tansu (`scripts/services/kafka.sh`).
//! Building it compiles the librdkafka that the `rdkafka` crate bundles (needs a C compiler
//! and `make`).
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> faas_core::Result<()> {
//! use bytes::Bytes;
//! use faas_bus::InProcessBus;
//! use faas_core::{MessageBus, TopicConfig};
//!
//! let bus = InProcessBus::new();
//! bus.create_topic("invoker0", &TopicConfig::default()).await?;
//! let consumer = bus.subscribe("invoker0", "invoker0").await?;
//!
//! bus.publish("invoker0", Some(b"guest/hello"), Bytes::from_static(b"{\"n\":1}")).await?;
//! let delivery = consumer.recv().await?;
//! assert_eq!(delivery.topic, "invoker0");
//! assert_eq!(delivery.key.as_deref(), Some(&b"guest/hello"[..]));
//! assert_eq!(delivery.payload, Bytes::from_static(b"{\"n\":1}"));
//!
//! // Acknowledge once the work is done; an uncommitted message goes to the next member of
//! // the group if this one is dropped.
//! consumer.commit(&delivery).await?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod inproc;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;

pub use inproc::InProcessBus;
#[cfg(feature = "kafka")]
pub use kafka::KafkaBus;
