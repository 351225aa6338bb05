//! An Ansible dynamic inventory: an executable file, run with `--list` (no shell; at
//! most 60 s and 64 MiB of output), whose JSON is read as Ansible's `script` inventory
//! plugin reads it — groups with `hosts`, `children` and `vars` (or a plain list of
//! hosts), `_meta.hostvars` — into the model the INI and YAML readers fill
//! (`ansible::Model`), resolved the same way (groups, precedence, `ansible_host`…).
//!
//! Stricter than Ansible: output without `_meta.hostvars` is refused (Ansible would run
//! the program again with `--host H` for every host), as is a group object with keys
//! other than `hosts`, `vars` and `children` (Ansible skips them), or with none of them
//! (Ansible reads that as a host named like the group). Errors name the program, and the
//! place in its output as a JSON path (`_meta.hostvars.web1.ansible_port`): its output
//! has no lines worth pointing at.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

use super::ansible::{Model, Value, Var, ALL, GROUP_NAME};
use super::names::{shown, Bad};
use super::Inventory;
use crate::child::{self, Ended};
use crate::diag::{InputError, Pos};
use crate::spec::source::SourceFile;

/// How long the program may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);
/// How much it may print.
pub(crate) const MAX_OUTPUT: usize = 64 << 20;
/// Lines of its standard error shown in an error.
const STDERR_LINES: usize = 20;

