//! Inventory: TOML (and, later, Ansible INI) → hosts with labels. Reads one file, no network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::InputError;
use crate::spec::source::SourceFile;

mod ini;
pub(crate) mod names;
mod toml;

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
}

/// Every host of one inventory file, in file order.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    pub hosts: Vec<Host>,
}

impl Inventory {
    pub fn get(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// Read and validate an inventory file: TOML when its name ends in `.toml`, else an
/// Ansible INI inventory.
pub fn load(path: &Path) -> Result<Inventory, InputError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "yml" | "yaml" | "json") {
        return Err(
            InputError::in_file(path, format!("{ext} inventories are not supported"))
                .help("write the inventory as TOML (inventory.toml) or as an Ansible INI file"),
        );
    }
    let src = SourceFile::read(path, "inventory")?;
    if ext == "toml" {
        toml::parse(&src)
    } else {
        ini::parse(&src)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ini;
