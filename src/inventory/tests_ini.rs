//! Tests of the Ansible INI inventory: groups, children, vars, and exact errors.

use super::*;

fn load_ini(text: &str) -> (tempfile::TempDir, Result<Inventory, InputError>) {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hosts.ini");
    std::fs::write(&path, text).unwrap();
    let r = load(&path);
    (dir, r)
}

fn err(text: &str) -> String {
    let (dir, r) = load_ini(text);
    r.unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "T")
}

const INI: &str = "\
bastion ansible_host=10.0.9.9

# databases
[db]
db-1 ansible_host=10.0.0.11 ansible_port=2222 cluster=pg-main
db-2 ansible_host=10.0.0.12 ansible_user=postgres cluster='pg main'

[web]
web-1

[lon1]
db-1
web-1

[prod:children]
db
web

[db:vars]
ansible_user=root
role=db

[all:vars]
dc=eu
";

#[test]
fn groups_vars_and_children() {
    let (_dir, inv) = load_ini(INI);
    let inv = inv.unwrap();
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["bastion", "db-1", "db-2", "web-1"]);
    let b = inv.get("bastion").unwrap();
    assert_eq!(b.address, "10.0.9.9");
    assert_eq!(b.labels.get("group"), None);
    assert_eq!(b.labels.get("dc").map(String::as_str), Some("eu"));
    let d1 = inv.get("db-1").unwrap();
    assert_eq!(
        (d1.address.as_str(), d1.port, d1.user.as_deref()),
        ("10.0.0.11", Some(2222), Some("root"))
    );
    assert_eq!(
        d1.labels.get("group").map(String::as_str),
        Some("prod,db,lon1")
    );
    assert_eq!(
        d1.labels.get("cluster").map(String::as_str),
        Some("pg-main")
    );
    assert_eq!(d1.labels.get("role").map(String::as_str), Some("db"));
    let d2 = inv.get("db-2").unwrap();
    assert_eq!(
        d2.user.as_deref(),
        Some("postgres"),
        "host vars override group vars"
    );
    assert_eq!(
        d2.labels.get("cluster").map(String::as_str),
        Some("pg main")
    );
    let w = inv.get("web-1").unwrap();
    assert_eq!(
        (w.address.as_str(), w.port, w.user.as_ref()),
        ("web-1", None, None)
    );

    let pick = |sel: &[&str]| -> Vec<String> {
        let sel: Vec<String> = sel.iter().map(|s| s.to_string()).collect();
        crate::spec::select_hosts(&inv, &sel, &[])
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect()
    };
    assert_eq!(pick(&["group=lon1"]), ["db-1", "web-1"]);
    assert_eq!(pick(&["group=prod", "group=db"]), ["db-1", "db-2"]);
}

#[test]
fn ini_errors() {
    assert_eq!(
        err("[db]\ndb-[1:3]\n"),
        "T/hosts.ini:2:1: host range `db-[1:3]` is not supported\n  help: list each host on its own line"
    );
    assert_eq!(
        err("[db]\n  db-1 ansible_host=-oProxyCommand=x\n"),
        "T/hosts.ini:2:8: host address `-oProxyCommand=x` starts with '-'\n  \
         help: ssh would read it as an option; write the address without a leading '-'"
    );
    assert_eq!(
        err("[db]\ndb-1 ansible_port=ssh\n"),
        "T/hosts.ini:2:6: port `ssh` is not a number\n  help: a port is a number from 1 to 65535"
    );
    assert_eq!(
        err("[db]\ndb-1 oops\n"),
        "T/hosts.ini:2:6: `oops` is not key=value\n  help: write host variables like ansible_host=10.0.0.1"
    );
    assert_eq!(
        err("[db:meta]\n"),
        "T/hosts.ini:1:1: unknown section `[db:meta]`\n  \
         help: sections are [group], [group:vars] and [group:children]"
    );
    assert_eq!(
        err("# empty\n[db]\n"),
        "T/hosts.ini: the inventory has no hosts\n  help: list at least one host under a [group]"
    );
}

#[test]
fn yaml_is_refused() {
    let e = load(std::path::Path::new("inv.yml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "inv.yml: yml inventories are not supported\n  \
         help: write the inventory as TOML (inventory.toml) or as an Ansible INI file"
    );
}
