//! Inventory: TOML, or an Ansible inventory (INI, YAML, or a dynamic inventory program)
//! → hosts with labels, ports, users and `become`. Reads one file (or runs one program
//! on the controller), no network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::InputError;
use crate::spec::source::SourceFile;

mod ansible;
mod dynamic;
mod ini;
pub(crate) mod names;
mod ranges;
mod toml;
mod yaml;

pub(crate) use names::{shown, Bad, LABEL_KEY};

/// How strictly a host's SSH key is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// The key must already be in known_hosts (the default).
    Strict,
    /// Unknown hosts are added on first contact; changed keys are refused.
    AcceptNew,
}

/// One server, as the inventory describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Host {
    /// The inventory name: `[A-Za-z0-9][A-Za-z0-9._-]*`.
    pub name: String,
    /// What ssh connects to: an address or an ssh_config alias (never starts with '-').
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub host_key_check: HostKeyCheck,
    /// `become = true` (Ansible: `ansible_become`): every remote command runs as root
    /// through `sudo -n` (see `remote::RemoteCommand::line_as`). Absent from the journal
    /// when false, so journals written before it read the same.
    #[serde(default, rename = "become", skip_serializing_if = "std::ops::Not::not")]
    pub become_root: bool,
}

/// Every host of one inventory file, in file order.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    pub hosts: Vec<Host>,
}

impl Host {
    /// A host reached by its name, with no labels and the defaults: port and user from
    /// ssh's config, strict host keys, no `become`.
    pub fn named(name: &str) -> Host {
        Host {
            name: name.to_string(),
            address: name.to_string(),
            port: None,
            user: None,
            labels: BTreeMap::new(),
            host_key_check: HostKeyCheck::Strict,
            become_root: false,
        }
    }

    /// [`named`](Self::named), with these labels (for tests).
    #[cfg(test)]
    pub fn labelled(name: &str, labels: &[(&str, &str)]) -> Host {
        Host {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Host::named(name)
        }
    }
}

impl Inventory {
    pub fn get(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// Read and validate an inventory file: TOML when its name ends in `.toml`, else an
/// Ansible dynamic inventory when it is executable (run with `--list`), an Ansible YAML
/// inventory for `.yml`, `.yaml` (and `.json`, which YAML reads), else an Ansible INI
/// inventory.
pub fn load(path: &Path) -> Result<Inventory, InputError> {
    if dynamic::is_program(path) {
        ansible::refuse_vars_dirs(path)?;
        return dynamic::load(path);
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let src = SourceFile::read(path, "inventory")?;
    match ext {
        "toml" => toml::parse(&src),
        "yml" | "yaml" | "json" => {
            ansible::refuse_vars_dirs(path)?;
            yaml::parse(&src)
        }
        _ => {
            ansible::refuse_vars_dirs(path)?;
            ini::parse(&src)
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ansible;
#[cfg(test)]
mod tests_dynamic;
#[cfg(test)]
mod tests_ini;
#[cfg(test)]
mod tests_yaml;
