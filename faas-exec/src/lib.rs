//! faas-exec
