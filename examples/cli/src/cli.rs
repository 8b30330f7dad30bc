//! The command line: `wsk`'s commands, flags and short options (`commands/*.go`), with clap.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use clap_complete::Shell;

/// faas: the command-line client of the faas platform, OpenWhisk's `wsk` in Rust.
///
/// Settings come from `~/.wskprops` (or the file named by `WSK_CONFIG_FILE`), the
/// `WHISK_APIHOST`, `WHISK_AUTH` and `WHISK_APIVERSION` variables, and the flags below, in
/// rising order of precedence. An API host without a scheme means https; a local platform is
/// `http://127.0.0.1:3233`.
#[derive(Debug, Parser)]
#[command(name = "faas", version, propagate_version = true, max_term_width = 110)]
pub(crate) struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes (`wsk`'s persistent flags), plus `--json`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct GlobalArgs {
    /// whisk API HOST (`host[:port]` means https; give `http://` for plain HTTP)
    #[arg(long, global = true, value_name = "HOST")]
    pub(crate) apihost: Option<String>,
    /// authorization KEY (`uuid:key`)
    #[arg(short = 'u', long, global = true, value_name = "KEY")]
    pub(crate) auth: Option<String>,
    /// whisk API VERSION
    #[arg(long, global = true, value_name = "VERSION")]
    pub(crate) apiversion: Option<String>,
    /// client cert (PEM file)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) cert: Option<String>,
    /// client key (PEM file)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) key: Option<String>,
    /// bypass certificate checking
    #[arg(short = 'i', long, global = true)]
    pub(crate) insecure: bool,
    /// debug level output (requests and responses on stderr, bodies in full)
    #[arg(short = 'd', long, global = true)]
    pub(crate) debug: bool,
    /// verbose output (requests and responses on stderr)
    #[arg(short = 'v', long, global = true)]
    pub(crate) verbose: bool,
    /// print only the JSON the platform answered (errors as JSON on stderr), for scripts
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The command families.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// work with actions
    #[command(subcommand)]
    Action(ActionCmd),
    /// work with activations
    #[command(subcommand)]
    Activation(ActivationCmd),
    /// work with packages
    #[command(subcommand)]
    Package(PackageCmd),
    /// work with rules
    #[command(subcommand)]
    Rule(RuleCmd),
    /// work with triggers
    #[command(subcommand)]
    Trigger(TriggerCmd),
    /// work with whisk properties
    #[command(subcommand)]
    Property(PropertyCmd),
    /// work with namespaces
    #[command(subcommand)]
    Namespace(NamespaceCmd),
    /// list entities in the current namespace
    List(NameSort),
    /// work with APIs
    #[command(subcommand)]
    Api(ApiCmd),
    /// print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion {
        /// the shell
        shell: Shell,
    },
}

/// `--param KEY VALUE` and `--param-file FILE`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ParamArgs {
    /// parameter values in KEY VALUE format (VALUE is JSON if it parses, else a string)
    #[arg(
        short = 'p',
        long = "param",
        num_args = 2,
        value_names = ["KEY", "VALUE"],
        allow_hyphen_values = true,
        action = ArgAction::Append
    )]
    pub(crate) param: Vec<String>,
    /// FILE containing parameter values in JSON format
    #[arg(short = 'P', long = "param-file", value_name = "FILE")]
    pub(crate) param_file: Option<PathBuf>,
}

/// `--annotation KEY VALUE` and `--annotation-file FILE`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AnnotationArgs {
    /// annotation values in KEY VALUE format
    #[arg(
        short = 'a',
        long = "annotation",
        num_args = 2,
        value_names = ["KEY", "VALUE"],
        allow_hyphen_values = true,
        action = ArgAction::Append
    )]
    pub(crate) annotation: Vec<String>,
    /// FILE containing annotation values in JSON format
    #[arg(short = 'A', long = "annotation-file", value_name = "FILE")]
    pub(crate) annotation_file: Option<PathBuf>,
}

/// `--skip`, `--limit`, `--name-sort` of list commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct Page {
    /// exclude the first SKIP number of entities from the result
    #[arg(short = 's', long, value_name = "SKIP", default_value_t = 0)]
    pub(crate) skip: u32,
    /// only return LIMIT number of entities from the collection
    #[arg(short = 'l', long, value_name = "LIMIT", default_value_t = 30)]
    pub(crate) limit: u32,
    #[command(flatten)]
    pub(crate) sort: NameSort,
}

/// `--name-sort`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct NameSort {
    /// sorts a list alphabetically by entity name; only applicable within the limit/skip returned entity block
    #[arg(short = 'n', long = "name-sort")]
    pub(crate) name_sort: bool,
}