/// Whether `path` is a dynamic inventory: a regular file someone may execute (a TOML
/// inventory is always read as TOML).
pub(crate) fn is_program(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.extension().and_then(|e| e.to_str()) != Some("toml")
        && std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Run the program with `--list` and read its inventory.
pub(crate) fn load(path: &Path) -> Result<Inventory, InputError> {
    load_within(path, DEADLINE, MAX_OUTPUT)
}

pub(crate) fn load_within(
    path: &Path,
    deadline: Duration,
    max_output: usize,
) -> Result<Inventory, InputError> {
    // A bare name would be looked up in PATH: run the file that was named.
    let program = if path.is_absolute() || path.starts_with(".") {
        path.to_path_buf()
    } else {
        Path::new(".").join(path)
    };
    let list = format!("`{} --list`", path.display());
    let fail = |message: String, help: &str| InputError::in_file(path, message).help(help);
    let mut cmd = Command::new(&program);
    cmd.arg("--list");
    let limits = child::Limits {
        deadline,
        max_stdout: max_output,
        kill_on_overflow: true,
        stderr_tail: 16 << 10,
    };
    let out = child::run(&mut cmd, None, limits).map_err(|e| {
        fail(
            format!(
                "cannot run the inventory program {list}: {}",
                crate::spec::source::lower_io(&e)
            ),
            "the inventory is executable, so wavectl runs it as an Ansible dynamic inventory: \
             give it a `#!` line (a static inventory must not be executable: chmod -x it)",
        )
    })?;
    let stderr = match out.stderr_lines(STDERR_LINES) {
        s if s.is_empty() => String::new(),
        s => format!("; its stderr:\n{}", indent(&s)),
    };
    match out.ended {
        Ended::Exited(status) if status.success() => {}
        Ended::Exited(status) => {
            let how = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
                (Some(c), _) => format!("exited with code {c}"),
                (None, Some(s)) => format!("was killed by signal {s}"),
                _ => "failed".to_string(),
            };
            return Err(fail(
                format!("the inventory program {list} {how}{stderr}"),
                "run it by hand to see why; wavectl reads only what it prints with --list and exit code 0",
            ));
        }
        Ended::TimedOut => {
            return Err(fail(
                format!(
                    "the inventory program {list} did not finish within {}: killed{stderr}",
                    crate::units::duration(deadline)
                ),
                "make it answer faster (cache what it fetches), or write its output to a file once and give wavectl that file (`.json`)",
            ))
        }
        Ended::TooMuchOutput => {
            return Err(fail(
                format!(
                    "the inventory program {list} printed more than {} MiB: killed",
                    max_output >> 20
                ),
                "an inventory that large is not one wavectl reads; print only the hosts a rollout needs",
            ))
        }
    }
    let text = String::from_utf8(out.stdout).map_err(|e| {
        fail(
            format!(
                "the output of {list} is not UTF-8 (byte {}){stderr}",
                e.utf8_error().valid_up_to()
            ),
            "print the inventory as UTF-8 JSON",
        )
    })?;
    parse(path, &text).map_err(|e| match stderr.is_empty() {
        true => e,
        false => InputError {
            message: format!("{}{stderr}", e.message),
            ..e
        },
    })
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Read the JSON `path --list` printed. Pure.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Inventory, InputError> {
    let list = format!("`{} --list`", path.display());
    if text.trim().is_empty() {
        return Err(InputError::in_file(path, format!("the inventory program {list} printed nothing"))
            .help("an Ansible dynamic inventory prints one JSON object with --list: its groups and `_meta.hostvars`"));
    }
    let top: Json = serde_json::from_str(text).map_err(|e| {
        InputError::in_file(
            path,
            format!(
                "the output of {list} is not JSON: {} at line {} column {}",
                lower(&e.to_string().replace(&format!(" at line {} column {}", e.line(), e.column()), "")),
                e.line(),
                e.column()
            ),
        )
        .help("an Ansible dynamic inventory prints one JSON object with --list: its groups and `_meta.hostvars`")
    })?;
    let mut r = Reader {
        path,
        list: &list,
        places: Vec::new(),
        model: Model::default(),
        first_group: std::collections::HashMap::new(),
    };
    let Json::Object(top) = top else {
        return Err(r.fail(
            "",
            Bad::new(
                "is not a JSON object of groups",
                "print an object like {\"web\": {\"hosts\": [\"web1\"]}, \"_meta\": {\"hostvars\": {}}}",
            ),
        ));
    };
    for (name, data) in &top {
        if name != "_meta" {
            r.group(name, data)?;
        }
    }
    let hostvars = top
        .get("_meta")
        .and_then(|m| m.as_object())
        .and_then(|m| m.get("hostvars"));
    let Some(hostvars) = hostvars else {
        return Err(r.fail(
            "",
            Bad::new(
                "has no `_meta.hostvars` (Ansible would then run the program again with --host HOST for every host, which wavectl does not)",
                "print the hosts' variables with --list, under \"_meta\": {\"hostvars\": {HOST: {VAR: VALUE}}} (an empty {} when they have none)",
            ),
        ));
    };
    let Json::Object(hostvars) = hostvars else {
        return Err(r.fail(
            "_meta.hostvars",
            Bad::new(
                "is not an object",
                "map each host to an object of its variables",
            ),
        ));
    };
    for (host, vars) in hostvars {
        // As Ansible: variables of a host no group lists are not a host.
        let Some(group) = r.first_group.get(host).cloned() else {
            continue;
        };
        let place = format!("_meta.hostvars{}", key(host));
        let vars = r.vars(&place, vars)?;
        let pos = r.place(&place);
        r.model.host(host, pos, &group, vars);
    }
    let src = SourceFile {
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    let places = std::mem::take(&mut r.places);
    r.model.resolve(&src).map_err(|e| match e.pos {
        // A place of the output, not a line: name it.
        Some(p) => InputError {
            pos: None,
            message: format!(
                "`{}` in the output of {list}: {}",
                places
                    .get(p.line.wrapping_sub(1))
                    .map_or("?", String::as_str),
                e.message
            ),
            ..e
        },
        None => e,
    })
}

/// serde_json's messages start with a capital; ours are lowercase fragments (an
/// acronym like `EOF` stays).
fn lower(s: &str) -> String {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(f), Some(n)) if n.is_lowercase() => f.to_lowercase().chain([n]).chain(c).collect(),
        _ => s.to_string(),
    }
}

/// `.name`, or `["odd name"]` for a key that is not a plain word.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!(".{k}")
    } else {
        format!("[{}]", serde_json::to_string(k).unwrap_or_default())
    }
}

struct Reader<'a> {
    path: &'a Path,
    list: &'a str,
    /// The JSON paths of what the model holds: a `Pos` here is `line` = index + 1.
    places: Vec<String>,
    model: Model,
    /// The first group each host was listed in (its `_meta.hostvars` are added there).
    first_group: std::collections::HashMap<String, String>,
}

