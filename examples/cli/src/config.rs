//! Configuration as `wsk` keeps it: the properties file (`~/.wskprops`, or `WSK_CONFIG_FILE`),
//! the `WHISK_*` environment variables and the global flags.
//!
//! Precedence, as in `wsk` (`commands/property.go`, `loadProperties` and `parseConfigFlags`):
//! flag > `WHISK_AUTH` / `WHISK_APIHOST` / `WHISK_APIVERSION` > properties file > default.
//!
//! The file is `KEY=VALUE` lines; `#` starts a comment. `wsk` reads the same file, so both
//! clients share one configuration. Unlike `wsk`, writing keeps the file's other lines (comments,
//! keys this client does not know) and their order.

use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::cli::GlobalArgs;
use crate::error::{CliError, Result};

/// `APIHOST`: the API host, `host[:port]` (https) or a URL.
pub(crate) const APIHOST: &str = "APIHOST";
/// `AUTH`: `uuid:key`.
pub(crate) const AUTH: &str = "AUTH";
/// `NAMESPACE`: the default namespace (`_`, the caller's own, when unset).
pub(crate) const NAMESPACE: &str = "NAMESPACE";
/// `APIVERSION`: `v1`.
pub(crate) const APIVERSION: &str = "APIVERSION";
/// `APIGW_ACCESS_TOKEN`: the API gateway's access token (`api` commands).
pub(crate) const APIGW_ACCESS_TOKEN: &str = "APIGW_ACCESS_TOKEN";
/// `CERT`: a client certificate (PEM file).
pub(crate) const CERT: &str = "CERT";
/// `KEY`: the client certificate's key (PEM file).
pub(crate) const KEY: &str = "KEY";

/// The default namespace: the caller's own.
pub(crate) const DEFAULT_NAMESPACE: &str = "_";
/// The default API version.
pub(crate) const DEFAULT_APIVERSION: &str = "v1";

/// The properties file: its lines, kept for writing back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Props {
    lines: Vec<String>,
}

/// `KEY=VALUE` of one line, if it has that shape (`#` starts a comment, as in `wsk`).
fn key_value(line: &str) -> Option<(&str, &str)> {
    let line = line.split('#').next().unwrap_or("").trim();
    let (k, v) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()).then_some((k, v.trim()))
}

impl Props {
    /// Parses the text of a properties file.
    pub(crate) fn parse(text: &str) -> Self {
        Self {
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// Reads `path`; a missing file is an empty one.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::general(format!(
                "Unable to read the properties file '{}': {e}",
                path.display()
            ))),
        }
    }

    /// The value of `key` (the last line that sets it).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .filter_map(|l| key_value(l))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` to `value`: replaces the line that sets it, or appends one.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        let line = format!("{key}={value}");
        let mut found = false;
        self.lines.retain_mut(|l| {
            if key_value(l).is_some_and(|(k, _)| k == key) {
                if found {
                    return false;
                }
                found = true;
                *l = line.clone();
            }
            true
        });
        if !found {
            self.lines.push(line);
        }
    }

    /// Removes every line that sets `key`.
    pub(crate) fn unset(&mut self, key: &str) {
        self.lines
            .retain(|l| key_value(l).is_none_or(|(k, _)| k != key));
    }

    /// The file's text.
    pub(crate) fn render(&self) -> String {
        let mut s = self.lines.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// Writes the file (owner-only permissions: it holds a key).
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path)?;
            f.write_all(self.render().as_bytes())?;
            f.sync_all()
        };
        write().map_err(|e| CliError::general(format!("Whisk properties file write failure: {e}")))
    }
}

/// Where the properties file is: `WSK_CONFIG_FILE` when set (an empty value means none at all,
/// as in `wsk`), else `.wskprops` in the home directory.
pub(crate) fn props_path() -> Option<PathBuf> {
    match std::env::var_os("WSK_CONFIG_FILE") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => dirs::home_dir().map(|h| h.join(".wskprops")),
    }
}