// ------------------------------------------------------------------------------------ actions

/// `faas action ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ActionCmd {
    /// create a new action
    Create(ActionPut),
    /// update an existing action, or create an action if it does not exist
    Update(ActionUpdate),
    /// invoke action
    Invoke(ActionInvoke),
    /// get action
    Get(ActionGet),
    /// delete action
    Delete {
        /// ACTION_NAME
        name: String,
    },
    /// list all actions in a namespace or actions contained in a package
    List(ActionList),
}

/// The flags of `action create` (and `update`).
#[derive(Debug, Clone, Args)]
pub(crate) struct ActionPut {
    /// ACTION_NAME
    pub(crate) name: String,
    /// the code FILE (.js, .py, .zip with --kind, ...), or with --sequence the comma-separated actions, or with --copy an existing action
    pub(crate) artifact: Option<String>,
    /// use provided docker image to run the action
    #[arg(long, value_name = "IMAGE")]
    pub(crate) docker: Option<String>,
    /// treat ACTION as native action (zip file provides a compatible executable to run)
    #[arg(long)]
    pub(crate) native: bool,
    /// treat ACTION as the name of an existing action
    #[arg(long)]
    pub(crate) copy: bool,
    /// treat ACTION as comma separated sequence of actions to invoke
    #[arg(long)]
    pub(crate) sequence: bool,
    /// the KIND of the action runtime (example: python:default, nodejs:default)
    #[arg(long, value_name = "KIND")]
    pub(crate) kind: Option<String>,
    /// the name of the action entry point (function or fully-qualified method name when applicable)
    #[arg(long, value_name = "MAIN")]
    pub(crate) main: Option<String>,
    /// the timeout LIMIT in milliseconds after which the action is terminated
    #[arg(short = 't', long, value_name = "LIMIT")]
    pub(crate) timeout: Option<u64>,
    /// the maximum memory LIMIT in MB for the action
    #[arg(short = 'm', long, value_name = "LIMIT")]
    pub(crate) memory: Option<u64>,
    /// the maximum log size LIMIT in MB for the action
    #[arg(short = 'l', long, value_name = "LIMIT")]
    pub(crate) logsize: Option<u64>,
    /// the maximum intra-container concurrent activation LIMIT for the action
    #[arg(short = 'c', long, value_name = "LIMIT")]
    pub(crate) concurrency: Option<u32>,
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    #[command(flatten)]
    pub(crate) annotations: AnnotationArgs,
    /// treat ACTION as a web action, a raw HTTP web action, or as a standard action; yes | true = web action, raw = raw HTTP web action, no | false = standard action
    #[arg(long, value_name = "MODE")]
    pub(crate) web: Option<String>,
    /// secure the web action, where SECRET is true, false, or any string; only valid when the ACTION is a web action
    #[arg(long = "web-secure", value_name = "SECRET")]
    pub(crate) web_secure: Option<String>,
}

/// The flags of `action update`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActionUpdate {
    #[command(flatten)]
    pub(crate) put: ActionPut,
    /// the list of annotations to be deleted from the action, e.g. --del-annotation key1 --del-annotation key2
    #[arg(long = "del-annotation", value_name = "KEY")]
    pub(crate) del_annotation: Vec<String>,
}

/// The flags of `action invoke`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActionInvoke {
    /// ACTION_NAME
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    /// blocking invoke
    #[arg(short = 'b', long)]
    pub(crate) blocking: bool,
    /// blocking invoke; show only activation result (unless there is a failure)
    #[arg(short = 'r', long)]
    pub(crate) result: bool,
}

/// The flags of `action get`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActionGet {
    /// ACTION_NAME
    pub(crate) name: String,
    /// print only this field of the action (namespace, name, version, exec, annotations, parameters, limits, publish, updated)
    pub(crate) field: Option<String>,
    /// summarize action details; parameters with prefix "*" are bound, "**" are bound and finalized
    #[arg(short = 's', long)]
    pub(crate) summary: bool,
    /// get action url
    #[arg(short = 'r', long)]
    pub(crate) url: bool,
    /// save action code to file corresponding with action name
    #[arg(long)]
    pub(crate) save: bool,
    /// file to save action code to
    #[arg(long = "save-as", value_name = "FILE")]
    pub(crate) save_as: Option<PathBuf>,
}

/// The flags of `action list`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActionList {
    /// NAMESPACE (/ns) or PACKAGE_NAME
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) page: Page,
}

// -------------------------------------------------------------------------------- activations