impl Reader<'_> {
    fn place(&mut self, place: &str) -> Pos {
        self.places.push(place.trim_start_matches('.').to_string());
        Pos {
            line: self.places.len(),
            col: 0,
        }
    }

    fn fail(&self, place: &str, b: Bad) -> InputError {
        let at = match place.trim_start_matches('.') {
            "" => format!("the output of {}", self.list),
            p => format!("`{p}` in the output of {}", self.list),
        };
        InputError::in_file(self.path, format!("{at} {}", b.message)).help(b.help)
    }

    fn group_name(&self, place: &str, name: &str) -> Result<(), InputError> {
        GROUP_NAME.check(name).map_err(|b| {
            self.fail(
                place,
                Bad::new(format!("names a bad group: {}", b.message), b.help),
            )
        })
    }

    fn group(&mut self, name: &str, data: &Json) -> Result<(), InputError> {
        let at = key(name);
        self.group_name(&at, name)?;
        self.model.declare(name);
        let (hosts, vars, children) = match data {
            Json::Array(_) => (Some(data), None, None),
            Json::Object(o) => {
                if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "hosts" | "vars" | "children")) {
                    return Err(self.fail(
                        &at,
                        Bad::new(
                            format!("has the unknown key {}", shown(k)),
                            "a group holds only `hosts` (a list), `vars` (an object) and `children` (a list); Ansible would skip the rest without a word",
                        ),
                    ));
                }
                if o.is_empty() {
                    return Err(self.fail(
                        &at,
                        Bad::new(
                            "is an empty object (Ansible would read it as a host named like the group)",
                            format!("write {{\"hosts\": []}} for an empty group, or {{\"hosts\": [{}]}} for a host", serde_json::to_string(name).unwrap_or_default()),
                        ),
                    ));
                }
                (o.get("hosts"), o.get("vars"), o.get("children"))
            }
            _ => {
                return Err(self.fail(
                    &at,
                    Bad::new(
                        "is neither a list of hosts nor an object",
                        "write a group as [\"host1\", \"host2\"] or {\"hosts\": [...], \"vars\": {...}, \"children\": [...]}",
                    ),
                ))
            }
        };
        let hosts_at = if matches!(data, Json::Array(_)) {
            at.clone()
        } else {
            format!("{at}.hosts")
        };
        for (i, host) in self
            .names(&hosts_at, hosts, "hosts")?
            .into_iter()
            .enumerate()
        {
            let pos = self.place(&format!("{hosts_at}[{i}]"));
            self.first_group
                .entry(host.clone())
                .or_insert_with(|| name.to_string());
            self.model.host(&host, pos, name, Vec::new());
        }
        if let Some(v) = vars {
            let vars = self.vars(&format!("{at}.vars"), v)?;
            self.model.group_vars(name, vars);
        }
        let children_at = format!("{at}.children");
        for (i, child) in self
            .names(&children_at, children, "children")?
            .into_iter()
            .enumerate()
        {
            let place = format!("{children_at}[{i}]");
            self.group_name(&place, &child)?;
            if child == ALL {
                return Err(self.fail(
                    &place,
                    Bad::new(
                        "makes `all` a child group",
                        "every group is already under `all`; leave it out of `children`",
                    ),
                ));
            }
            let pos = self.place(&place);
            self.model.child(name, &child, pos);
        }
        Ok(())
    }

    /// A list of names (`hosts` or `children`), or nothing.
    fn names(&self, at: &str, v: Option<&Json>, what: &str) -> Result<Vec<String>, InputError> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let bad = || {
            self.fail(
                at,
                Bad::new(
                    "is not a list of names",
                    format!("write `{what}` as a list of strings, like [\"name1\", \"name2\"]"),
                ),
            )
        };
        let Json::Array(items) = v else {
            return Err(bad());
        };
        items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect()
    }

    /// An object of variables.
    fn vars(&mut self, at: &str, v: &Json) -> Result<Vec<Var>, InputError> {
        let Json::Object(map) = v else {
            return Err(self.fail(
                at,
                Bad::new(
                    "is not an object",
                    "write variables as an object, like {\"role\": \"db\"}",
                ),
            ));
        };
        Ok(map
            .iter()
            .map(|(k, v)| Var {
                key: k.clone(),
                value: value(v),
                pos: self.place(&format!("{at}{}", key(k))),
            })
            .collect())
    }
}

fn value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Text(n.to_string()),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(_) => Value::Other("a list"),
        Json::Object(_) => Value::Other("a mapping"),
    }
}
