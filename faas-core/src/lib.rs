//! The core of **faas**: the domain model, the five seams and the pure building blocks of an
//! OpenWhisk-compatible Function-as-a-Service platform.
//!
//! # Highlights
//!
//! * OpenWhisk's entities, activation records and bus messages with its exact JSON shapes
//!   ([`entity`], [`activation`], [`message`]), names validated by its rules ([`names`]) and its
//!   limits and messages ([`limits`]).
//! * One error type, [`Error`], that maps onto OpenWhisk's HTTP errors.
//! * Five object-safe traits, each with its contract in its documentation: [`Store`],
//!   [`MessageBus`], [`Executor`], [`Scheduler`], [`Authenticator`].
//! * Pure implementations: OpenWhisk's sharding scheduler ([`sharding::ShardingScheduler`]) and
//!   the store-backed Basic authenticator ([`auth::StoreAuthenticator`]).
//! * `testkit` (feature): one conformance suite per trait, so that any adapter, ours or
//!   yours, proves it keeps the contract.
//!
//! # Available implementations
//!
//! | trait | crate | adapters (URL scheme in `faas-platform`) |
//! |---|---|---|
//! | `Store` | `faas-store` | in-memory (`memory:`), SQLite (`sqlite:`, feature `sqlite`), CouchDB (`couchdb://`, feature `couchdb`); the read cache `CachedStore` wraps any of them |
//! | `MessageBus` | `faas-bus` | in-process (`inproc:`; journaled with feature `journal`), Kafka (`kafka://`, feature `kafka`) |
//! | `Executor` | `faas-exec` | sandboxed local processes (`process:`), Docker (`docker:`, feature `docker`) |
//! | `Scheduler` | `faas-core` | sharding (OpenWhisk's) |
//! | `Authenticator` | `faas-core` | Basic over the store |
//!
//! Adapters are chosen at run time by URL scheme through the factories of [`registry`];
//! `faas-platform` registers the ones above and assembles a platform from them (or from yours).
//!
//! # Example
//!
//! The model validates by OpenWhisk's rules, and every refusal is an [`Error`] that carries
//! the HTTP status OpenWhisk answers with:
//!
//! ```
//! use faas_core::{ActivationId, EntityName, EntityPath, Error, FullyQualifiedName};
//!
//! let fqn = FullyQualifiedName::new(EntityPath::new("guest/utils")?, EntityName::new("hello")?);
//! assert_eq!(fqn.to_string(), "guest/utils/hello");
//!
//! let refused = EntityName::new("no spaces at the end ").unwrap_err();
//! assert_eq!(refused.status(), 400);
//! assert_eq!(Error::not_found("guest/hello").status(), 404);
//!
//! // Activation ids are 32 lower-case hex digits, as OpenWhisk's.
//! let id = ActivationId::generate();
//! assert_eq!(id.to_string().len(), 32);
//! # Ok::<(), Error>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | what |
//! |---|---|
//! | `testkit` | the conformance suites ([`testkit`]) |
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod activation;
pub mod auth;
pub mod bus;
pub mod entity;
mod error;
pub mod events;
pub mod executor;
pub mod identity;
pub mod limits;
pub mod lockfile;
pub mod message;
pub mod metrics;
pub mod names;
pub mod params;
pub mod registry;
pub mod runtimes;
pub mod scheduler;
pub mod sharding;
pub mod store;
pub mod time;
pub mod trace;

#[cfg(any(feature = "testkit", test))]
pub mod testkit;

pub use activation::{Activation, ActivationId, ActivationResponse, StatusCode};
pub use auth::{Authenticator, DynAuthenticator, StoreAuthenticator};
pub use bus::{BusCapabilities, Consumer, Delivery, DynBus, MessageBus, Published, TopicConfig};
pub use entity::{Action, Entity, EntityKind, Exec};
pub use error::{BoxError, Chain, Error, Result};
pub use executor::{Container, ContainerSpec, DynExecutor, Executor, ProxyError, ProxyResponse};
pub use identity::{AuthKey, Identity, Subject};
pub use limits::{ActionLimits, SystemLimits, UserLimits};
pub use message::{Acknowledgement, ActivationMessage, InvokerInstanceId, PingMessage};
pub use names::{EntityName, EntityPath, FullyQualifiedName};
pub use params::{Parameters, SemVer};
pub use runtimes::{RuntimeManifest, RuntimeSpec};
pub use scheduler::{DynScheduler, InvokerState, Scheduler};
pub use store::{DynStore, Revision, Store, StoreExt, Versioned};
