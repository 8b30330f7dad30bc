//! Integration tests of the `faas` binary: each test starts a platform in this process (memory
//! store, local Node.js/Python runners, 127.0.0.1 port 0) and runs the built binary against
//! it with a temporary HOME.
//!
//! | module | covers |
//! |---|---|
//! | `config` | `~/.wskprops`, `WSK_CONFIG_FILE`, `WHISK_*`, flags, `property set/get/unset`, https by default |
//! | `actions` | `action create/update/get/list/delete/invoke` and their flags, the quickstart walkthrough |
//! | `activations` | `activation list/get/logs/result/poll` |
//! | `namespaces` | `namespace list/get`, `list` |
//! | `apis` | `api create/list/get/delete` (arguments and a swagger file), calling the route |
//! | `packages` | `package create/update/bind/get/list/delete`, invoking through a binding |
//! | `errors` | bad input: missing file, unknown kind, bad parameters, wrong key, unreachable host |
//! | `json` | `--json` output and errors |
//! | `triggers` | `trigger create/update/get/list/delete/fire` (with feeds), `rule create/get/status/enable/disable/list/delete` |
//! | `checks` | checks the CLI makes before calling the platform (arguments, web actions for APIs) |
//! | `completion` | shell completion scripts |

#![allow(clippy::unwrap_used)]

mod actions;
mod activations;
mod apis;
mod checks;
mod completion;
mod config;
mod errors;
mod json;
mod namespaces;
mod packages;
mod support;
mod triggers;
