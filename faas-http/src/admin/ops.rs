//! The operators' operations over a [`Store`], as `wskadmin` performs them (OpenWhisk's
//! `tools/admin/.../UserCommand.scala` and `LimitsCommand.scala`), with its messages.
//!
//! HTTP-free: the admin routes call these and turn the results into JSON. Every change is one
//! write of one document (a subject record or a namespace's limits), read and written back at
//! the revision just read, so a change is applied whole or not at all and concurrent edits
//! are never lost: a write that meets another writer's revision starts over from a fresh
//! read (a few times, then 409).

use std::sync::Arc;

use http::StatusCode;

use faas_core::identity::{AuthKey, NamespaceKey, Subject};
use faas_core::limits::UserLimits;
use faas_core::names::EntityName;
use faas_core::{Error, Store};

use crate::error::ApiError;

/// `wskadmin`'s messages (`CommandMessages.scala`), and ours for what it does not check.
pub mod messages {
    /// Creating a key for a namespace the subject owns already (without `revoke`/`force`).
    pub const NAMESPACE_EXISTS: &str = "Namespace already exists";
    /// Changing a blocked subject's namespaces.
    pub const SUBJECT_BLOCKED: &str = "The subject you want to edit is blocked";
    /// Deleting a subject that does not exist.
    pub const SUBJECT_TO_DELETE_MISSING: &str = "Subject to delete not found";
    /// Reading a subject that does not exist (`wskadmin` reuses the delete message).
    pub const SUBJECT_MISSING: &str = "Subject not found";
    /// A namespace entry removed.
    pub const NAMESPACE_DELETED: &str = "Namespace deleted";
    /// A subject removed.
    pub const SUBJECT_DELETED: &str = "Subject deleted";
    /// Limits removed.
    pub const LIMITS_DELETED: &str = "Limits deleted";
    /// `limits get` without a limits document.
    pub const DEFAULT_LIMITS: &str = "No limits found, default system limits apply";
    /// `whois` with a key nobody (unblocked) holds (Python `wskadmin`).
    pub const KEY_UNKNOWN: &str = "Subject id is not recognized";
    /// A key given with `--auth` that another namespace entry holds already.
    pub const KEY_IN_USE: &str = "authorization key is already in use";
    /// Every retry met another writer.
    pub const CONCURRENT: &str =
        "The subject was changed by someone else at the same time; try again";
    /// `limits set` without any limit.
    pub const NO_LIMITS_GIVEN: &str = "Give at least one limit to set";

    /// Reading or removing a namespace a subject does not own.
    pub fn namespace_missing_for(ns: &str, subject: &str) -> String {
        format!("Namespace '{ns}' does not exist for '{subject}'")
    }
    /// `user list` of a namespace without (unblocked) owners.
    pub fn no_identities(ns: &str) -> String {
        format!("no identities found for namespace '{ns}'")
    }
    /// Blocking or unblocking a subject that does not exist.
    pub fn subject_missing(subject: &str) -> String {
        format!("'{subject}' missing")
    }
    /// A subject blocked.
    pub fn blocked(subject: &str) -> String {
        format!("'{subject}' blocked successfully")
    }
    /// A subject unblocked.
    pub fn unblocked(subject: &str) -> String {
        format!("'{subject}' unblocked successfully")
    }
    /// Limits written where there were none.
    pub fn limits_set(ns: &str) -> String {
        format!("Limits successfully set for '{ns}'")
    }
    /// Limits written over existing ones.
    pub fn limits_updated(ns: &str) -> String {
        format!("Limits successfully updated for '{ns}'")
    }
    /// Deleting limits that do not exist.
    pub fn limits_not_found(ns: &str) -> String {
        format!("Limits not found for '{ns}'")
    }
    /// A namespace with neither an owner nor limits.
    pub fn namespace_unknown(ns: &str) -> String {
        format!("Namespace '{ns}' does not exist")
    }
}

/// The largest value of a numeric namespace limit (OpenWhisk reads them as 32-bit `Int`s).
pub const MAX_LIMIT: u32 = i32::MAX as u32;

/// How many times a read-change-write starts over after meeting another writer.
const ATTEMPTS: usize = 5;

/// What `user create` asks for.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CreateUser {
    /// The namespace to create a key for (default: the subject's name).
    pub namespace: Option<String>,
    /// The key to use (`uuid:key`, checked by OpenWhisk's rules); default: a new random one.
    pub auth: Option<String>,
    /// For a namespace the subject owns already: a new secret (same uuid), or `auth`.
    pub revoke: bool,
    /// For a namespace the subject owns already: replace its key with `auth` or a new one.
    pub force: bool,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("namespace", &self.namespace)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("revoke", &self.revoke)
            .field("force", &self.force)
            .finish()
    }
}