/// `faas activation ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ActivationCmd {
    /// list activations
    List(ActivationList),
    /// get activation
    Get(ActivationGet),
    /// get the logs of an activation
    Logs(ActivationLogs),
    /// get the result of an activation
    Result(ActivationResult),
    /// poll continuously for log messages from currently running actions
    Poll(ActivationPoll),
}

/// The flags of `activation list`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActivationList {
    /// the action (or NAMESPACE) whose activations to list
    pub(crate) name: Option<String>,
    /// exclude the first SKIP number of activations from the result
    #[arg(short = 's', long, value_name = "SKIP", default_value_t = 0)]
    pub(crate) skip: u32,
    /// only return LIMIT number of activations from the collection with a maximum LIMIT of 200 activations
    #[arg(short = 'l', long, value_name = "LIMIT", default_value_t = 30)]
    pub(crate) limit: u32,
    /// include full activation description
    #[arg(short = 'f', long)]
    pub(crate) full: bool,
    /// return activations with timestamps earlier than UPTO; measured in milliseconds since Th, 01, Jan 1970
    #[arg(long, value_name = "UPTO")]
    pub(crate) upto: Option<u64>,
    /// return activations with timestamps later than SINCE; measured in milliseconds since Th, 01, Jan 1970
    #[arg(long, value_name = "SINCE")]
    pub(crate) since: Option<u64>,
}

/// The flags of `activation get`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActivationGet {
    /// ACTIVATION_ID (unless --last), then an optional FIELD_FILTER
    #[arg(num_args = 0..=2)]
    pub(crate) args: Vec<String>,
    /// summarize activation details
    #[arg(short = 's', long)]
    pub(crate) summary: bool,
    /// retrieves the last activation
    #[arg(short = 'l', long)]
    pub(crate) last: bool,
    /// emit only the logs, stripped of time stamps and stream identifier
    #[arg(short = 'g', long)]
    pub(crate) logs: bool,
}

/// The flags of `activation logs`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActivationLogs {
    /// ACTIVATION_ID (unless --last)
    pub(crate) id: Option<String>,
    /// retrieves the last activation
    #[arg(short = 'l', long)]
    pub(crate) last: bool,
    /// strip timestamp and stream information
    #[arg(short = 'r', long)]
    pub(crate) strip: bool,
}

/// The flags of `activation result`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActivationResult {
    /// ACTIVATION_ID (unless --last)
    pub(crate) id: Option<String>,
    /// retrieves the last activation
    #[arg(short = 'l', long)]
    pub(crate) last: bool,
}

/// The flags of `activation poll`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActivationPoll {
    /// NAMESPACE or ACTION_NAME to watch
    pub(crate) name: Option<String>,
    /// stop polling after SECONDS seconds
    #[arg(short = 'e', long, value_name = "SECONDS")]
    pub(crate) exit: Option<u64>,
    /// start polling for activations SECONDS seconds ago
    #[arg(long = "since-seconds", value_name = "SECONDS", default_value_t = 0)]
    pub(crate) since_seconds: u64,
    /// start polling for activations MINUTES minutes ago
    #[arg(long = "since-minutes", value_name = "MINUTES", default_value_t = 0)]
    pub(crate) since_minutes: u64,
    /// start polling for activations HOURS hours ago
    #[arg(long = "since-hours", value_name = "HOURS", default_value_t = 0)]
    pub(crate) since_hours: u64,
    /// start polling for activations DAYS days ago
    #[arg(long = "since-days", value_name = "DAYS", default_value_t = 0)]
    pub(crate) since_days: u64,
}

// ----------------------------------------------------------------------------------- packages

/// `faas package ...`
#[derive(Debug, Subcommand)]
pub(crate) enum PackageCmd {
    /// bind parameters to a package
    Bind(PackageBind),
    /// create a new package
    Create(PackagePut),
    /// update an existing package, or create a package if it does not exist
    Update(PackagePut),
    /// get package
    Get(EntityGet),
    /// delete package
    Delete {
        /// PACKAGE_NAME
        name: String,
    },
    /// list all packages
    List(NamespaceList),
}

/// The flags of `package create` and `update`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PackagePut {
    /// PACKAGE_NAME
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    #[command(flatten)]
    pub(crate) annotations: AnnotationArgs,
    /// package visibility SCOPE; yes = shared, no = private
    #[arg(long, value_name = "SCOPE")]
    pub(crate) shared: Option<String>,
}

/// The flags of `package bind`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PackageBind {
    /// the PACKAGE_NAME to bind
    pub(crate) package: String,
    /// the BOUND_PACKAGE_NAME (the binding to create)
    pub(crate) binding: String,
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    #[command(flatten)]
    pub(crate) annotations: AnnotationArgs,
}

