//! faas-store
