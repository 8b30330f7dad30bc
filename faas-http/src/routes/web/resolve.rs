//! Which action a web URL names, and as whom it runs.
//!
//! OpenWhisk's `WebActions.scala` (`verifyWebAction`): the URL's namespace is looked up for an
//! identity (its owner), the action is resolved through its package and binding with the
//! parameters merged, it must carry `web-export: true`, and the owner must be entitled to
//! activate it. The action then runs **as the owner of the URL's namespace**: the owner is
//! throttled, billed and owns the activation record. An action in another namespace's
//! published package is reached through a binding in the URL's namespace (the binding's owner
//! runs it, entitled by the package being published); a package that is private, or anything
//! else that does not resolve, answers exactly as a missing action: `404 The requested
//! resource does not exist.` (OpenWhisk answers 403 for a binding to a private package; here a
//! denied entity is indistinguishable from a missing one).

use faas_core::params::Annotations;
use faas_core::{EntityName, Error, FullyQualifiedName, Identity, Result};

use crate::engine::entitlement::Privilege;
use crate::engine::{Engine, ResolvedAction};

/// The annotation that makes an action a web action.
pub(crate) const WEB_EXPORT: &str = "web-export";
/// The annotation that hands a web action the raw query and body.
pub(crate) const RAW_HTTP: &str = "raw-http";
/// The annotation that lets a web action answer `OPTIONS` itself.
pub(crate) const WEB_CUSTOM_OPTIONS: &str = "web-custom-options";
/// The annotation that protects a web action with credentials or a shared secret.
pub(crate) const REQUIRE_WHISK_AUTH: &str = "require-whisk-auth";
/// The annotation that protects parameters from being overridden by a request.
pub(crate) const FINAL: &str = "final";

/// A web action resolved for a URL: the identity it runs as and the action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebAction {
    /// The owner of the URL's namespace: runs the action, is throttled and billed.
    pub(crate) owner: Identity,
    /// The action, resolved through its package and binding for the owner, with the
    /// inherited parameters merged (read for its annotations, then handed to
    /// [`Engine::invoke_resolved`], which does not resolve it again).
    pub(crate) resolved: ResolvedAction,
}

/// Whether `annotations` hold `key` with the JSON value `true` (OpenWhisk reads the web
/// annotations with `getAs[Boolean]`: the string `"true"` does not count).
pub(crate) fn annotation_is_true(annotations: &Annotations, key: &str) -> bool {
    annotations.get(key) == Some(&serde_json::Value::Bool(true))
}

/// Resolves the web action `fqn` (its root namespace as the URL names it, never `_`): the
/// owner of the namespace, and the action resolved and entitled for that owner.
///
/// # Errors
///
/// `NotFound` when the namespace has no owner, or the action is missing, denied to the
/// owner, not an action or not exported (`web-export: true`); store failures as they are.
pub(crate) async fn resolve_web_action(
    engine: &Engine,
    fqn: &FullyQualifiedName,
) -> Result<WebAction> {
    let missing = || Error::not_found(fqn.doc_id());
    let namespace = EntityName::new(fqn.path.root()).map_err(|_| missing())?;
    let owner = match engine.store().identity_for_namespace(&namespace).await {
        Ok(i) => i,
        Err(Error::NotFound { .. }) => return Err(missing()),
        Err(e) => return Err(e),
    };
    let resolved = match engine
        .resolve_action(&owner, fqn, Privilege::Activate)
        .await
    {
        Ok(r) => r,
        Err(
            Error::NotFound { .. }
            | Error::Forbidden { .. }
            | Error::WrongCollection { .. }
            | Error::BadRequest { .. },
        ) => return Err(missing()),
        Err(e) => return Err(e),
    };
    if !annotation_is_true(&resolved.action.annotations, WEB_EXPORT) {
        return Err(missing());
    }
    Ok(WebAction { owner, resolved })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_json_true_counts() {
        let a = Annotations::new()
            .with("yes", json!(true))
            .with("text", json!("true"))
            .with("one", json!(1));
        assert!(annotation_is_true(&a, "yes"));
        assert!(!annotation_is_true(&a, "text"));
        assert!(!annotation_is_true(&a, "one"));
        assert!(!annotation_is_true(&a, "missing"));
    }
}
