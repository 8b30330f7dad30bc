//! Action limits, namespace limits and the system-wide defaults (OpenWhisk's values).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One mebibyte.
pub const MB: u64 = 1024 * 1024;

/// System-wide limits and defaults. `Default` gives OpenWhisk's shipped values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SystemLimits {
    /// Smallest action timeout, ms.
    pub min_timeout_ms: u64,
    /// Largest action timeout, ms.
    pub max_timeout_ms: u64,
    /// Default action timeout, ms.
    pub default_timeout_ms: u64,
    /// Smallest action memory, MB.
    pub min_memory_mb: u64,
    /// Largest action memory, MB.
    pub max_memory_mb: u64,
    /// Default action memory, MB.
    pub default_memory_mb: u64,
    /// Smallest log limit, MB.
    pub min_logs_mb: u64,
    /// Largest log limit, MB.
    pub max_logs_mb: u64,
    /// Default log limit, MB.
    pub default_logs_mb: u64,
    /// Smallest intra-container concurrency.
    pub min_concurrency: u32,
    /// Largest intra-container concurrency.
    pub max_concurrency: u32,
    /// Default intra-container concurrency.
    pub default_concurrency: u32,
    /// Largest action code, bytes.
    pub max_exec_bytes: u64,
    /// Largest parameters or annotations of one entity, bytes.
    pub max_parameter_bytes: u64,
    /// Largest invoke/fire payload, bytes.
    pub max_payload_bytes: u64,
    /// Results longer than this are truncated into an application error, bytes.
    pub max_result_bytes: u64,
    /// Invocations per minute per namespace.
    pub invocations_per_minute: u32,
    /// Concurrent invocations per namespace.
    pub concurrent_invocations: u32,
    /// Trigger fires per minute per namespace.
    pub fires_per_minute: u32,
    /// Longest sequence (atomic actions).
    pub sequence_max_length: u32,
    /// Largest page of a list.
    pub max_list_limit: u32,
    /// Page size when none is asked for.
    pub default_list_limit: u32,
    /// Longest blocking wait, ms.
    pub max_blocking_wait_ms: u64,
}

impl Default for SystemLimits {
    fn default() -> Self {
        Self {
            min_timeout_ms: 100,
            max_timeout_ms: 300_000,
            default_timeout_ms: 60_000,
            min_memory_mb: 128,
            max_memory_mb: 512,
            default_memory_mb: 256,
            min_logs_mb: 0,
            max_logs_mb: 10,
            default_logs_mb: 10,
            min_concurrency: 1,
            max_concurrency: 1,
            default_concurrency: 1,
            max_exec_bytes: 48 * MB,
            max_parameter_bytes: MB,
            max_payload_bytes: MB,
            max_result_bytes: MB,
            invocations_per_minute: 60,
            concurrent_invocations: 30,
            fires_per_minute: 60,
            sequence_max_length: 50,
            max_list_limit: 200,
            default_list_limit: 30,
            max_blocking_wait_ms: 60_000,
        }
    }
}

/// An action's limits: `{"timeout": ms, "memory": MB, "logs": MB, "concurrency": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimits {
    /// Run time limit, ms.
    pub timeout: u64,
    /// Memory, MB.
    pub memory: u64,
    /// Log size limit, MB.
    #[serde(default = "default_logs")]
    pub logs: u64,
    /// Activations per container.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Maximum containers (FPC only; kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
}

fn default_logs() -> u64 {
    10
}
fn default_concurrency() -> u32 {
    1
}

impl ActionLimits {
    /// The system defaults.
    pub fn defaults(sys: &SystemLimits) -> Self {
        Self {
            timeout: sys.default_timeout_ms,
            memory: sys.default_memory_mb,
            logs: sys.default_logs_mb,
            concurrency: sys.default_concurrency,
            instances: None,
        }
    }