/// The key `user create` made or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The subject.
    pub subject: String,
    /// The namespace.
    pub namespace: EntityName,
    /// Its key.
    pub key: AuthKey,
    /// Whether the subject record was created (not only given a namespace or a new key).
    pub new_subject: bool,
}

/// A change of a namespace's limits: for each limit, `None` leaves it as it is,
/// `Some(None)` removes it (the system value applies), `Some(Some(v))` sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(clippy::option_option)]
pub struct LimitsChange {
    /// Invocations per minute.
    pub invocations_per_minute: Option<Option<i64>>,
    /// Concurrent invocations.
    pub concurrent_invocations: Option<Option<i64>>,
    /// Trigger fires per minute.
    pub fires_per_minute: Option<Option<i64>>,
    /// Kinds the namespace may use.
    pub allowed_kinds: Option<Option<Vec<String>>>,
    /// Whether activation records are stored.
    pub store_activations: Option<Option<bool>>,
}

impl LimitsChange {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `base` with this change applied, every value checked.
    fn apply(&self, mut base: UserLimits) -> Result<UserLimits, ApiError> {
        fn count(
            name: &str,
            v: Option<Option<i64>>,
            slot: &mut Option<u32>,
        ) -> Result<(), ApiError> {
            match v {
                None => {}
                Some(None) => *slot = None,
                Some(Some(n)) => {
                    let n = u32::try_from(n)
                        .ok()
                        .filter(|n| *n <= MAX_LIMIT)
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "{name} must be between 0 and {MAX_LIMIT}, not {n}"
                            ))
                        })?;
                    *slot = Some(n);
                }
            }
            Ok(())
        }
        count(
            "invocationsPerMinute",
            self.invocations_per_minute,
            &mut base.invocations_per_minute,
        )?;
        count(
            "concurrentInvocations",
            self.concurrent_invocations,
            &mut base.concurrent_invocations,
        )?;
        count(
            "firesPerMinute",
            self.fires_per_minute,
            &mut base.fires_per_minute,
        )?;
        if let Some(kinds) = &self.allowed_kinds {
            if let Some(kinds) = kinds {
                check_kinds(kinds)?;
            }
            base.allowed_kinds = kinds.clone();
        }
        if let Some(s) = self.store_activations {
            base.store_activations = s;
        }
        Ok(base)
    }
}

/// Kinds are names such as `nodejs:20` or `blackbox`: 1 to 256 visible characters without
/// commas; at most 256 of them.
fn check_kinds(kinds: &[String]) -> Result<(), ApiError> {
    if kinds.len() > 256 {
        return Err(ApiError::bad_request(
            "allowedKinds lists more than 256 kinds",
        ));
    }
    for k in kinds {
        if k.is_empty() || k.len() > 256 || !k.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(ApiError::bad_request(format!(
                "allowedKinds: '{k}' is not a runtime kind (1 to 256 visible characters, no commas)"
            )));
        }
    }
    Ok(())
}

/// A namespace name from a request: OpenWhisk's entity-name rules.
fn namespace_name(ns: &str) -> Result<EntityName, ApiError> {
    EntityName::new(ns)
        .map_err(|e| ApiError::bad_request(format!("'{ns}' is not a valid namespace name: {e}")))
}

fn conflict(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, message)
}

fn not_found(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, message)
}

/// Whether a write met another writer (start over from a fresh read).
fn raced(e: &Error) -> bool {
    matches!(e, Error::Conflict { .. } | Error::AlreadyExists { .. })
}

/// The operators' operations over one store; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Admin {
    store: Arc<dyn Store>,
}

