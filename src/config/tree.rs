//! The raw config tree before it is typed: the TOML file, the `SWITCHBOARD_…__…`
//! environment overlay, and `*_file` secrets read into place.

use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat, Map, Value, ValueKind};
use switchboard_core::Issue;

/// Environment variables that configure switchboard but are not config keys.
const NOT_KEYS: &[&str] = &["SWITCHBOARD_CONFIG"];

/// Reads the TOML file and overlays the environment. The file's key spelling is kept: the
/// environment is upper-case, so its keys match the file's case-insensitively.
pub fn read(path: &Path, env: &[(String, String)]) -> Result<Map<String, Value>, Issue> {
    let text = std::fs::read_to_string(path).map_err(|e| Issue {
        path: path.display().to_string(),
        message: format!("cannot read the config file: {e}"),
    })?;
    read_str(&text, &path.display().to_string(), env)
}

/// [`read`] for TOML text already in memory; `origin` names it in messages.
pub fn read_str(
    text: &str,
    origin: &str,
    env: &[(String, String)],
) -> Result<Map<String, Value>, Issue> {
    let mut root = config::Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<Map<String, Value>>())
        .map_err(|e| toml_issue(text, origin, &e.to_string()))?;

    let overrides: Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("SWITCHBOARD_") && k.contains("__"))
        .filter(|(k, _)| !NOT_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in overrides.keys() {
        check_indexes(key)?;
    }
    if !overrides.is_empty() {
        let env_tree = config::Config::builder()
            .add_source(
                Environment::with_prefix("SWITCHBOARD")
                    .prefix_separator("_")
                    .separator("__")
                    .source(Some(overrides)),
            )
            .build()
            .and_then(|c| c.try_deserialize::<Map<String, Value>>())
            .map_err(|e| Issue {
                path: "environment".into(),
                message: e.to_string(),
            })?;
        merge_ignoring_case(&mut root, env_tree);
    }
    Ok(root)
}

/// A TOML error as an issue: named by the key on the line it points at when there is
/// one (`delivery.max_attempts: … (line 4, column 16)`), else by the file.
fn toml_issue(text: &str, origin: &str, error: &str) -> Issue {
    let position = error.split("at line ").nth(1).and_then(|rest| {
        let (line, rest) = rest.split_once(", column ")?;
        let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((
            line.trim().parse::<usize>().ok()?,
            column.parse::<usize>().ok()?,
        ))
    });
    if let Some((line, column)) = position
        && let Some(key) = key_at(text, line)
    {
        let what = error
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or(error);
        return Issue {
            path: key,
            message: format!("not valid TOML: {what} (line {line}, column {column})"),
        };
    }
    Issue {
        path: origin.to_owned(),
        message: format!("not valid TOML: {error}"),
    }
}

/// The dotted path of the key assigned on 1-based line `line` of TOML `text`, following
/// the `[table]` headers above it. Plain and quoted keys; `None` when the line assigns
/// nothing (the error is elsewhere, or inside a multi-line value).
fn key_at(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if i + 1 == line {
            let (key, _) = l.split_once('=')?;
            let key = dotted(key)?;
            return Some(join(&table, &key));
        }
        if let Some(header) = l.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let name = header.split(']').next()?;
            table = dotted(name)?;
        }
    }
    None
}

/// `a. "b c" .d` → `a.b c.d`; `None` for anything that is not a key.
fn dotted(key: &str) -> Option<String> {
    let parts: Option<Vec<String>> = key
        .split('.')
        .map(|p| {
            let p = p.trim();
            let unquoted = p.trim_matches(|c| c == '"' || c == '\'');
            let bare = unquoted
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            (!unquoted.is_empty() && (bare || p.starts_with(['"', '\''])))
                .then(|| unquoted.to_owned())
        })
        .collect();
    Some(parts?.join("."))
}

/// The largest array index an environment override may name (`…__SCOPES[2]`). The
/// config crate fills an array up to the index it is given, so
/// `SWITCHBOARD_SERVICES__X[99999999]__TYPE` would allocate gigabytes.
const MAX_ENV_INDEX: u64 = 1000;

