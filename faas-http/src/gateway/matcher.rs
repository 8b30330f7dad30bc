//! Which operation a gateway request reaches (the API gateway's `routing.lua`: exact paths and
//! path parameters first, then ever shorter prefixes of the path).
//!
//! An operation's full path is its API's base path followed by its relative path, split into
//! segments; `{name}` segments match any one segment. For a request path of `n` segments the
//! candidates of `n` segments are tried first, then those of `n − 1` (the last request segment
//! becomes the unmatched rest), and so on down to the root; among candidates of one length a
//! static segment beats a parameter at the first place they differ. The resource (full path)
//! is chosen first and the verb within it after, as the gateway does: a verb the chosen path
//! lacks is not looked for elsewhere.

use super::swagger::{Operation, Parsed};

/// A chosen operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    /// Its API.
    pub api: &'a Parsed,
    /// The operation, or `None` when the path exists without the request's verb.
    pub operation: Option<&'a Operation>,
    /// The part of the request path past the operation's path (`""` or `/…`).
    pub rest: String,
    /// The verbs the chosen path serves (uppercase), for a `405`'s `Allow`.
    pub allowed: Vec<String>,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The full path's segments of `op` in `api`.
fn template<'a>(api: &'a Parsed, op: &'a Operation) -> Vec<&'a str> {
    let mut t = segments(&api.base_path);
    t.extend(segments(&op.path));
    t
}

/// `Some(static mask)` when `t` matches `req` segment by segment.
fn fits(t: &[&str], req: &[String]) -> Option<Vec<bool>> {
    if t.len() != req.len() {
        return None;
    }
    let mut mask = Vec::with_capacity(t.len());
    for (ts, rs) in t.iter().zip(req) {
        let param = ts.starts_with('{') && ts.ends_with('}');
        if !param && ts != rs {
            return None;
        }
        mask.push(!param);
    }
    Some(mask)
}

/// Finds the operation for `path` (percent-decoded segments) and `verb` (lowercase) among
/// `apis`; `None` when no path matches.
pub fn find<'a>(apis: &'a [Parsed], path: &[String], verb: &str) -> Option<Matched<'a>> {
    for n in (0..=path.len()).rev() {
        let head = &path[..n];
        // The best full path of this length: the static mask compared lexicographically.
        let mut best: Option<(Vec<bool>, Vec<&str>)> = None;
        for api in apis {
            for op in &api.operations {
                let t = template(api, op);
                if let Some(mask) = fits(&t, head)
                    && best.as_ref().is_none_or(|(m, _)| mask > *m)
                {
                    best = Some((mask, t));
                }
            }
        }
        let Some((_, chosen)) = best else { continue };
        let rest: String = path[n..].iter().map(|s| format!("/{s}")).collect();
        let mut first: Option<(&Parsed, Option<&Operation>)> = None;
        let mut allowed = Vec::new();
        for api in apis {
            for op in &api.operations {
                if template(api, op) == chosen {
                    allowed.push(op.verb.to_ascii_uppercase());
                    if op.verb == verb && first.is_none_or(|(_, o)| o.is_none()) {
                        first = Some((api, Some(op)));
                    } else if first.is_none() {
                        first = Some((api, None));
                    }
                }
            }
        }
        return first.map(|(api, operation)| Matched {
            api,
            operation,
            rest,
            allowed,
        });
    }
    None
}

/// Whether two full paths reach the same requests: as many segments, and at every place either
/// two parameters or two equal static segments.
pub fn same_shape(a: &str, b: &str) -> bool {
    let (a, b) = (segments(a), segments(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            let px = x.starts_with('{');
            let py = y.starts_with('{');
            (px && py) || (!px && !py && x == y)
        })
}

/// A base path and a relative path as one path.
pub fn full_path(base: &str, rel: &str) -> String {
    let s: Vec<&str> = segments(base).into_iter().chain(segments(rel)).collect();
    format!("/{}", s.join("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gateway::swagger::Target;

    fn op(path: &str, verb: &str, action: &str) -> Operation {
        Operation {
            path: path.into(),
            verb: verb.into(),
            operation_id: String::new(),
            target: Target {
                namespace: "guest".into(),
                package: None,
                action: action.into(),
                ext: "http".into(),
            },
            backend_verb: None,
            secret: None,
        }
    }

    fn api(base: &str, ops: Vec<Operation>) -> Parsed {
        Parsed {
            base_path: base.into(),
            title: base.into(),
            cors: true,
            operations: ops,
        }
    }

    fn req(p: &str) -> Vec<String> {
        segments(p).into_iter().map(String::from).collect()
    }

    #[test]
    fn statics_beat_parameters_and_prefixes_fall_back() {
        let apis = vec![api(
            "/club",
            vec![
                op("/books", "get", "list"),
                op("/books/{isbn}", "get", "one"),
                op("/books/new", "get", "new"),
                op("/books", "post", "add"),
            ],
        )];
        let m = find(&apis, &req("/club/books/123"), "get").unwrap();
        assert_eq!(m.operation.unwrap().target.action, "one");
        assert_eq!(m.rest, "");
        let m = find(&apis, &req("/club/books/new"), "get").unwrap();
        assert_eq!(m.operation.unwrap().target.action, "new");
        let m = find(&apis, &req("/club/books/1/pages/2"), "get").unwrap();
        assert_eq!(m.operation.unwrap().target.action, "one");
        assert_eq!(m.rest, "/pages/2");
        let m = find(&apis, &req("/club/books"), "post").unwrap();
        assert_eq!(m.operation.unwrap().target.action, "add");
        let m = find(&apis, &req("/club/books/1"), "post").unwrap();
        assert!(
            m.operation.is_none(),
            "the verb is looked for on the chosen path only"
        );
        assert!(find(&apis, &req("/other"), "get").is_none());
        assert!(find(&apis, &req("/club"), "get").is_none());
    }

    #[test]
    fn root_paths() {
        let apis = vec![api("/", vec![op("/", "get", "root")])];
        let m = find(&apis, &req("/anything/below"), "get").unwrap();
        assert_eq!(m.operation.unwrap().target.action, "root");
        assert_eq!(m.rest, "/anything/below");
        assert_eq!(full_path("/", "/x"), "/x");
        assert_eq!(full_path("/a/", "/"), "/a");
    }

    #[test]
    fn shapes() {
        assert!(same_shape("/a/{x}", "/a/{y}"));
        assert!(!same_shape("/a/{x}", "/a/b"));
        assert!(same_shape("/a/b/", "/a/b"));
    }
}
