//! An Ansible inventory as its INI or YAML reader found it — groups with their hosts,
//! children and variables, hosts with their variables, each where it was written — and
//! resolving it into hosts as Ansible does. Pure (but for [`refuse_vars_dirs`]).
//!
//! Resolution, as Ansible's:
//! - Every group is under `all`; a group that is nobody's child is a child of `all`. A
//!   host in no group but `all` is in `ungrouped`. A group among its own ancestors is an
//!   error.
//! - A group's depth is its longest path from `all` (`all` is 0). A host's variables are
//!   its groups' variables applied in the order (depth, `ansible_group_priority`
//!   (default 1), name), so a child group overrides its parents and `all` is overridden
//!   by everything; then the host's own variables, in the order written (the last wins).
//! - `ansible_host` (or `ansible_ssh_host`), `ansible_port` (`ansible_ssh_port`, or
//!   `name:port` in the host pattern), `ansible_user` (`ansible_ssh_user`) and
//!   `ansible_become` (Ansible's booleans: yes/no, true/false, on/off, 1/0, …) set the
//!   host's address, port, user and `become`; `ansible_become_user` must be `root` and
//!   `ansible_become_method` `sudo` (wavectl's host side needs root, through `sudo -n`).
//!   Other `ansible_*` variables are ignored.
//! - Every other variable with a scalar value becomes a label (its text: `30`, `true`,
//!   `pg main`); a null, list or mapping value makes none. The `group` label lists the
//!   host's groups but `all` and `ungrouped`, sorted, comma-separated (as Ansible's
//!   `group_names`); `group=NAME` matches any one of them (`Selector::matches`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::names::{check_address, check_label_value, check_port, Bad, NameRule, HOST_NAME};
use super::names::{LABEL_KEY, USER};
use super::{Host, Inventory};
use crate::diag::{InputError, Pos};
use crate::spec::source::SourceFile;

/// Groups every inventory has.
pub(crate) const ALL: &str = "all";
pub(crate) const UNGROUPED: &str = "ungrouped";

/// A group name: no whitespace, `,`, `:`, `=` or brackets, so it can sit in the `group`
/// label and in a `--limit` pattern.
pub(crate) const GROUP_NAME: NameRule = NameRule {
    what: "group name",
    first: |c| c.is_ascii_alphanumeric() || c == '_',
    rest: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
    max: 253,
    describe: "letters, digits, '_', '-' and '.', and starts with a letter, digit or '_'",
};

/// A variable's value, as far as wavectl reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A string, or a number or boolean kept as its text (INI values are all text).
    Text(String),
    Bool(bool),
    Int(i64),
    /// YAML `~` or an empty value: the variable is set to nothing.
    Null,
    /// What wavectl cannot read as one value: "a list", "a mapping", "vault-encrypted".
    /// Not a label.
    Other(&'static str),
}

impl Value {
    fn label_text(&self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(n) => Some(n.to_string()),
            Value::Null | Value::Other(_) => None,
        }
    }
}

/// One `key = value`, where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Var {
    pub key: String,
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Default)]
struct Group {
    vars: Vec<Var>,
    /// Child groups, with where each was named.
    children: Vec<(String, Pos)>,
}

#[derive(Debug)]
struct HostEntry {
    name: String,
    pos: Pos,
    /// Groups the host was listed in directly.
    groups: Vec<String>,
    vars: Vec<Var>,
}

/// An inventory as read, before resolution.
#[derive(Debug, Default)]
pub(crate) struct Model {
    groups: BTreeMap<String, Group>,
    hosts: Vec<HostEntry>,
    host_index: HashMap<String, usize>,
}

impl Model {
    /// Make sure `name` exists as a group.
    pub fn declare(&mut self, name: &str) {
        self.groups.entry(name.to_string()).or_default();
    }

    /// Variables of a group (declaring it).
    pub fn group_vars(&mut self, group: &str, vars: impl IntoIterator<Item = Var>) {
        self.groups
            .entry(group.to_string())
            .or_default()
            .vars
            .extend(vars);
    }

    /// `child` is a child of `parent` (both declared).
    pub fn child(&mut self, parent: &str, child: &str, pos: Pos) {
        self.declare(child);
        let g = self.groups.entry(parent.to_string()).or_default();
        if !g.children.iter().any(|(c, _)| c == child) {
            g.children.push((child.to_string(), pos));
        }
    }

