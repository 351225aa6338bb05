//! The Ansible INI inventory: `[group]` host lines with `key=value` vars, `[group:vars]`
//! and `[group:children]`. Groups become one `group` label (comma-separated, see
//! `Selector::matches`); `ansible_host`, `ansible_port`, `ansible_user` are honoured and
//! other host vars become labels. Pure: works on text already read.

use std::collections::{BTreeMap, HashMap};

use super::names::{check_address, check_label_value, check_port, Bad, HOST_NAME, LABEL_KEY, USER};
use super::{Host, HostKeyCheck, Inventory};
use crate::diag::{InputError, Pos};
use crate::spec::source::SourceFile;

/// Groups that every host is in; never a `group` label.
const IMPLICIT: [&str; 2] = ["all", "ungrouped"];

/// One `key=value`, where it was written.
type Var = (String, String, Pos);

#[derive(Default)]
struct Parsed {
    /// Host names in first-seen order, with their position, direct groups and vars.
    hosts: Vec<(String, Pos, Vec<String>, Vec<Var>)>,
    group_vars: HashMap<String, Vec<Var>>,
    /// child group → its parents.
    parents: HashMap<String, Vec<String>>,
}

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub(crate) fn parse(src: &SourceFile) -> Result<Inventory, InputError> {
    let err = |pos: Pos, b: Bad| {
        InputError::in_file(&src.path, b.message)
            .at(pos)
            .help(b.help)
    };
    let mut p = Parsed::default();
    let mut section = Section::Hosts("ungrouped".to_string());
    for (i, raw_line) in src.text.lines().enumerate() {
        let line = raw_line.trim();
        let pos = Pos {
            line: i + 1,
            col: raw_line.len() - raw_line.trim_start().len() + 1,
        };
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match header.split_once(':') {
                None => Section::Hosts(header.to_string()),
                Some((g, "vars")) => Section::Vars(g.to_string()),
                Some((g, "children")) => Section::Children(g.to_string()),
                Some(_) => {
                    return Err(err(
                        pos,
                        Bad::new(
                            format!("unknown section `[{header}]`"),
                            "sections are [group], [group:vars] and [group:children]",
                        ),
                    ))
                }
            };
            continue;
        }
        let words = split_words(line);
        match &section {
            Section::Hosts(group) => {
                let name = words.first().map(|w| w.0.clone()).unwrap_or_default();
                if name.contains('[') {
                    return Err(err(
                        pos,
                        Bad::new(
                            format!("host range `{name}` is not supported"),
                            "list each host on its own line",
                        ),
                    ));
                }
                HOST_NAME.check(&name).map_err(|b| err(pos, b))?;
                let vars =
                    parse_vars(words.get(1..).unwrap_or(&[]), pos).map_err(|(at, b)| err(at, b))?;
                let idx = match p.hosts.iter().position(|h| h.0 == name) {
                    Some(i) => i,
                    None => {
                        p.hosts.push((name, pos, Vec::new(), Vec::new()));
                        p.hosts.len() - 1
                    }
                };
                let h = &mut p.hosts[idx];
                if !h.2.contains(group) {
                    h.2.push(group.clone());
                }
                h.3.extend(vars);
            }
            Section::Vars(group) => {
                let vars = parse_vars(&words, pos).map_err(|(at, b)| err(at, b))?;
                p.group_vars.entry(group.clone()).or_default().extend(vars);
            }
            Section::Children(group) => {
                let child = line.to_string();
                p.parents.entry(child).or_default().push(group.clone());
            }
        }
    }
    let hosts = p
        .hosts
        .iter()
        .map(|(name, pos, groups, vars)| {
            build_host(&p, name, groups, vars).map_err(|(at, b)| err(at.unwrap_or(*pos), b))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        return Err(src.err_file(
            "the inventory has no hosts",
            "list at least one host under a [group]",
        ));
    }
    Ok(Inventory {
        path: src.path.clone(),
        hosts,
    })
}

/// A host line's words, with the column each starts at; quotes group words and are removed.
fn split_words(line: &str) -> Vec<(String, usize)> {
    let mut words = Vec::new();
    let mut cur: Option<(String, usize)> = None;
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.get_or_insert((String::new(), i)).0.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.get_or_insert((String::new(), i));
            }
            (None, c) if c.is_whitespace() => words.extend(cur.take()),
            (None, '#') if cur.is_none() => break,
            (None, c) => cur.get_or_insert((String::new(), i)).0.push(c),
        }
    }
    words.extend(cur);
    words
}

fn parse_vars(words: &[(String, usize)], line: Pos) -> Result<Vec<Var>, (Pos, Bad)> {
    words
        .iter()
        .map(|(w, col)| {
            let pos = Pos {
                line: line.line,
                col: line.col + col,
            };
            match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string(), pos)),
                _ => Err((
                    pos,
                    Bad::new(
                        format!("`{w}` is not key=value"),
                        "write host variables like ansible_host=10.0.0.1",
                    ),
                )),
            }
        })
        .collect()
}

/// Every group `g` is in, parents before children, `g` last.
fn with_ancestors(p: &Parsed, g: &str, out: &mut Vec<String>) {
    if out.iter().any(|x| x == g) {
        return;
    }
    out.push(g.to_string()); // placeholder first: stops cycles
    let at = out.len() - 1;
    for parent in p.parents.get(g).into_iter().flatten() {
        with_ancestors(p, parent, out);
    }
    let g = out.remove(at);
    out.push(g);
}

fn build_host(
    p: &Parsed,
    name: &str,
    direct: &[String],
    host_vars: &[Var],
) -> Result<Host, (Option<Pos>, Bad)> {
    let mut groups = Vec::new();
    for g in direct {
        with_ancestors(p, g, &mut groups);
    }
    let mut vars: Vec<&Var> = p.group_vars.get("all").into_iter().flatten().collect();
    for g in groups.iter().filter(|g| g.as_str() != "all") {
        vars.extend(p.group_vars.get(g).into_iter().flatten());
    }
    vars.extend(host_vars);

    let mut host = Host {
        name: name.to_string(),
        address: name.to_string(),
        port: None,
        user: None,
        labels: BTreeMap::new(),
        host_key_check: HostKeyCheck::Strict,
    };
    for (k, v, pos) in vars {
        let at = |b: Bad| (Some(*pos), b);
        match k.as_str() {
            "ansible_host" | "ansible_ssh_host" => {
                check_address(v).map_err(at)?;
                host.address = v.clone();
            }
            "ansible_port" | "ansible_ssh_port" => {
                let n = v.parse::<i64>().map_err(|_| {
                    at(Bad::new(
                        format!("port `{v}` is not a number"),
                        "a port is a number from 1 to 65535",
                    ))
                })?;
                host.port = Some(check_port(n).map_err(at)?);
            }
            "ansible_user" | "ansible_ssh_user" => {
                USER.check(v).map_err(at)?;
                host.user = Some(v.clone());
            }
            k if k.starts_with("ansible_") => {}
            k => {
                LABEL_KEY.check(k).map_err(at)?;
                check_label_value(k, v).map_err(at)?;
                host.labels.insert(k.to_string(), v.clone());
            }
        }
    }
    let named: Vec<&str> = groups
        .iter()
        .map(String::as_str)
        .filter(|g| !IMPLICIT.contains(g))
        .collect();
    if !named.is_empty() {
        host.labels.insert("group".to_string(), named.join(","));
    }
    Ok(host)
}
