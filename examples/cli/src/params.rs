//! `--param KEY VALUE`, `--param-file FILE` and their annotation twins, read as `wsk` reads
//! them (`commands/util.go`, `getFormattedJSON`): a value that is valid JSON is taken as JSON
//! (`-p n 3` is the number 3, `-p o '{"a":1}'` an object), anything else as a string. A file
//! holds one JSON object. File entries come first, then the `-p` pairs in order (a later key
//! wins).

use std::path::Path;

use faas_core::Parameters;
use serde_json::{Map, Value};

use crate::error::{CliError, Result};

/// Parameters or annotations (only the messages differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    /// `--param` / `--param-file`.
    Parameter,
    /// `--annotation` / `--annotation-file`.
    Annotation,
}

impl What {
    fn noun(self) -> &'static str {
        match self {
            Self::Parameter => "parameter",
            Self::Annotation => "annotation",
        }
    }
}

/// A command-line value: JSON if it parses, else the string itself.
pub(crate) fn value_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Reads a file as text; a missing file gets `wsk`'s message (exit 2).
pub(crate) fn read_file(path: &Path) -> Result<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) | Err(_) => {
            return Err(CliError::usage(format!(
                "File '{}' is not a valid file or it does not exist",
                path.display()
            )));
        }
    }
    std::fs::read_to_string(path).map_err(|e| {
        CliError::general(format!("Unable to read the file '{}': {e}", path.display()))
    })
}

/// The JSON object in `path`.
fn object_file(path: &Path, what: What) -> Result<Map<String, Value>> {
    let text = read_file(path)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CliError::general(format!(
            "Invalid {} argument '{}': the file must hold a JSON object",
            what.noun(),
            path.display()
        ))),
        Err(e) => Err(CliError::general(format!(
            "Invalid {} argument '{}': {e}",
            what.noun(),
            path.display()
        ))),
    }
}

/// The entries of `file` (if any) then of `pairs` (`[k1, v1, k2, v2, ...]`), as an object.
pub(crate) fn object(
    pairs: &[String],
    file: Option<&Path>,
    what: What,
) -> Result<Map<String, Value>> {
    let mut out = match file {
        Some(f) => object_file(f, what)?,
        None => Map::new(),
    };
    if !pairs.len().is_multiple_of(2) {
        // clap takes two values per flag; this guards direct callers.
        return Err(CliError::general(format!(
            "The {} arguments are invalid: Arguments for '--{}' must be a key/value pair",
            what.noun(),
            what.noun()
        )));
    }
    for kv in pairs.chunks(2) {
        out.insert(kv[0].clone(), value_of(&kv[1]));
    }
    Ok(out)
}

/// As [`object`], in OpenWhisk's `[{"key", "value"}]` form.
pub(crate) fn list(pairs: &[String], file: Option<&Path>, what: What) -> Result<Parameters> {
    Ok(object(pairs, file, what)?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn values_are_json_when_they_parse() {
        let o = object(
            &s(&[
                "n",
                "3",
                "t",
                "true",
                "s",
                "hello world",
                "o",
                "{\"a\":[1]}",
                "q",
                "\"x\"",
            ]),
            None,
            What::Parameter,
        )
        .unwrap();
        assert_eq!(
            Value::Object(o),
            json!({"n": 3, "t": true, "s": "hello world", "o": {"a": [1]}, "q": "x"})
        );
    }

    #[test]
    fn files_then_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(&f, r#"{"a": 1, "b": "file"}"#).unwrap();
        let l = list(&s(&["b", "flag"]), Some(&f), What::Parameter).unwrap();
        assert_eq!(l.get("a"), Some(&json!(1)));
        assert_eq!(l.get("b"), Some(&json!("flag")));
        std::fs::write(&f, "[1]").unwrap();
        let e = list(&[], Some(&f), What::Annotation).unwrap_err();
        assert!(e.message.contains("Invalid annotation argument"), "{e}");
        std::fs::write(&f, "{nope").unwrap();
        let e = list(&[], Some(&f), What::Parameter).unwrap_err();
        assert!(e.message.starts_with("Invalid parameter argument"), "{e}");
        let e = list(&[], Some(&dir.path().join("missing.json")), What::Parameter).unwrap_err();
        assert_eq!(e.exit_code, crate::error::exit::USAGE);
        assert!(
            e.message
                .contains("is not a valid file or it does not exist")
        );
    }
}