/// Which global flags a command takes as connection settings. `property get` and `property
/// unset` use `--auth`, `--apihost`, ... as plain switches naming a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagUse {
    /// The flags set the connection.
    Connection,
    /// The flags name properties; they do not change the connection.
    PropertyNames,
}

/// The resolved settings of one run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The API host as configured (`APIHOST`), if any.
    pub(crate) apihost: Option<String>,
    /// `uuid:key`, if configured.
    pub(crate) auth: Option<String>,
    /// The namespace names resolve against (`_` unless `NAMESPACE` says otherwise).
    pub(crate) namespace: String,
    /// Whether `NAMESPACE` was configured.
    pub(crate) namespace_configured: bool,
    /// `v1` unless configured otherwise.
    pub(crate) apiversion: String,
    /// Client certificate file.
    pub(crate) cert: Option<String>,
    /// Client key file.
    pub(crate) key: Option<String>,
    /// The API gateway access token (`api` commands).
    pub(crate) apigw_access_token: Option<String>,
    /// `-i`: skip certificate checks.
    pub(crate) insecure: bool,
    /// `-d`: print requests and responses (bodies too) on stderr.
    pub(crate) debug: bool,
    /// `-v`: print requests and responses on stderr.
    pub(crate) verbose: bool,
    /// `--json`: machine-readable output.
    pub(crate) json: bool,
    /// The properties file in use, if any.
    pub(crate) props_path: Option<PathBuf>,
    /// Its contents.
    pub(crate) props: Props,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    /// Reads the properties file and the environment, then applies the flags.
    pub(crate) fn load(global: &GlobalArgs, flags: FlagUse) -> Result<Self> {
        let props_path = props_path();
        let props = match &props_path {
            Some(p) => Props::load(p)?,
            None => Props::default(),
        };
        Ok(Self::resolve(
            global,
            flags,
            props_path,
            props,
            env_nonempty,
        ))
    }

    /// Resolves the settings from `props`, the environment (`env`) and the flags.
    pub(crate) fn resolve(
        global: &GlobalArgs,
        flags: FlagUse,
        props_path: Option<PathBuf>,
        props: Props,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let prop = |k: &str| props.get(k).filter(|v| !v.is_empty()).map(str::to_string);
        let connection = flags == FlagUse::Connection;
        let flag = |v: &Option<String>| {
            if connection {
                v.clone().filter(|v| !v.is_empty())
            } else {
                None
            }
        };
        let apihost = flag(&global.apihost)
            .or_else(|| env("WHISK_APIHOST"))
            .or_else(|| prop(APIHOST).map(|h| h.trim_end_matches('/').to_string()));
        let auth = flag(&global.auth)
            .or_else(|| env("WHISK_AUTH"))
            .or_else(|| prop(AUTH));
        let apiversion = flag(&global.apiversion)
            .or_else(|| env("WHISK_APIVERSION"))
            .or_else(|| prop(APIVERSION))
            .unwrap_or_else(|| DEFAULT_APIVERSION.to_string());
        let namespace = prop(NAMESPACE);
        Self {
            apihost,
            auth,
            namespace_configured: namespace.is_some(),
            namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            apiversion,
            cert: flag(&global.cert).or_else(|| prop(CERT)),
            key: flag(&global.key).or_else(|| prop(KEY)),
            apigw_access_token: prop(APIGW_ACCESS_TOKEN),
            insecure: global.insecure,
            debug: global.debug,
            verbose: global.verbose || global.debug,
            json: global.json,
            props_path,
            props,
        }
    }

    /// The API's base URL (`.../api`) for the configured host.
    pub(crate) fn base_url(&self) -> Result<Url> {
        base_url(self.apihost.as_deref().unwrap_or(""))
            .map_err(|e| e.context("The API host is not valid"))
    }
}

