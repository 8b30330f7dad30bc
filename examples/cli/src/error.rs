//! The one error type of the CLI: a one-line message and the exit code `wsk` would use.
//!
//! Exit codes follow `wsk` (`openwhisk-client-go/whisk/wskerror.go` and the HTTP mapping in its
//! `client.go`): 1 general, 2 usage (bad input such as a missing file), 3 network, 149 not
//! allowed, 202 blocking invoke not finished in time, and `status - 256` for an HTTP error
//! answer (401 → 145, 404 → 148, 409 → 153, 502 → 246, ...).

use std::fmt;

/// Exit codes.
pub(crate) mod exit {
    /// Anything else.
    pub(crate) const GENERAL: u8 = 1;
    /// Bad input on the command line (missing file, unknown kind, bad flag value).
    pub(crate) const USAGE: u8 = 2;
    /// The API host could not be reached.
    pub(crate) const NETWORK: u8 = 3;
    /// A combination of flags `wsk` refuses (`--kind` with `--docker`).
    pub(crate) const NOT_ALLOWED: u8 = 149;
    /// A blocking invoke was accepted but had not finished when the wait ended.
    pub(crate) const TIMED_OUT: u8 = 202;

    /// The exit code of an HTTP error answer: `status - 256`, as `wsk` computes it.
    pub(crate) fn http(status: u16) -> u8 {
        u8::try_from(status.saturating_sub(256).clamp(1, 255)).unwrap_or(GENERAL)
    }
}

/// What kind of failure, for callers that treat some differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Anything else.
    Other,
    /// The platform answered that the route does not exist (404 from the router, or 405).
    NotServed,
    /// The server answered with an HTTP error.
    Http,
}

/// A failed command: what to print (after `error: `) and how to exit.
#[derive(Debug, Clone)]
pub(crate) struct CliError {
    /// One line, without the `error: ` prefix.
    pub(crate) message: String,
    /// The process exit code.
    pub(crate) exit_code: u8,
    /// The kind of failure.
    pub(crate) kind: Kind,
    /// HTTP status of the answer, if the server answered.
    pub(crate) status: Option<u16>,
    /// The server's error `code` (its transaction id), if it gave one.
    pub(crate) code: Option<String>,
    /// `false` when everything worth saying was already printed (an application error of a
    /// blocking invoke, a blocking invoke that did not finish in time).
    pub(crate) display: bool,
}

impl CliError {
    /// A failure with `message` and `exit_code`.
    pub(crate) fn new(message: impl Into<String>, exit_code: u8) -> Self {
        Self {
            message: message.into(),
            exit_code,
            kind: Kind::Other,
            status: None,
            code: None,
            display: true,
        }
    }

    /// A general failure (exit 1).
    pub(crate) fn general(message: impl Into<String>) -> Self {
        Self::new(message, exit::GENERAL)
    }

    /// Bad input on the command line (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(message, exit::USAGE)
    }

    /// Prefixes the message with `context: ` (`Unable to create action 'x': ...`), keeping the
    /// exit code and everything else.
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Prefixes the message with `context ` (`Invalid argument(s). ...`).
    pub(crate) fn prefix(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix} {}", self.message);
        self
    }

    /// Marks the failure as already reported on the console.
    pub(crate) fn silent(mut self) -> Self {
        self.display = false;
        self
    }

    /// Whether the platform does not serve the route.
    pub(crate) fn is_not_served(&self) -> bool {
        self.kind == Kind::NotServed
    }

    /// The HTTP status if it is `status`.
    pub(crate) fn has_status(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    /// The failure as JSON for `--json` (printed on stderr).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.message,
            "code": self.code,
            "status": self.status,
            "exitCode": self.exit_code,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The CLI's result type.
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_exit_codes_follow_wsk() {
        assert_eq!(exit::http(400), 144);
        assert_eq!(exit::http(401), 145);
        assert_eq!(exit::http(403), 147);
        assert_eq!(exit::http(404), 148);
        assert_eq!(exit::http(409), 153);
        assert_eq!(exit::http(502), 246);
        assert_eq!(exit::http(200), 1);
    }

    #[test]
    fn context_keeps_the_exit_code() {
        let e = CliError::usage("File 'x' is not a valid file or it does not exist")
            .prefix("Invalid argument(s).")
            .context("Unable to create action 'a'");
        assert_eq!(
            e.to_string(),
            "Unable to create action 'a': Invalid argument(s). File 'x' is not a valid file or it does not exist"
        );
        assert_eq!(e.exit_code, exit::USAGE);
    }
}
