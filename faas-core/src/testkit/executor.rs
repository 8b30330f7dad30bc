//! The executor conformance suite.