/// `get NAME [FIELD_FILTER] [--summary]` of packages, triggers and rules.
#[derive(Debug, Clone, Args)]
pub(crate) struct EntityGet {
    /// the entity's NAME
    pub(crate) name: String,
    /// print only this field
    pub(crate) field: Option<String>,
    /// summarize details; parameters with prefix "*" are bound
    #[arg(short = 's', long)]
    pub(crate) summary: bool,
}

/// `list [NAMESPACE]` of packages, triggers and rules.
#[derive(Debug, Clone, Args)]
pub(crate) struct NamespaceList {
    /// NAMESPACE (/ns)
    pub(crate) namespace: Option<String>,
    #[command(flatten)]
    pub(crate) page: Page,
}

// ----------------------------------------------------------------------------------- triggers

/// `faas trigger ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TriggerCmd {
    /// fire trigger event
    Fire(TriggerFire),
    /// create new trigger
    Create(TriggerPut),
    /// update an existing trigger, or create a trigger if it does not exist
    Update(TriggerPut),
    /// get trigger
    Get(EntityGet),
    /// delete trigger
    Delete {
        /// TRIGGER_NAME
        name: String,
    },
    /// list all triggers
    List(NamespaceList),
}

/// The flags of `trigger create` and `update`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TriggerPut {
    /// TRIGGER_NAME
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    #[command(flatten)]
    pub(crate) annotations: AnnotationArgs,
    /// trigger feed ACTION_NAME (create only)
    #[arg(short = 'f', long, value_name = "ACTION_NAME")]
    pub(crate) feed: Option<String>,
    /// feed parameter values in KEY VALUE format
    #[arg(
        short = 'F',
        long = "feed-param",
        num_args = 2,
        value_names = ["KEY", "VALUE"],
        allow_hyphen_values = true,
        action = ArgAction::Append
    )]
    pub(crate) feed_param: Vec<String>,
    /// trigger parameter values in KEY VALUE format
    #[arg(
        short = 'T',
        long = "trigger-param",
        num_args = 2,
        value_names = ["KEY", "VALUE"],
        allow_hyphen_values = true,
        action = ArgAction::Append
    )]
    pub(crate) trigger_param: Vec<String>,
}

/// The flags of `trigger fire`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TriggerFire {
    /// TRIGGER_NAME
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) params: ParamArgs,
}

// -------------------------------------------------------------------------------------- rules

/// `faas rule ...`
#[derive(Debug, Subcommand)]
pub(crate) enum RuleCmd {
    /// create new rule
    Create(RulePut),
    /// enable rule
    Enable {
        /// RULE_NAME
        name: String,
    },
    /// disable rule
    Disable {
        /// RULE_NAME
        name: String,
    },
    /// get rule status
    Status {
        /// RULE_NAME
        name: String,
    },
    /// update an existing rule, or create a rule if it does not exist
    Update(RulePut),
    /// get rule
    Get(EntityGet),
    /// delete rule
    Delete {
        /// RULE_NAME
        name: String,
        /// automatically disable rule before deleting it
        #[arg(long)]
        disable: bool,
    },
    /// list all rules
    List(NamespaceList),
}

/// `rule create|update RULE_NAME TRIGGER_NAME ACTION_NAME`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RulePut {
    /// RULE_NAME
    pub(crate) name: String,
    /// TRIGGER_NAME
    pub(crate) trigger: String,
    /// ACTION_NAME
    pub(crate) action: String,
}

// --------------------------------------------------------------------------------- namespaces

/// `faas namespace ...`
#[derive(Debug, Subcommand)]
pub(crate) enum NamespaceCmd {
    /// list available namespaces
    List,
    /// get triggers, actions, and rules in the registry for namespace
    Get {
        /// `/_` (the caller's namespace; the only one accepted, as in wsk)
        namespace: Option<String>,
        #[command(flatten)]
        sort: NameSort,
    },
}

// --------------------------------------------------------------------------------- properties

/// `faas property ...`
#[derive(Debug, Subcommand)]
pub(crate) enum PropertyCmd {
    /// set property (with the global --auth, --apihost, --apiversion, --cert, --key, and --namespace)
    Set {
        /// whisk NAMESPACE
        #[arg(long, value_name = "NAMESPACE")]
        namespace: Option<String>,
    },
    /// unset property
    Unset(PropertyNames),
    /// get property
    Get(PropertyGet),
}

