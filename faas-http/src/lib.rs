//! faas-http