/// Refuses an override whose key names an array index (`[n]`, `[-n]`) beyond
/// [`MAX_ENV_INDEX`] or not a number, naming the variable.
fn check_indexes(var: &str) -> Result<(), Issue> {
    let mut rest = var;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let inner = after.split(']').next().unwrap_or(after);
        let digits = inner.trim().strip_prefix('-').unwrap_or(inner.trim());
        let fits = digits.len() <= 4
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u64>().is_ok_and(|n| n <= MAX_ENV_INDEX);
        if !fits {
            return Err(Issue {
                path: var.to_owned(),
                message: format!(
                    "array index [{inner}] is not a number from -{MAX_ENV_INDEX} to {MAX_ENV_INDEX}"
                ),
            });
        }
        rest = &after[inner.len().min(after.len())..];
    }
    Ok(())
}

/// Overlays `over` onto `base`; a key of `over` replaces the key of `base` that equals it
/// ignoring ASCII case, keeping `base`'s spelling.
fn merge_ignoring_case(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        let existing = base
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&key))
            .cloned()
            .unwrap_or(key);
        match (base.get_mut(&existing), value.kind) {
            (
                Some(Value {
                    kind: ValueKind::Table(inner),
                    ..
                }),
                ValueKind::Table(over_inner),
            ) => {
                merge_ignoring_case(inner, over_inner);
            }
            (_, kind) => {
                base.insert(existing, Value::new(None, kind));
            }
        }
    }
}

/// Reads every `<secret>_file` named by `patterns` under `table` into `<secret>`.
/// Relative paths resolve against `$CREDENTIALS_DIRECTORY` when systemd set it.
/// `prefix` is the table's key path, for messages.
pub fn resolve_secret_files(
    table: &mut Map<String, Value>,
    patterns: &[&str],
    prefix: &str,
    credentials_dir: Option<&Path>,
    issues: &mut Vec<Issue>,
) {
    for pattern in patterns {
        let parts: Vec<&str> = pattern.split('.').collect();
        resolve_at(table, &parts, prefix, credentials_dir, issues);
    }
}

fn resolve_at(
    table: &mut Map<String, Value>,
    parts: &[&str],
    prefix: &str,
    credentials_dir: Option<&Path>,
    issues: &mut Vec<Issue>,
) {
    match parts {
        [] => {}
        [leaf] => {
            let file_key = format!("{leaf}_file");
            let Some(file_value) = table.remove(&file_key) else {
                return;
            };
            let path_key = join(prefix, &file_key);
            if table.contains_key(*leaf) {
                issues.push(Issue {
                    path: path_key,
                    message: format!("give either {leaf} or {file_key}, not both"),
                });
                return;
            }
            let Ok(file) = file_value.into_string() else {
                issues.push(Issue {
                    path: path_key,
                    message: "expected a file path".into(),
                });
                return;
            };
            let mut path = PathBuf::from(&file);
            if path.is_relative()
                && let Some(dir) = credentials_dir
            {
                path = dir.join(path);
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let secret = text.strip_suffix('\n').unwrap_or(&text);
                    let secret = secret.strip_suffix('\r').unwrap_or(secret);
                    table.insert(
                        (*leaf).to_owned(),
                        Value::new(None, ValueKind::String(secret.to_owned())),
                    );
                }
                Err(e) => issues.push(Issue {
                    path: path_key,
                    message: format!("cannot read {}: {e}", path.display()),
                }),
            }
        }
        [head, rest @ ..] => {
            let keys: Vec<String> = if *head == "*" {
                table.keys().cloned().collect()
            } else {
                vec![(*head).to_owned()]
            };
            for key in keys {
                if let Some(Value {
                    kind: ValueKind::Table(inner),
                    ..
                }) = table.get_mut(&key)
                {
                    resolve_at(inner, rest, &join(prefix, &key), credentials_dir, issues);
                }
            }
        }
    }
}