/// The API's base URL for `apihost`: `https://` unless the host names its scheme, then `/api`
/// (`whisk.GetURLBase`). To reach a local platform, give the scheme:
/// `http://127.0.0.1:3233`.
pub(crate) fn base_url(apihost: &str) -> Result<Url> {
    let host = apihost.trim();
    if host.is_empty() {
        return Err(CliError::general("An API host must be provided."));
    }
    let lower = host.to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("http://") {
        ("http", &host["http://".len()..])
    } else if lower.starts_with("https://") {
        ("https", &host["https://".len()..])
    } else {
        ("https", host)
    };
    let rest = rest.trim_end_matches('/');
    let invalid =
        |why: String| CliError::general(format!("'{apihost}' is not a valid host address{why}"));
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid(String::new()));
    }
    let url =
        Url::parse(&format!("{scheme}://{rest}/api")).map_err(|e| invalid(format!(": {e}")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(String::new()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> GlobalArgs {
        GlobalArgs::default()
    }

    #[test]
    fn props_round_trip_keeps_other_lines() {
        let mut p = Props::parse("# my settings\nAUTH=a:b\nOTHER=x # note\nAPIHOST=host\n");
        assert_eq!(p.get(AUTH), Some("a:b"));
        assert_eq!(p.get("OTHER"), Some("x"));
        p.set(APIHOST, "http://127.0.0.1:3233");
        p.set(NAMESPACE, "guest");
        p.unset(AUTH);
        assert_eq!(
            p.render(),
            "# my settings\nOTHER=x # note\nAPIHOST=http://127.0.0.1:3233\nNAMESPACE=guest\n"
        );
    }

    #[test]
    fn lines_that_are_not_key_value_are_ignored() {
        let p = Props::parse("garbage\n=novalue\nAUTH = k:v \n");
        assert_eq!(p.get(AUTH), Some("k:v"));
        assert_eq!(p.get(""), None);
    }

    #[test]
    fn precedence_flag_env_file() {
        let props = Props::parse("APIHOST=file-host/\nAUTH=file:auth\nNAMESPACE=ns\n");
        let env = |k: &str| (k == "WHISK_AUTH").then(|| "env:auth".to_string());
        let s = Settings::resolve(&global(), FlagUse::Connection, None, props.clone(), env);
        assert_eq!(s.apihost.as_deref(), Some("file-host"));
        assert_eq!(s.auth.as_deref(), Some("env:auth"));
        assert_eq!(s.namespace, "ns");
        assert_eq!(s.apiversion, "v1");
        let flags = GlobalArgs {
            auth: Some("flag:auth".into()),
            apihost: Some("flag-host".into()),
            ..global()
        };
        let s = Settings::resolve(&flags, FlagUse::Connection, None, props.clone(), env);
        assert_eq!(s.auth.as_deref(), Some("flag:auth"));
        assert_eq!(s.apihost.as_deref(), Some("flag-host"));
        // `property get --auth` names a property; it does not set the key.
        let s = Settings::resolve(&flags, FlagUse::PropertyNames, None, props, env);
        assert_eq!(s.auth.as_deref(), Some("env:auth"));
        assert_eq!(s.apihost.as_deref(), Some("file-host"));
    }

    #[test]
    fn api_host_without_scheme_is_https() {
        assert_eq!(
            base_url("openwhisk.example").unwrap().as_str(),
            "https://openwhisk.example/api"
        );
        assert_eq!(
            base_url("http://127.0.0.1:3233/").unwrap().as_str(),
            "http://127.0.0.1:3233/api"
        );
        assert_eq!(base_url("HTTPS://h:443").unwrap().as_str(), "https://h/api");
        assert_eq!(
            base_url("http://h:3233/prefix/").unwrap().as_str(),
            "http://h:3233/prefix/api"
        );
        assert!(base_url("").is_err());
        assert!(base_url("http://").is_err());
        assert!(base_url("https:///x").is_err());
        assert!(base_url("http://h:notaport").is_err());
    }
}