impl Admin {
    /// Operations on `store` (the controller's store, so that its cache sees the writes).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// `user create`: gives `subject` a key for a namespace, creating the subject if needed.
    pub async fn create_user(&self, subject: &str, req: &CreateUser) -> Result<Created, ApiError> {
        Subject::check_name(subject).map_err(ApiError::from)?;
        let ns_text = req.namespace.as_deref().unwrap_or(subject);
        let ns = namespace_name(ns_text)?;
        let given = match &req.auth {
            Some(a) => Some(AuthKey::parse_strict(a).map_err(ApiError::from)?),
            None => None,
        };
        if let Some(k) = &given {
            // One key, one namespace entry: otherwise a request's identity would be ambiguous.
            match self.store.find_identity(k).await {
                Ok(i) if !(i.subject == subject && i.namespace.name == ns) => {
                    return Err(conflict(messages::KEY_IN_USE));
                }
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for _ in 0..ATTEMPTS {
            let current = match self.store.get_subject(subject).await {
                Ok(v) => Some(v),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let Some(current) = current else {
                let key = given.clone().unwrap_or_else(AuthKey::generate);
                let record = Subject {
                    subject: subject.to_string(),
                    ..Subject::single(ns.clone(), &key)
                };
                match self.store.put_subject(&record, None).await {
                    Ok(_) => {
                        tracing::info!(subject, namespace = %ns, "admin: subject created");
                        return Ok(Created {
                            subject: subject.to_string(),
                            namespace: ns,
                            key,
                            new_subject: true,
                        });
                    }
                    Err(e) if raced(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let mut record = current.value;
            if record.blocked {
                return Err(conflict(messages::SUBJECT_BLOCKED));
            }
            let key = match record.namespace(&ns) {
                None => given.clone().unwrap_or_else(AuthKey::generate),
                Some(_) if req.force => given.clone().unwrap_or_else(AuthKey::generate),
                Some(old) if req.revoke => given.clone().unwrap_or_else(|| AuthKey {
                    uuid: old.uuid.clone(),
                    key: AuthKey::generate().key,
                }),
                Some(_) => return Err(conflict(messages::NAMESPACE_EXISTS)),
            };
            record.namespaces.retain(|n| n.name != ns);
            record.namespaces.push(NamespaceKey {
                name: ns.clone(),
                uuid: key.uuid.clone(),
                key: key.key.clone(),
            });
            match self.store.put_subject(&record, Some(&current.rev)).await {
                Ok(_) => {
                    tracing::info!(subject, namespace = %ns, "admin: namespace key written");
                    return Ok(Created {
                        subject: subject.to_string(),
                        namespace: ns,
                        key,
                        new_subject: false,
                    });
                }
                Err(e) if raced(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(messages::CONCURRENT))
    }

    /// `user get`: the subject record (its namespaces and keys, and whether it is blocked).
    pub async fn get_user(&self, subject: &str) -> Result<Subject, ApiError> {
        match self.store.get_subject(subject).await {
            Ok(v) => Ok(v.value),
            Err(Error::NotFound { .. }) => Err(not_found(messages::SUBJECT_MISSING)),
            Err(e) => Err(e.into()),
        }
    }

    /// `user delete`: the whole subject, or only its entry for `namespace`. Returns
    /// `wskadmin`'s message. Namespace limits stay (as in OpenWhisk).
    pub async fn delete_user(
        &self,
        subject: &str,
        namespace: Option<&str>,
    ) -> Result<&'static str, ApiError> {
        for _ in 0..ATTEMPTS {
            let current = match self.store.get_subject(subject).await {
                Ok(v) => v,
                Err(Error::NotFound { .. }) => {
                    return Err(not_found(messages::SUBJECT_TO_DELETE_MISSING));
                }
                Err(e) => return Err(e.into()),
            };
            let written = match namespace {
                None => self
                    .store
                    .delete_subject(subject, &current.rev)
                    .await
                    .map(|()| messages::SUBJECT_DELETED),
                Some(ns) => {
                    let mut record = current.value;
                    let before = record.namespaces.len();
                    record.namespaces.retain(|n| n.name.as_str() != ns);
                    if record.namespaces.len() == before {
                        return Err(not_found(messages::namespace_missing_for(ns, subject)));
                    }
                    self.store
                        .put_subject(&record, Some(&current.rev))
                        .await
                        .map(|_| messages::NAMESPACE_DELETED)
                }
            };
            match written {
                Ok(m) => {
                    tracing::info!(subject, namespace, "admin: {m}");
                    return Ok(m);
                }
                Err(e) if raced(&e) => continue,
                // Deleted by someone else between our read and our delete.
                Err(Error::NotFound { .. }) => {
                    return Err(not_found(messages::SUBJECT_TO_DELETE_MISSING));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(messages::CONCURRENT))
    }

    /// `user block` / `user unblock` of one subject; returns `wskadmin`'s message.
    pub async fn set_blocked(&self, subject: &str, blocked: bool) -> Result<String, ApiError> {
        for _ in 0..ATTEMPTS {
            let current = match self.store.get_subject(subject).await {
                Ok(v) => v,
                Err(Error::NotFound { .. }) => {
                    return Err(not_found(messages::subject_missing(subject)));
                }
                Err(e) => return Err(e.into()),
            };
            let record = Subject {
                blocked,
                ..current.value
            };
            match self.store.put_subject(&record, Some(&current.rev)).await {
                Ok(_) => {
                    tracing::info!(subject, blocked, "admin: subject state changed");
                    return Ok(if blocked {
                        messages::blocked(subject)
                    } else {
                        messages::unblocked(subject)
                    });
                }
                Err(e) if raced(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(messages::CONCURRENT))
    }

    /// `user whois`: the subject and namespace a key authenticates as.
    pub async fn whois(&self, auth: &str) -> Result<(String, EntityName), ApiError> {
        let key = AuthKey::parse(auth).map_err(ApiError::from)?;
        match self.store.find_identity(&key).await {
            Ok(i) => Ok((i.subject, i.namespace.name)),
            Err(Error::NotFound { .. }) => Err(not_found(messages::KEY_UNKNOWN)),
            Err(e) => Err(e.into()),
        }
    }

    /// `user list`: the keys of the unblocked owners of `namespace`, as OpenWhisk's
    /// identities view lists them, by subject name.
    pub async fn identities(&self, namespace: &str) -> Result<Vec<(String, AuthKey)>, ApiError> {
        let ns = namespace_name(namespace)?;
        let owners = self.store.list_subjects(&ns).await?;
        let rows: Vec<(String, AuthKey)> = owners
            .into_iter()
            .filter(|s| !s.blocked)
            .flat_map(|s| {
                s.namespaces
                    .into_iter()
                    .filter(|n| n.name == ns)
                    .map(|n| {
                        (
                            s.subject.clone(),
                            AuthKey {
                                uuid: n.uuid,
                                key: n.key,
                            },
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if rows.is_empty() {
            return Err(not_found(messages::no_identities(namespace)));
        }
        Ok(rows)
    }

    /// `namespace list`: every namespace some subject owns.
    pub async fn namespaces(&self) -> Result<Vec<EntityName>, ApiError> {
        Ok(self.store.list_namespaces().await?)
    }

    /// Whether a namespace is known: some subject owns it, or it has limits.
    async fn known(&self, ns: &EntityName) -> Result<Option<UserLimits>, ApiError> {
        match self.store.get_limits(ns).await {
            Ok(l) => Ok(Some(l)),
            Err(Error::NotFound { .. }) => {
                if self.store.list_subjects(ns).await?.is_empty() {
                    Err(not_found(messages::namespace_unknown(ns.as_str())))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `limits get`: the namespace's limits document, `None` when the system values apply.
    /// A namespace with neither an owner nor limits is 404.
    pub async fn get_limits(&self, namespace: &str) -> Result<Option<UserLimits>, ApiError> {
        let ns = namespace_name(namespace)?;
        self.known(&ns).await
    }

    /// `limits set`: merges `change` into the namespace's limits (creating the document);
    /// returns the limits now stored and whether the document is new. The namespace must be
    /// known (owned by a subject, or with limits already), so that a typo does not set limits
    /// for nobody.
    pub async fn set_limits(
        &self,
        namespace: &str,
        change: &LimitsChange,
    ) -> Result<(UserLimits, bool), ApiError> {
        let ns = namespace_name(namespace)?;
        if change.is_empty() {
            return Err(ApiError::bad_request(messages::NO_LIMITS_GIVEN));
        }
        // Check the values before touching anything.
        change.apply(UserLimits::default())?;
        let old = self.known(&ns).await?;
        let created = old.is_none();
        let limits = change.apply(old.unwrap_or_default())?;
        self.store.put_limits(&ns, &limits).await?;
        tracing::info!(namespace = %ns, ?limits, "admin: limits written");
        Ok((limits, created))
    }

    /// `limits delete`: removes the namespace's limits (the system values apply).
    pub async fn delete_limits(&self, namespace: &str) -> Result<&'static str, ApiError> {
        let ns = namespace_name(namespace)?;
        match self.store.delete_limits(&ns).await {
            Ok(()) => {
                tracing::info!(namespace = %ns, "admin: limits deleted");
                Ok(messages::LIMITS_DELETED)
            }
            Err(Error::NotFound { .. }) => Err(not_found(messages::limits_not_found(namespace))),
            Err(e) => Err(e.into()),
        }
    }
}