/// Switches naming properties. They share their ids with the global flags of the same names, so
/// clap does not give these commands the global (valued) flags; a switch given reads as
/// `Some("true")`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct PropertyNames {
    /// client cert
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub(crate) cert: Option<String>,
    /// client key
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub(crate) key: Option<String>,
    /// authorization key
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub(crate) auth: Option<String>,
    /// whisk API host
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub(crate) apihost: Option<String>,
    /// whisk API version
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub(crate) apiversion: Option<String>,
    /// whisk namespace
    #[arg(long)]
    pub(crate) namespace: bool,
}

/// The flags of `property get`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PropertyGet {
    #[command(flatten)]
    pub(crate) names: PropertyNames,
    /// whisk API build version
    #[arg(long)]
    pub(crate) apibuild: bool,
    /// whisk API build number
    #[arg(long)]
    pub(crate) apibuildno: bool,
    /// whisk CLI version
    #[arg(long)]
    pub(crate) cliversion: bool,
    /// all properties
    #[arg(long)]
    pub(crate) all: bool,
    /// Output format in std|raw
    #[arg(short = 'o', long, value_name = "FORMAT", default_value = "std")]
    pub(crate) output: String,
}

// --------------------------------------------------------------------------------------- APIs

/// `faas api ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ApiCmd {
    /// create a new API
    Create(ApiCreate),
    /// get API details
    Get(ApiGet),
    /// delete an API
    Delete {
        /// BASE_PATH | API_NAME
        base: String,
        /// API_PATH
        path: Option<String>,
        /// API_VERB
        verb: Option<String>,
    },
    /// list APIs
    List(ApiList),
}

/// The flags of `api create`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiCreate {
    /// The API: an optional base path, then the path, the verb and the action.
    #[arg(
        num_args = 0..=4,
        value_name = "ARGS",
        help = "[BASE_PATH] API_PATH API_VERB ACTION"
    )]
    pub(crate) args: Vec<String>,
    /// Friendly name of the API; ignored when CFG_FILE is specified (default BASE_PATH)
    #[arg(short = 'n', long, value_name = "API_NAME")]
    pub(crate) apiname: Option<String>,
    /// CFG_FILE containing API configuration in swagger JSON format
    #[arg(short = 'c', long = "config-file", value_name = "CFG_FILE")]
    pub(crate) config_file: Option<PathBuf>,
    /// Set the web action response TYPE. Possible values are html, http, json, text, svg
    #[arg(long = "response-type", value_name = "TYPE", default_value = "json")]
    pub(crate) response_type: String,
}

/// The flags of `api get`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiGet {
    /// BASE_PATH | API_NAME
    pub(crate) base: String,
    /// display full API configuration details
    #[arg(short = 'f', long)]
    pub(crate) full: bool,
    /// Specify the API output TYPE (json; yaml is not supported by this client)
    #[arg(long, value_name = "TYPE", default_value = "json")]
    pub(crate) format: String,
}

/// The flags of `api list`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiList {
    /// Optional filters: the base path (or API name), the path, the verb.
    #[arg(
        num_args = 0..=3,
        value_name = "ARGS",
        help = "[BASE_PATH | API_NAME] [API_PATH [API_VERB]]"
    )]
    pub(crate) args: Vec<String>,
    #[command(flatten)]
    pub(crate) page: Page,
    /// display full description of each API
    #[arg(short = 'f', long)]
    pub(crate) full: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_value_flags_take_two_values() {
        let cli = Cli::try_parse_from([
            "faas", "action", "invoke", "hello", "-p", "name", "world", "--param", "n", "-3", "-r",
        ])
        .unwrap();
        let Command::Action(ActionCmd::Invoke(inv)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(inv.params.param, ["name", "world", "n", "-3"]);
        assert!(inv.result);
        let e =
            Cli::try_parse_from(["faas", "action", "invoke", "hello", "-p", "name"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::WrongNumberOfValues);
    }

    #[test]
    fn global_flags_anywhere_and_property_switches() {
        let cli = Cli::try_parse_from([
            "faas",
            "action",
            "list",
            "--apihost",
            "http://h:1",
            "-u",
            "a:b",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.global.apihost.as_deref(), Some("http://h:1"));
        assert_eq!(cli.global.auth.as_deref(), Some("a:b"));
        assert!(cli.global.json);
        let cli = Cli::try_parse_from(["faas", "property", "get", "--auth", "--apihost"]).unwrap();
        let Command::Property(PropertyCmd::Get(g)) = cli.command else {
            panic!("wrong command")
        };
        assert!(g.names.auth.is_some());
        assert!(g.names.apihost.is_some());
        assert!(g.names.key.is_none());
        let cli = Cli::try_parse_from(["faas", "property", "set", "--auth", "k:v"]).unwrap();
        assert_eq!(cli.global.auth.as_deref(), Some("k:v"));
    }
}
