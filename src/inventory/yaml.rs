//! The Ansible YAML inventory (`.yml`, `.yaml`; `.json` too, which YAML reads), as
//! Ansible's `yaml` plugin reads it: the top level maps group names (usually just `all`)
//! to groups; a group is empty or a mapping of `hosts` (host patterns, as in INI: ranges
//! and `:port`, each mapping to its variables or nothing), `vars` and `children` (child
//! group names, each mapping to a group). Other keys in a group are errors (Ansible skips
//! them with a warning: a misspelt `host:` would lose its hosts).
//!
//! Parsed with `saphyr` (pure Rust, YAML 1.2, maintained): its nodes carry their line
//! and column, so every error here names file:line:col. YAML 1.2 reads `yes`/`no` as
//! strings, where Ansible's YAML 1.1 reads booleans; `ansible_become` accepts both, and a
//! label keeps the text. Anchors and aliases work; merge keys (`<<`) do not (YAML 1.2 has
//! none). Resolution is `ansible::Model::resolve`'s. Pure: works on text already read.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::ansible::{Model, Value, Var, GROUP_NAME};
use super::names::{shown, Bad, HOST_NAME};
use super::ranges;
use super::Inventory;
use crate::diag::{InputError, Pos};
use crate::spec::source::SourceFile;

type Node<'a> = MarkedYaml<'a>;
/// A mapping's keys and values (`None`: no value, as null).
type Entries<'n, 'a> = Vec<(&'n Node<'a>, Option<&'n Node<'a>>)>;

/// Where a node starts.
fn pos(n: &Node) -> Pos {
    let m = n.span.start;
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

struct Reader<'s> {
    src: &'s SourceFile,
    model: Model,
}

pub(crate) fn parse(src: &SourceFile) -> Result<Inventory, InputError> {
    let docs = Node::load_from_str(&src.text).map_err(|e| {
        let m = e.marker();
        InputError::in_file(&src.path, format!("YAML syntax: {}", e.info()))
            .at(Pos {
                line: m.line(),
                col: m.col() + 1,
            })
            .help("fix the YAML syntax; an Ansible YAML inventory maps group names to hosts, vars and children")
    })?;
    let mut r = Reader {
        src,
        model: Model::default(),
    };
    if let Some(second) = docs.get(1) {
        return Err(r.err(
            second,
            Bad::new(
                "the file holds more than one YAML document",
                "an inventory is one document: remove the second `---` and what follows, or merge them",
            ),
        ));
    }
    match docs.first().map(|d| &d.data) {
        None | Some(YamlData::BadValue) | Some(YamlData::Value(Scalar::Null)) => {}
        Some(_) => {
            let root = &docs[0];
            let top = r.mapping(root, || {
                Bad::new(
                    "the inventory is not a mapping of groups",
                    "start with `all:`, then `hosts:`, `vars:` and `children:` under it",
                )
            })?;
            if let Some((k, _)) = top.iter().find(
                |(k, _)| matches!(&k.data, YamlData::Value(Scalar::String(s)) if s == "plugin"),
            ) {
                return Err(r.err(
                    k,
                    Bad::new(
                        "this is an inventory plugin's configuration, not an inventory",
                        "wavectl reads static inventories: write one out with `ansible-inventory -i FILE --list --yaml > hosts.yml`",
                    ),
                ));
            }
            for (k, v) in top {
                let name = r.group_name(k)?;
                r.group(&name, v)?;
            }
        }
    }
    r.model.resolve(src)
}

impl<'s> Reader<'s> {
    fn err(&self, at: &Node, b: Bad) -> InputError {
        InputError::in_file(&self.src.path, b.message)
            .at(pos(at))
            .help(b.help)
    }

    /// The entries of a mapping node (a value of `None` is empty); an empty (null) node
    /// has none.
    fn mapping<'n, 'a>(
        &self,
        n: &'n Node<'a>,
        bad: impl FnOnce() -> Bad,
    ) -> Result<Entries<'n, 'a>, InputError> {
        match &n.data {
            YamlData::Mapping(m) => Ok(m.iter().map(|(k, v)| (k, Some(v))).collect()),
            YamlData::Value(Scalar::Null) => Ok(Vec::new()),
            _ => Err(self.err(n, bad())),
        }
    }

    /// A group's `hosts:`, `children:` or `vars:`: a mapping, or (as Ansible allows) one
    /// name alone, a key without a value.
    fn section<'n, 'a>(
        &self,
        n: &'n Node<'a>,
        bad: impl FnOnce() -> Bad,
    ) -> Result<Entries<'n, 'a>, InputError> {
        match &n.data {
            YamlData::Value(Scalar::String(_)) => Ok(vec![(n, None)]),
            _ => self.mapping(n, bad),
        }
    }