    /// The host `name` is in `group`, with these variables (later ones win).
    pub fn host(&mut self, name: &str, pos: Pos, group: &str, vars: Vec<Var>) {
        self.declare(group);
        let i = match self.host_index.get(name) {
            Some(&i) => i,
            None => {
                self.hosts.push(HostEntry {
                    name: name.to_string(),
                    pos,
                    groups: Vec::new(),
                    vars: Vec::new(),
                });
                self.host_index
                    .insert(name.to_string(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        let h = &mut self.hosts[i];
        if !h.groups.iter().any(|g| g == group) {
            h.groups.push(group.to_string());
        }
        h.vars.extend(vars);
    }

    /// Resolve into hosts, in the order they were first listed. Errors point into `src`.
    pub fn resolve(mut self, src: &SourceFile) -> Result<Inventory, InputError> {
        let err = |pos: Pos, b: Bad| {
            InputError::in_file(&src.path, b.message)
                .at(pos)
                .help(b.help)
        };
        self.declare(ALL);
        self.declare(UNGROUPED);

        // Parents of each group; a group nobody names as a child is a child of `all`.
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, g) in &self.groups {
            for (child, _) in &g.children {
                parents
                    .entry(child.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
        for name in self.groups.keys() {
            if name != ALL && !parents.contains_key(name.as_str()) {
                parents.insert(name.as_str(), vec![ALL]);
            }
        }
        if let Some((pos, cycle)) = find_cycle(&self.groups) {
            return Err(err(
                pos,
                Bad::new(
                    format!("group `{}` is its own ancestor: {}", cycle[0], cycle.join(" → ")),
                    "a group cannot be a child of itself or of its descendants; remove one of these parent-child links",
                ),
            ));
        }
        let mut depth: HashMap<&str, usize> = HashMap::new();
        for name in self.groups.keys() {
            depth_of(name, &parents, &mut depth);
        }
        let mut priority: HashMap<&str, (i64, Pos)> = HashMap::new();
        for (name, g) in &self.groups {
            for v in g.vars.iter().filter(|v| v.key == "ansible_group_priority") {
                let p = int_value(&v.value).ok_or_else(|| {
                    err(
                        v.pos,
                        Bad::new(
                            format!(
                                "ansible_group_priority of group `{name}` is not a whole number"
                            ),
                            "write a whole number, e.g. ansible_group_priority=10",
                        ),
                    )
                })?;
                priority.insert(name.as_str(), (p, v.pos));
            }
        }

        let mut hosts = Vec::with_capacity(self.hosts.len());
        for entry in &self.hosts {
            HOST_NAME
                .check(&entry.name)
                .map_err(|b| err(entry.pos, b))?;
            // Every group the host is in: its own and all their ancestors.
            let mut groups: HashSet<&str> = HashSet::new();
            let mut todo: Vec<&str> = entry.groups.iter().map(String::as_str).collect();
            while let Some(g) = todo.pop() {
                if groups.insert(g) {
                    todo.extend(parents.get(g).into_iter().flatten().copied());
                }
            }
            groups.insert(ALL);
            if groups.iter().all(|g| *g == ALL || *g == UNGROUPED) {
                groups.insert(UNGROUPED);
            }
            let mut ordered: Vec<&str> = groups.iter().copied().collect();
            ordered.sort_by_key(|g| {
                (
                    depth.get(g).copied().unwrap_or(0),
                    priority.get(g).map_or(1, |p| p.0),
                    *g,
                )
            });
            let mut vars: BTreeMap<&str, &Var> = BTreeMap::new();
            for g in &ordered {
                for v in self
                    .groups
                    .get(*g)
                    .map(|g| g.vars.as_slice())
                    .unwrap_or(&[])
                {
                    vars.insert(v.key.as_str(), v);
                }
            }
            for v in &entry.vars {
                vars.insert(v.key.as_str(), v);
            }
            let mut host =
                build_host(&entry.name, vars.values().copied()).map_err(|(p, b)| err(p, b))?;
            let mut named: Vec<&str> = ordered
                .into_iter()
                .filter(|g| *g != ALL && *g != UNGROUPED)
                .collect();
            named.sort_unstable();
            if !named.is_empty() {
                host.labels.insert("group".to_string(), named.join(","));
            }
            hosts.push(host);
        }
        if hosts.is_empty() {
            return Err(src.err_file(
                "the inventory has no hosts",
                "list at least one host in a group",
            ));
        }
        Ok(Inventory {
            path: src.path.clone(),
            hosts,
        })
    }
}

/// A parent-child loop: where its last link was written, and the groups around it.
fn find_cycle(groups: &BTreeMap<String, Group>) -> Option<(Pos, Vec<String>)> {
    // Iterative colouring DFS: 1 = on the path, 2 = done.
    let mut colour: HashMap<&str, u8> = HashMap::new();
    for start in groups.keys() {
        if colour.contains_key(start.as_str()) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        colour.insert(start.as_str(), 1);
        while let Some(&mut (g, ref mut next)) = path.last_mut() {
            let children = groups.get(g).map(|g| g.children.as_slice()).unwrap_or(&[]);
            if let Some((child, pos)) = children.get(*next) {
                *next += 1;
                match colour.get(child.as_str()) {
                    Some(1) => {
                        let at = path
                            .iter()
                            .position(|(p, _)| *p == child.as_str())
                            .unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[at..].iter().map(|(p, _)| p.to_string()).collect();
                        cycle.push(child.clone());
                        return Some((*pos, cycle));
                    }
                    Some(_) => {}
                    None => {
                        colour.insert(child.as_str(), 1);
                        path.push((child.as_str(), 0));
                    }
                }
            } else {
                colour.insert(g, 2);
                path.pop();
            }
        }
    }
    None
}

/// The longest path from `all` to `g` (no cycles: checked before).
fn depth_of<'a>(
    g: &'a str,
    parents: &HashMap<&'a str, Vec<&'a str>>,
    memo: &mut HashMap<&'a str, usize>,
) -> usize {
    if g == ALL {
        return 0;
    }
    if let Some(&d) = memo.get(g) {
        return d;
    }
    let d = parents
        .get(g)
        .map(|ps| {
            ps.iter()
                .map(|p| depth_of(p, parents, memo) + 1)
                .max()
                .unwrap_or(1)
        })
        .unwrap_or(1);
    memo.insert(g, d);
    d
}

fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Ansible's `boolean()`: what `ansible_become` accepts.
fn bool_value(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        Value::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" | "0.0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn text_value(key: &str, v: &Value) -> Result<Option<String>, Bad> {
    match v {
        Value::Null => Ok(None),
        Value::Other(what) => Err(Bad::new(
            format!("{key} is {what}"),
            format!("write {key} as one plain value"),
        )),
        v => Ok(v.label_text()),
    }
}

/// One host from its merged variables.
fn build_host<'a>(name: &str, vars: impl Iterator<Item = &'a Var>) -> Result<Host, (Pos, Bad)> {
    let mut host = Host::named(name);
    // The `ansible_ssh_*` forms are older names of the same variables.
    let mut address: Option<&Var> = None;
    let mut port: Option<&Var> = None;
    let mut user: Option<&Var> = None;
    for v in vars {
        let at = |b: Bad| (v.pos, b);
        let k = v.key.as_str();
        match k {
            "ansible_host" | "ansible_ssh_host" => address = Some(v),
            "ansible_port" | "ansible_ssh_port" => port = Some(v),
            "ansible_user" | "ansible_ssh_user" => user = Some(v),
            "ansible_become" => {
                host.become_root = match &v.value {
                    Value::Null => false,
                    value => bool_value(value).ok_or_else(|| {
                        at(Bad::new(
                            format!("ansible_become {} is not a boolean", shown_value(value)),
                            "write true or false (Ansible also reads yes/no, on/off, 1/0)",
                        ))
                    })?,
                };
            }
            "ansible_become_user" => match text_value(k, &v.value).map_err(at)? {
                None => {}
                Some(u) if u == "root" => {}
                Some(u) => {
                    return Err(at(Bad::new(
                        format!("ansible_become_user `{u}` is not root"),
                        "wavectl's host side needs root: become root (remove ansible_become_user or set it to root)",
                    )))
                }
            },
            "ansible_become_method" => match text_value(k, &v.value).map_err(at)? {
                None => {}
                Some(m) if m == "sudo" => {}
                Some(m) => {
                    return Err(at(Bad::new(
                        format!("ansible_become_method `{m}` is not supported"),
                        "wavectl becomes root with `sudo -n` only: set ansible_become_method=sudo or remove it",
                    )))
                }
            },
            k if k.starts_with("ansible_") => {}
            k => {
                let Some(text) = v.value.label_text() else {
                    continue;
                };
                LABEL_KEY.check(k).map_err(at)?;
                check_label_value(k, &text).map_err(at)?;
                host.labels.insert(k.to_string(), text);
            }
        }
    }
    if let Some(v) = address {
        if let Some(a) = text_value(&v.key, &v.value).map_err(|b| (v.pos, b))? {
            check_address(&a).map_err(|b| (v.pos, b))?;
            host.address = a;
        }
    }
    if let Some(v) = port {
        let (k, at) = (&v.key, |b: Bad| (v.pos, b));
        host.port = match &v.value {
            Value::Null => None,
            value => {
                let n = int_value(value).ok_or_else(|| {
                    at(Bad::new(
                        format!("{k} {} is not a number", shown_value(value)),
                        "a port is a number from 1 to 65535",
                    ))
                })?;
                Some(check_port(n).map_err(at)?)
            }
        };
    }
    if let Some(v) = user {
        if let Some(u) = text_value(&v.key, &v.value).map_err(|b| (v.pos, b))? {
            USER.check(&u).map_err(|b| (v.pos, b))?;
            host.user = Some(u);
        }
    }
    Ok(host)
}

fn shown_value(v: &Value) -> String {
    match (v.label_text(), v) {
        (Some(t), _) => super::names::shown(&t),
        (None, Value::Other(what)) => format!("({what})"),
        (None, _) => "(empty)".to_string(),
    }
}

/// Ansible also reads `group_vars/` and `host_vars/` beside the inventory; wavectl does
/// not, so an inventory that has them is refused rather than read differently (an
/// `ansible_host` there would send wavectl to another machine).
pub(crate) fn refuse_vars_dirs(path: &Path) -> Result<(), InputError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for sub in ["group_vars", "host_vars"] {
        let d = dir.join(sub);
        if d.is_dir() {
            return Err(InputError::in_file(
                path,
                format!("{} is beside this inventory, and wavectl does not read it", d.display()),
            )
            .help(
                "wavectl reads only the inventory file itself: move the variables it needs (ansible_host, ansible_port, ansible_user, ansible_become, labels) into the inventory, or give wavectl an inventory in another directory",
            ));
        }
    }
    Ok(())
}
