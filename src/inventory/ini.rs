//! The Ansible INI inventory, read as Ansible's `ini` plugin reads it: lines before any
//! section are hosts of `ungrouped`; `[group]` lists hosts (a host pattern — a name,
//! ranges like `web[01:20]` or `db-[a:f]`, an optional `:port` — then `key=value`
//! variables, split like a shell line: quotes group words and are removed, `#` starts a
//! comment); `[group:vars]` holds one `key=value` per line (everything after the first
//! `=` is the value; a value in quotes loses them; a `#` after whitespace starts a
//! comment); `[group:children]` names child groups, one per line. `all` and `ungrouped`
//! always exist. As in Ansible, a `[group:vars]` or `:children` entry naming a group that
//! no `[group]` or `[group:children]` section declares is an error. Lines starting with
//! `#` or `;` are comments. Resolution (precedence, `ansible_*` variables, labels) is
//! `ansible::Model::resolve`'s. Pure: works on text already read.

use std::collections::HashSet;

use super::ansible::{Model, Value, Var, ALL, GROUP_NAME, UNGROUPED};
use super::names::{shown, Bad, HOST_NAME};
use super::ranges;
use super::Inventory;
use crate::diag::{InputError, Pos};
use crate::spec::source::SourceFile;

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
    let mut model = Model::default();
    let mut declared: HashSet<String> = [ALL, UNGROUPED].iter().map(|s| s.to_string()).collect();
    // `[g:vars]` sections and `:children` entries, checked against `declared` at the end.
    let mut vars_sections: Vec<(String, Pos)> = Vec::new();
    let mut child_refs: Vec<(String, String, Pos)> = Vec::new();
    let mut section = Section::Hosts(UNGROUPED.to_string());
    for (i, raw_line) in src.text.lines().enumerate() {
        let indent = raw_line.len() - raw_line.trim_start().len();
        let line = raw_line.trim();
        let pos_at = |byte: usize| Pos {
            line: i + 1,
            col: indent + byte + 1,
        };
        let pos = pos_at(0);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let (name, kind) = header(line).map_err(|b| err(pos, b))?;
            GROUP_NAME.check(name).map_err(|b| err(pos_at(1), b))?;
            section = match kind {
                None => Section::Hosts(name.to_string()),
                Some("vars") => Section::Vars(name.to_string()),
                Some("children") => Section::Children(name.to_string()),
                Some(kind) => {
                    return Err(err(
                        pos,
                        Bad::new(
                            format!("section [{name}:{kind}] has the unknown type `{kind}`"),
                            "sections are [group], [group:vars] and [group:children]",
                        ),
                    ))
                }
            };
            match &section {
                Section::Vars(g) => vars_sections.push((g.clone(), pos)),
                Section::Hosts(g) | Section::Children(g) => {
                    declared.insert(g.clone());
                }
            }
            model.declare(name);
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                if line == "---" {
                    return Err(err(
                        pos,
                        Bad::new(
                            "`---` starts a YAML document, not an INI host line",
                            "a YAML inventory's file name must end in .yml or .yaml",
                        ),
                    ));
                }
                let words = split_words(line).map_err(|(at, b)| err(pos_at(at), b))?;
                let Some((pattern, _)) = words.first() else {
                    continue; // only a comment
                };
                let expanded = ranges::expand(pattern).map_err(|b| err(pos, b))?;
                let mut vars = Vec::new();
                if let Some(port) = expanded.port {
                    vars.push(Var {
                        key: "ansible_port".into(),
                        value: Value::Int(i64::from(port)),
                        pos,
                    });
                }
                for (word, at) in &words[1..] {
                    let at = pos_at(*at);
                    match word.split_once('=') {
                        Some((k, v)) if !k.is_empty() => vars.push(Var {
                            key: k.to_string(),
                            value: Value::Text(unquote(v).to_string()),
                            pos: at,
                        }),
                        _ => {
                            return Err(err(
                                at,
                                Bad::new(
                                    format!("{} is not key=value", shown(word)),
                                    "write host variables like ansible_host=10.0.0.1, after the host name",
                                ),
                            ))
                        }
                    }
                }
                for name in &expanded.names {
                    HOST_NAME.check(name).map_err(|b| err(pos, b))?;
                    model.host(name, pos, group, vars.clone());
                }
            }
            Section::Vars(group) => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(err(
                        pos,
                        Bad::new(
                            format!("{} is not key=value", shown(line)),
                            "a [group:vars] section holds one key=value per line",
                        ),
                    ));
                };
                let (k, v) = (k.trim(), strip_comment(v.trim()));
                if k.is_empty() || k.chars().any(char::is_whitespace) {
                    return Err(err(
                        pos,
                        Bad::new(
                            format!("{} has no variable name before '='", shown(line)),
                            "write key=value, with a name without spaces",
                        ),
                    ));
                }
                model.group_vars(
                    group,
                    [Var {
                        key: k.to_string(),
                        value: Value::Text(unquote(v).to_string()),
                        pos,
                    }],
                );
            }
            Section::Children(group) => {
                let child = strip_comment(line);
                if child.chars().any(char::is_whitespace) {
                    return Err(err(
                        pos,
                        Bad::new(
                            format!("{} is not a group name", shown(line)),
                            "a [group:children] section names one group per line",
                        ),
                    ));
                }
                GROUP_NAME.check(child).map_err(|b| err(pos, b))?;
                if child == ALL {
                    return Err(err(
                        pos,
                        Bad::new(
                            "`all` cannot be a child group",
                            "every group is already under `all`; remove this line",
                        ),
                    ));
                }
                child_refs.push((group.clone(), child.to_string(), pos));
                model.child(group, child, pos);
            }
        }
    }
    for (group, pos) in &vars_sections {
        if !declared.contains(group) {
            return Err(err(
                *pos,
                Bad::new(
                    format!("section [{group}:vars] is for a group no section declares"),
                    format!("declare the group with a [{group}] or [{group}:children] section, or fix the name"),
                ),
            ));
        }
    }
    for (parent, child, pos) in &child_refs {
        if !declared.contains(child) {
            return Err(err(
                *pos,
                Bad::new(
                    format!(
                        "section [{parent}:children] names `{child}`, a group no section declares"
                    ),
                    format!(
                        "declare it with a [{child}] section (it may be empty), or fix the name"
                    ),
                ),
            ));
        }
    }
    model.resolve(src)
}