    /// Checks every limit against the system range, with OpenWhisk's messages.
    pub fn validate(&self, sys: &SystemLimits) -> Result<()> {
        if self.timeout < sys.min_timeout_ms {
            return Err(Error::bad_request(format!(
                "duration {} milliseconds below allowed threshold of {} milliseconds",
                self.timeout, sys.min_timeout_ms
            )));
        }
        if self.timeout > sys.max_timeout_ms {
            return Err(Error::bad_request(format!(
                "duration {} milliseconds exceeds allowed threshold of {} milliseconds",
                self.timeout, sys.max_timeout_ms
            )));
        }
        if self.memory < sys.min_memory_mb {
            return Err(Error::bad_request(format!(
                "memory {} MB below allowed threshold of {} MB",
                self.memory, sys.min_memory_mb
            )));
        }
        if self.memory > sys.max_memory_mb {
            return Err(Error::bad_request(format!(
                "memory {} MB exceeds allowed threshold of {} MB",
                self.memory, sys.max_memory_mb
            )));
        }
        if self.logs < sys.min_logs_mb {
            return Err(Error::bad_request(format!(
                "log size {} MB below allowed threshold of {} MB",
                self.logs, sys.min_logs_mb
            )));
        }
        if self.logs > sys.max_logs_mb {
            return Err(Error::bad_request(format!(
                "log size {} MB exceeds allowed threshold of {} MB",
                self.logs, sys.max_logs_mb
            )));
        }
        if self.concurrency < sys.min_concurrency {
            return Err(Error::bad_request(format!(
                "concurrency {} below allowed threshold of {}",
                self.concurrency, sys.min_concurrency
            )));
        }
        if self.concurrency > sys.max_concurrency {
            return Err(Error::bad_request(format!(
                "concurrency {} exceeds allowed threshold of {}",
                self.concurrency, sys.max_concurrency
            )));
        }
        Ok(())
    }
}

/// Limits as given in a `PUT` body: every field optional, merged over the old or default limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionLimitsPut {
    /// Run time limit, ms.
    pub timeout: Option<u64>,
    /// Memory, MB.
    pub memory: Option<u64>,
    /// Log size limit, MB.
    pub logs: Option<u64>,
    /// Activations per container.
    pub concurrency: Option<u32>,
    /// Maximum containers.
    pub instances: Option<u32>,
}

impl ActionLimitsPut {
    /// `base` with the given fields replaced.
    pub fn apply(&self, base: ActionLimits) -> ActionLimits {
        ActionLimits {
            timeout: self.timeout.unwrap_or(base.timeout),
            memory: self.memory.unwrap_or(base.memory),
            logs: self.logs.unwrap_or(base.logs),
            concurrency: self.concurrency.unwrap_or(base.concurrency),
            instances: self.instances.or(base.instances),
        }
    }
}

/// Per-namespace overrides (`<namespace>/limits` document); unset fields use the system values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLimits {
    /// Invocations per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations_per_minute: Option<u32>,
    /// Concurrent invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_invocations: Option<u32>,
    /// Trigger fires per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fires_per_minute: Option<u32>,
    /// Kinds this namespace may use (all when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_kinds: Option<Vec<String>>,
    /// Whether activation records are stored (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_activations: Option<bool>,
}

impl UserLimits {
    /// The `GET /namespaces/_/limits` body: these overrides filled in with system values.
    pub fn effective_json(&self, sys: &SystemLimits) -> serde_json::Value {
        let mut v = serde_json::json!({
            "invocationsPerMinute": self.invocations_per_minute.unwrap_or(sys.invocations_per_minute),
            "concurrentInvocations": self.concurrent_invocations.unwrap_or(sys.concurrent_invocations),
            "firesPerMinute": self.fires_per_minute.unwrap_or(sys.fires_per_minute),
            "minActionMemory": sys.min_memory_mb * MB,
            "maxActionMemory": sys.max_memory_mb * MB,
            "minActionLogs": sys.min_logs_mb * MB,
            "maxActionLogs": sys.max_logs_mb * MB,
            "minActionTimeout": sys.min_timeout_ms,
            "maxActionTimeout": sys.max_timeout_ms,
            "minActionConcurrency": sys.min_concurrency,
            "maxActionConcurrency": sys.max_concurrency,
            "maxParameterSize": format!("{} MB", sys.max_parameter_bytes / MB),
            "maxActionInstances": self.concurrent_invocations.unwrap_or(sys.concurrent_invocations),
        });
        if let (Some(kinds), Some(obj)) = (&self.allowed_kinds, v.as_object_mut()) {
            obj.insert("allowedKinds".into(), serde_json::json!(kinds));
        }
        if let (Some(s), Some(obj)) = (self.store_activations, v.as_object_mut()) {
            obj.insert("storeActivations".into(), serde_json::json!(s));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_messages() {
        let sys = SystemLimits::default();
        let mut l = ActionLimits::defaults(&sys);
        assert!(l.validate(&sys).is_ok());
        l.memory = 1024;
        assert_eq!(
            l.validate(&sys).unwrap_err().to_string(),
            "memory 1024 MB exceeds allowed threshold of 512 MB"
        );
        l.memory = 256;
        l.timeout = 400_000;
        assert_eq!(
            l.validate(&sys).unwrap_err().to_string(),
            "duration 400000 milliseconds exceeds allowed threshold of 300000 milliseconds"
        );
        let put = ActionLimitsPut {
            memory: Some(128),
            ..Default::default()
        };
        let merged = put.apply(ActionLimits::defaults(&sys));
        assert_eq!(merged.memory, 128);
        assert_eq!(merged.timeout, 60_000);
    }
}
