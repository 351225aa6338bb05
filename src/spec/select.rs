//! Label selectors (`key=value`) and choosing target hosts from an inventory,
//! for a spec's `[targets]` and for `purge --select`. Pure.

use std::collections::BTreeSet;

use super::{Located, Selector};
use crate::diag::{InputError, Pos};
use crate::inventory::{shown, Bad, Host, Inventory, LABEL_KEY};

const SELECTOR_HELP: &str = "write a label selector like \"role=db\"";

impl Selector {
    /// Parse `key=value` from the command line (errors name no file).
    pub fn parse(s: &str) -> Result<Selector, InputError> {
        Selector::parse_rule(s).map_err(|b| InputError::new(b.message).help(b.help))
    }

    /// Parse `key=value`; the caller places the error.
    pub(crate) fn parse_rule(s: &str) -> Result<Selector, Bad> {
        let Some((key, value)) = s.split_once('=') else {
            return Err(Bad::new(
                format!("selector {} is not key=value", shown(s)),
                SELECTOR_HELP,
            ));
        };
        if key.is_empty() {
            return Err(Bad::new(
                format!("selector {} has no key", shown(s)),
                SELECTOR_HELP,
            ));
        }
        if let Err(b) = LABEL_KEY.check(key) {
            return Err(Bad::new(
                format!("selector {} has an invalid key", shown(s)),
                b.help,
            ));
        }
        if value.is_empty() {
            return Err(Bad::new(
                format!("selector {} has no value", shown(s)),
                SELECTOR_HELP,
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Bad::new(
                format!("selector {} contains a control character", shown(s)),
                SELECTOR_HELP,
            ));
        }
        Ok(Selector {
            key: key.to_string(),
            value: value.to_string(),
        })
    }

    /// Whether `host` carries the label `key` with exactly `value`. The `group` label
    /// (from an Ansible inventory) lists groups comma-separated; any one matches.
    pub fn matches(&self, host: &Host) -> bool {
        match host.labels.get(&self.key) {
            Some(v) if self.key == "group" => v.split(',').any(|g| g == self.value),
            Some(v) => *v == self.value,
            None => false,
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Where the errors of `choose` go: a spec file (with positions) or the command line.
pub(crate) type MakeError<'a> = &'a dyn Fn(Option<Pos>, Bad) -> InputError;

/// The hosts matching every selector and not excluded, in inventory order.
/// `select_pos` / `exclude_pos` locate the lists themselves, for an empty result.
pub(crate) fn choose(
    inv: &Inventory,
    select: &[Located<Selector>],
    exclude: &[Located<String>],
    select_pos: Option<Pos>,
    err: MakeError,
) -> Result<Vec<Host>, InputError> {
    for sel in select {
        if !inv.hosts.iter().any(|h| sel.value.matches(h)) {
            return Err(err(sel.pos, no_match(inv, &sel.value)));
        }
    }
    for ex in exclude {
        if inv.get(&ex.value).is_none() {
            return Err(err(
                ex.pos,
                Bad::new(
                    format!(
                        "excluded host `{}` is not in {}",
                        ex.value,
                        inv.path.display()
                    ),
                    "remove it from the exclusions, or fix its spelling",
                ),
            ));
        }
    }
    let selected: Vec<&Host> = inv
        .hosts
        .iter()
        .filter(|h| select.iter().all(|s| s.value.matches(h)))
        .collect();
    if selected.is_empty() {
        return Err(err(
            select_pos,
            Bad::new(
                "no host matches all the selectors together",
                "a host is a target only if it matches every selector; drop or loosen one",
            ),
        ));
    }
    let targets: Vec<Host> = selected
        .into_iter()
        .filter(|h| !exclude.iter().any(|e| e.value == h.name))
        .cloned()
        .collect();
    if targets.is_empty() {
        return Err(err(
            exclude.first().and_then(|e| e.pos),
            Bad::new("every selected host is excluded", "exclude fewer hosts"),
        ));
    }
    Ok(targets)
}

/// A selector that matched nothing, with a hint built from the labels that exist.
fn no_match(inv: &Inventory, sel: &Selector) -> Bad {
    let values: BTreeSet<&str> = inv
        .hosts
        .iter()
        .filter_map(|h| h.labels.get(&sel.key))
        .map(String::as_str)
        .collect();
    let help = if values.is_empty() {
        let keys: BTreeSet<&str> = inv
            .hosts
            .iter()
            .flat_map(|h| h.labels.keys())
            .map(String::as_str)
            .collect();
        if keys.is_empty() {
            format!(
                "no host has a `{}` label; the inventory has no labels",
                sel.key
            )
        } else {
            format!(
                "no host has a `{}` label; labels in use: {}",
                sel.key,
                join(keys)
            )
        }
    } else {
        format!("`{}` values in use: {}", sel.key, join(values))
    };
    Bad::new(
        format!("selector `{sel}` matches no host in {}", inv.path.display()),
        help,
    )
}

fn join<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    if items.len() > 10 {
        format!("{}, ... ({} in all)", items[..10].join(", "), items.len())
    } else {
        items.join(", ")
    }
}

/// Choose hosts from command-line selectors (`purge --select role=db`) and exclusions;
/// errors name no file. An empty `select` means every host.
pub fn select_hosts(
    inv: &Inventory,
    select: &[String],
    exclude: &[String],
) -> Result<Vec<Host>, InputError> {
    let cli_err = |_: Option<Pos>, b: Bad| InputError::new(b.message).help(b.help);
    let select = select
        .iter()
        .map(|s| Selector::parse(s).map(|value| Located { value, pos: None }))
        .collect::<Result<Vec<_>, InputError>>()?;
    let exclude: Vec<Located<String>> = exclude
        .iter()
        .map(|e| Located {
            value: e.clone(),
            pos: None,
        })
        .collect();
    choose(inv, &select, &exclude, None, &cli_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn inv() -> Inventory {
        Inventory {
            path: PathBuf::from("inv.toml"),
            hosts: vec![
                Host::labelled("db-1", &[("role", "db"), ("dc", "lon1")]),
                Host::labelled("db-2", &[("role", "db"), ("dc", "ams1")]),
                Host::labelled("web-1", &[("role", "web"), ("dc", "lon1")]),
            ],
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn names(hosts: Vec<Host>) -> Vec<String> {
        hosts.into_iter().map(|h| h.name).collect()
    }

    #[test]
    fn selects_all_matching_in_inventory_order() {
        let inv = inv();
        assert_eq!(
            names(select_hosts(&inv, &[], &[]).unwrap()),
            ["db-1", "db-2", "web-1"]
        );
        let got = select_hosts(&inv, &strings(&["role=db"]), &strings(&["db-1"])).unwrap();
        assert_eq!(names(got), ["db-2"]);
        let got = select_hosts(&inv, &strings(&["dc=lon1", "role=db"]), &[]).unwrap();
        assert_eq!(names(got), ["db-1"]);
    }

    #[test]
    fn selector_syntax_errors() {
        let key_help = "a label key uses letters, digits, '_', '.', '/' and '-'";
        let cases = [
            ("role", "selector `role` is not key=value", SELECTOR_HELP),
            ("=db", "selector `=db` has no key", SELECTOR_HELP),
            (
                "ro le=db",
                "selector `ro le=db` has an invalid key",
                key_help,
            ),
            ("role=", "selector `role=` has no value", SELECTOR_HELP),
        ];
        for (s, message, help) in cases {
            let e = select_hosts(&inv(), &strings(&[s]), &[]).unwrap_err();
            assert_eq!(e, InputError::new(message).help(help), "{s:?}");
        }
    }

    #[test]
    fn selection_errors() {
        let err = |sel: &[&str], ex: &[&str]| {
            select_hosts(&inv(), &strings(sel), &strings(ex))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&["role=dbx"], &[]),
            "selector `role=dbx` matches no host in inv.toml\n  help: `role` values in use: db, web"
        );
        assert_eq!(
            err(&["rack=a1"], &[]),
            "selector `rack=a1` matches no host in inv.toml\n  \
             help: no host has a `rack` label; labels in use: dc, role"
        );
        assert_eq!(
            err(&[], &["db-9"]),
            "excluded host `db-9` is not in inv.toml\n  \
             help: remove it from the exclusions, or fix its spelling"
        );
        assert_eq!(
            err(&["role=web", "dc=ams1"], &[]),
            "no host matches all the selectors together\n  \
             help: a host is a target only if it matches every selector; drop or loosen one"
        );
        assert_eq!(
            err(&["role=web"], &["web-1"]),
            "every selected host is excluded\n  help: exclude fewer hosts"
        );
    }
}