/// `[name]` or `[name:kind]`, then nothing but whitespace or a `#` comment.
fn header(line: &str) -> Result<(&str, Option<&str>), Bad> {
    let bad = || {
        Bad::new(
            format!("{} is not a section header", shown(line)),
            "write [group], [group:vars] or [group:children], without spaces inside the brackets",
        )
    };
    let close = line.find(']').ok_or_else(bad)?;
    let rest = line[close + 1..].trim_start();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return Err(bad());
    }
    let inner = &line[1..close];
    let (name, kind) = match inner.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (inner, None),
    };
    let word = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == ':');
    if !word(name) || kind.is_some_and(|k| !word(k)) {
        return Err(bad());
    }
    Ok((name, kind))
}

/// A value without a trailing ` # comment` (a `#` after whitespace, outside quotes).
fn strip_comment(v: &str) -> &str {
    let mut quote = None;
    let mut prev_space = false;
    for (i, c) in v.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if prev_space => return v[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    v
}

/// A value wholly in matching quotes, without them (as Python's `literal_eval` reads a
/// string literal in Ansible); anything else as it is.
fn unquote(v: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            if !inner.contains(q) {
                return inner;
            }
        }
    }
    v
}

/// A host line's words with the byte offset each starts at, split as POSIX `shlex` does
/// with comments on (Ansible's `shlex_split(line, comments=True)`): whitespace separates,
/// `'…'` is literal, `"…"` allows `\"` and `\\`, a backslash outside quotes escapes the
/// next character, and an unquoted `#` ends the line.
fn split_words(line: &str) -> Result<Vec<(String, usize)>, (usize, Bad)> {
    let mut words = Vec::new();
    let mut cur: Option<(String, usize)> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(cur.take()),
            '#' => break,
            '\\' => {
                let Some((_, next)) = chars.next() else {
                    return Err((
                        i,
                        Bad::new(
                            "the line ends in a lone '\\'",
                            "remove it, or quote the value",
                        ),
                    ));
                };
                cur.get_or_insert((String::new(), i)).0.push(next);
            }
            '\'' | '"' => {
                let word = &mut cur.get_or_insert((String::new(), i)).0;
                loop {
                    match chars.next() {
                        None => {
                            return Err((
                                i,
                                Bad::new(
                                    format!("the quote {c} opened here is never closed"),
                                    "close the quote, or escape it with '\\'",
                                ),
                            ))
                        }
                        Some((_, q)) if q == c => break,
                        Some((_, '\\')) if c == '"' => match chars.peek() {
                            Some(&(_, e @ ('"' | '\\'))) => {
                                word.push(e);
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        Some((_, ch)) => word.push(ch),
                    }
                }
            }
            c => cur.get_or_insert((String::new(), i)).0.push(c),
        }
    }
    words.extend(cur);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<(String, usize)> {
        split_words(line).unwrap()
    }

    #[test]
    fn splits_like_shlex() {
        let w = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
            v.iter().map(|(s, i)| (s.to_string(), *i)).collect()
        };
        assert_eq!(words("a  b=c"), w(&[("a", 0), ("b=c", 3)]));
        assert_eq!(
            words("h x='a b' y=\"c\\\"d\""),
            w(&[("h", 0), ("x=a b", 2), ("y=c\"d", 10)])
        );
        assert_eq!(words("h v=a#b c"), w(&[("h", 0), ("v=a", 2)]));
        assert_eq!(words("h v='a#b' # c"), w(&[("h", 0), ("v=a#b", 2)]));
        assert_eq!(words("h v=a\\ b"), w(&[("h", 0), ("v=a b", 2)]));
        assert_eq!(
            words("h v=\"'03#pa33w0rd'\""),
            w(&[("h", 0), ("v='03#pa33w0rd'", 2)])
        );
        assert_eq!(
            split_words("h v='abc").unwrap_err().1.message,
            "the quote ' opened here is never closed"
        );
        assert_eq!(split_words("h v='abc").unwrap_err().0, 4);
    }

    #[test]
    fn values_and_headers() {
        assert_eq!(unquote("'03#pa33w0rd'"), "03#pa33w0rd");
        assert_eq!(unquote("\"x\""), "x");
        assert_eq!(unquote("'a'b'"), "'a'b'");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(strip_comment("8080 # all members"), "8080");
        assert_eq!(strip_comment("a#b"), "a#b");
        assert_eq!(strip_comment("'x # y' # z"), "'x # y'");
        assert_eq!(header("[web] # c").unwrap(), ("web", None));
        assert_eq!(header("[web:vars]").unwrap(), ("web", Some("vars")));
        assert!(header("[web servers]").is_err());
        assert!(header("[web]x").is_err());
        assert!(header("[web").is_err());
        assert!(header("[:vars]").is_err());
    }
}