/// Joins key path segments with dots.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else if key.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml: &str) -> Map<String, Value> {
        config::Config::builder()
            .add_source(File::from_str(toml, FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn env_overrides_keep_file_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[services.web_chat]\ntype = \"smooch\"\n[services.web_chat.params]\nappId = \"file\"\n",
        )
        .unwrap();
        let env = vec![
            (
                "SWITCHBOARD_SERVICES__WEB_CHAT__PARAMS__APPID".into(),
                "env".into(),
            ),
            ("SWITCHBOARD_CONFIG".into(), "/elsewhere".into()),
            ("SWITCHBOARD_SERVER__LISTEN".into(), "127.0.0.1:9".into()),
        ];
        let root = read(&path, &env).unwrap();
        let v: serde_json::Value = Value::new(None, ValueKind::Table(root))
            .try_deserialize()
            .unwrap();
        assert_eq!(v["services"]["web_chat"]["params"]["appId"], "env");
        assert!(v["services"]["web_chat"]["params"].get("appid").is_none());
        assert_eq!(v["server"]["listen"], "127.0.0.1:9");
        assert!(v.get("config").is_none());
    }

    /// A number beyond TOML's integers was reported by file position only (issue 14,
    /// item 11).
    #[test]
    fn toml_errors_name_the_key() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[delivery]\nmax_attempts = 18446744073709551615\n";
        let err = read_str(text, "c.toml", &[]).unwrap_err();
        assert_eq!(err.path, "delivery.max_attempts", "{err}");
        assert!(err.message.starts_with("not valid TOML: "), "{err}");
        assert!(err.message.ends_with("(line 5, column 16)"), "{err}");
        let err = read_str(
            "[services.\"a\".params]\nport = 99999999999999999999\n",
            "c.toml",
            &[],
        )
        .unwrap_err();
        assert_eq!(err.path, "services.a.params.port", "{err}");
        let err = read_str("[server\n", "c.toml", &[]).unwrap_err();
        assert_eq!(err.path, "c.toml", "no key on that line: {err}");
    }

    /// `SWITCHBOARD_SERVICES__X[99999999]__TYPE=api` allocated ~9.6 GB and aborted
    /// (issue 14, item 9).
    #[test]
    fn huge_env_indexes_are_refused_by_name() {
        let var = "SWITCHBOARD_SERVICES__X[99999999]__TYPE";
        let err = read_str("", "config", &[(var.into(), "api".into())]).unwrap_err();
        assert_eq!(err.path, var);
        assert!(
            err.message.starts_with("array index [99999999] is not"),
            "{err}"
        );
        for bad in [
            "SWITCHBOARD_A__B[-5000]",
            "SWITCHBOARD_A__B[x]",
            "SWITCHBOARD_A__B[]",
        ] {
            assert!(
                read_str("", "config", &[(bad.into(), "1".into())]).is_err(),
                "{bad}"
            );
        }
        let ok = "SWITCHBOARD_SERVICES__X__PARAMS__SCOPES[1]";
        let root = read_str("", "config", &[(ok.into(), "read".into())]).unwrap();
        assert!(root.contains_key("services"));
    }

    #[test]
    fn secret_files_are_read_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let mut t = table(&format!(
            "password_file = \"{}\"\n[tokens.a]\ntoken_file = \"pw\"\n[tokens.b]\ntoken_file = \"missing\"\n",
            dir.path().join("pw").display()
        ));
        let mut issues = vec![];
        resolve_secret_files(
            &mut t,
            &["password", "tokens.*.token"],
            "services.x.params",
            Some(dir.path()),
            &mut issues,
        );
        assert_eq!(t["password"].clone().into_string().unwrap(), "s3cret");
        let Value {
            kind: ValueKind::Table(a),
            ..
        } = &t["tokens"]
        else {
            panic!()
        };
        let Value {
            kind: ValueKind::Table(a),
            ..
        } = &a["a"]
        else {
            panic!()
        };
        assert_eq!(a["token"].clone().into_string().unwrap(), "s3cret");
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0]
                .to_string()
                .starts_with("services.x.params.tokens.b.token_file: cannot read")
        );
    }
}
