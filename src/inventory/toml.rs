//! The TOML inventory: `[defaults]` and `[[host]]` tables → validated hosts (`become`
//! in `[defaults]` or per host: commands run as root through `sudo -n`).
//! Pure: works on text already read.

use std::collections::BTreeMap;
use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use super::names::{check_address, check_label_value, check_port, Bad, HOST_NAME, LABEL_KEY, USER};
use super::{Host, HostKeyCheck, Inventory};
use crate::diag::InputError;
use crate::spec::source::SourceFile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    defaults: Option<RawDefaults>,
    #[serde(default)]
    host: Vec<RawHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    user: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    host_key_check: Option<HostKeyCheck>,
    #[serde(rename = "become")]
    become_root: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    address: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<Spanned<String>, Spanned<String>>,
    host_key_check: Option<HostKeyCheck>,
    #[serde(rename = "become")]
    become_root: Option<bool>,
}

/// Parse and validate a TOML inventory.
pub(crate) fn parse(src: &SourceFile) -> Result<Inventory, InputError> {
    let raw: RawInventory = src.parse()?;
    let at = |span: std::ops::Range<usize>| move |b: Bad| src.err(span.clone(), b.message, b.help);

    let (mut user, mut port, mut host_key_check) = (None, None, HostKeyCheck::Strict);
    let mut become_root = false;
    if let Some(d) = raw.defaults {
        if let Some(u) = d.user {
            USER.check(u.get_ref()).map_err(at(u.span()))?;
            user = Some(u.into_inner());
        }
        if let Some(p) = d.port {
            port = Some(check_port(*p.get_ref()).map_err(at(p.span()))?);
        }
        host_key_check = d.host_key_check.unwrap_or(host_key_check);
        become_root = d.become_root.unwrap_or(false);
    }

    let mut hosts = Vec::with_capacity(raw.host.len());
    // name → byte offset of its first definition, for duplicate errors.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for h in raw.host {
        let name_span = h.name.span();
        let name = h.name.into_inner();
        HOST_NAME.check(&name).map_err(at(name_span.clone()))?;
        if let Some(&first) = seen.get(&name) {
            return Err(src.err(
                name_span,
                format!(
                    "duplicate host `{name}` (first defined at line {})",
                    src.pos(first..first).line
                ),
                "give each [[host]] a unique name, or remove the duplicate",
            ));
        }
        seen.insert(name.clone(), name_span.start);

        let address = match h.address {
            Some(a) => {
                check_address(a.get_ref()).map_err(at(a.span()))?;
                a.into_inner()
            }
            None => name.clone(),
        };
        let port = match h.port {
            Some(p) => Some(check_port(*p.get_ref()).map_err(at(p.span()))?),
            None => port,
        };
        let user = match h.user {
            Some(u) => {
                USER.check(u.get_ref()).map_err(at(u.span()))?;
                Some(u.into_inner())
            }
            None => user.clone(),
        };
        let mut labels = BTreeMap::new();
        for (k, v) in h.labels {
            LABEL_KEY.check(k.get_ref()).map_err(at(k.span()))?;
            check_label_value(k.get_ref(), v.get_ref()).map_err(at(v.span()))?;
            labels.insert(k.into_inner(), v.into_inner());
        }
        hosts.push(Host {
            name,
            address,
            port,
            user,
            labels,
            host_key_check: h.host_key_check.unwrap_or(host_key_check),
            become_root: h.become_root.unwrap_or(become_root),
        });
    }
    if hosts.is_empty() {
        return Err(src.err_file(
            "the inventory has no hosts",
            "add at least one [[host]] table with a `name`",
        ));
    }
    Ok(Inventory {
        path: src.path.clone(),
        hosts,
    })
}