    /// A mapping key as text (a number or boolean as written in YAML 1.2 core form).
    fn key(&self, k: &Node) -> Result<String, InputError> {
        match &k.data {
            YamlData::Value(s) => match scalar_text(s) {
                Some(t) if !t.is_empty() => Ok(t),
                _ => Err(self.err(k, Bad::new("a key is empty", "give every key a name"))),
            },
            _ => Err(self.err(
                k,
                Bad::new(
                    "a key is a list or a mapping",
                    "keys are names: host patterns, group names, variable names",
                ),
            )),
        }
    }

    fn group_name(&self, k: &Node) -> Result<String, InputError> {
        let name = self.key(k)?;
        GROUP_NAME.check(&name).map_err(|b| self.err(k, b))?;
        Ok(name)
    }

    fn group(&mut self, name: &str, n: Option<&Node>) -> Result<(), InputError> {
        self.model.declare(name);
        let Some(n) = n else {
            return Ok(());
        };
        let entries = self.mapping(n, || {
            Bad::new(
                format!("group `{name}` is not a mapping"),
                "a group holds `hosts:`, `vars:` and `children:` (or nothing)",
            )
        })?;
        for (k, v) in entries {
            let section = self.key(k)?;
            let Some(v) = v else {
                continue;
            };
            match section.as_str() {
                "hosts" => self.hosts(name, v)?,
                "vars" => {
                    let vars = self.vars(v, &format!("vars of group `{name}`"))?;
                    self.model.group_vars(name, vars);
                }
                "children" => {
                    let children = self.section(v, || {
                        Bad::new(
                            format!("children of group `{name}` are not a mapping"),
                            "write each child group as a key ending in ':', under `children:`",
                        )
                    })?;
                    for (ck, cv) in children {
                        let child = self.group_name(ck)?;
                        if child == super::ansible::ALL {
                            return Err(self.err(
                                ck,
                                Bad::new(
                                    "`all` cannot be a child group",
                                    "every group is already under `all`; remove it here",
                                ),
                            ));
                        }
                        self.model.child(name, &child, pos(ck));
                        self.group(&child, cv)?;
                    }
                }
                other => {
                    return Err(self.err(
                        k,
                        Bad::new(
                            format!("group `{name}` has the unknown key {}", shown(other)),
                            "a group holds only `hosts:`, `vars:` and `children:`",
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    fn hosts(&mut self, group: &str, n: &Node) -> Result<(), InputError> {
        let entries = self.section(n, || {
            Bad::new(
                format!("hosts of group `{group}` are not a mapping"),
                "write each host as a key ending in ':' (`web1.example.com:`), its variables under it",
            )
        })?;
        for (k, v) in entries {
            let pattern = self.key(k)?;
            let at = pos(k);
            let expanded = ranges::expand(&pattern).map_err(|b| self.err(k, b))?;
            let mut vars = Vec::new();
            if let Some(port) = expanded.port {
                vars.push(Var {
                    key: "ansible_port".into(),
                    value: Value::Int(i64::from(port)),
                    pos: at,
                });
            }
            if let Some(v) = v {
                vars.extend(self.vars(v, &format!("variables of host `{pattern}`"))?);
            }
            for name in &expanded.names {
                HOST_NAME.check(name).map_err(|b| self.err(k, b))?;
                self.model.host(name, at, group, vars.clone());
            }
        }
        Ok(())
    }

    fn vars(&self, n: &Node, what: &str) -> Result<Vec<Var>, InputError> {
        let entries = self.section(n, || {
            Bad::new(
                format!("{what} are not a mapping"),
                "write each variable as `name: value`",
            )
        })?;
        let mut vars = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key = self.key(k)?;
            if key == "<<" {
                return Err(self.err(
                    k,
                    Bad::new(
                        "YAML merge keys (`<<`) are not supported",
                        "write the variables out, or put them in a group's vars",
                    ),
                ));
            }
            vars.push(Var {
                key,
                value: v.map_or(Value::Null, value),
                pos: pos(v.unwrap_or(k)),
            });
        }
        Ok(vars)
    }
}

fn scalar_text(s: &Scalar) -> Option<String> {
    match s {
        Scalar::Null => None,
        Scalar::Boolean(b) => Some(b.to_string()),
        Scalar::Integer(n) => Some(n.to_string()),
        Scalar::FloatingPoint(f) => Some(f.to_string()),
        Scalar::String(s) => Some(s.to_string()),
    }
}

fn value(n: &Node) -> Value {
    match &n.data {
        YamlData::Value(Scalar::Null) => Value::Null,
        YamlData::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        YamlData::Value(Scalar::Integer(i)) => Value::Int(*i),
        YamlData::Value(s) => scalar_text(s).map_or(Value::Null, Value::Text),
        YamlData::Representation(text, _, _) => Value::Text(text.to_string()),
        YamlData::Sequence(_) => Value::Other("a list"),
        YamlData::Mapping(_) => Value::Other("a mapping"),
        YamlData::Tagged(tag, _) if tag.suffix == "vault" => Value::Other("vault-encrypted"),
        YamlData::Tagged(_, inner) => value(inner),
        YamlData::Alias(_) | YamlData::BadValue => Value::Other("not a value"),
    }
}
