//! The Store conformance suite.
