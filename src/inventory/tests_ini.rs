//! Tests of the Ansible INI inventory: groups, children, vars, precedence, and exact
//! errors.

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
        Some("db,lon1,prod")
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
fn precedence_follows_depth_then_priority_then_name() {
    // `zeta` is deeper than `alpha` (zeta's parent is mid, mid's parent is top): the
    // deeper group wins whatever the names; between `b1` and `b2` at one depth, the
    // later name wins unless ansible_group_priority says otherwise; host vars win over all.
    let (_dir, inv) = load_ini(
        "[top:children]\nmid\n[mid:children]\nzeta\n\
         [zeta]\nh1\nh2 v=host\n[alpha]\nh1\nh2\n[top]\n\
         [zeta:vars]\nv=zeta\n[alpha:vars]\nv=alpha\n[mid:vars]\nv=mid\n[all:vars]\nv=all\nw=all\n\
         [b1]\nh3\n[b2]\nh3\nh4\n[b1:vars]\nv=b1\n[b2:vars]\nv=b2\n\
         [p1]\nh4\n[p1:vars]\nv=p1\nansible_group_priority=5\n",
    );
    let inv = inv.unwrap();
    let v = |h: &str| inv.get(h).unwrap().labels.get("v").cloned().unwrap();
    assert_eq!(v("h1"), "zeta");
    assert_eq!(v("h2"), "host");
    assert_eq!(v("h3"), "b2");
    assert_eq!(v("h4"), "p1");
    assert_eq!(inv.get("h4").unwrap().labels.get("w").unwrap(), "all");
    assert_eq!(
        inv.get("h1").unwrap().labels.get("group").unwrap(),
        "alpha,mid,top,zeta"
    );
}

#[test]
fn host_vars_merge_over_lines_and_ports_come_from_the_pattern() {
    let (_dir, inv) = load_ini(
        "[a]\nweb1:2200 role=web\n[b]\nweb1 role=front ansible_port=2300\nweb2:2201 ansible_port=2400\n",
    );
    let inv = inv.unwrap();
    let w1 = inv.get("web1").unwrap();
    assert_eq!(
        (w1.port, w1.labels.get("role").unwrap().as_str()),
        (Some(2300), "front")
    );
    // On one line, an explicit ansible_port beats the pattern's.
    assert_eq!(inv.get("web2").unwrap().port, Some(2400));
}

#[test]
fn ini_errors() {
    assert_eq!(
        err("[db]\ndb-[3:1]\n"),
        "T/hosts.ini:2:1: host range [3:1] in `db-[3:1]`: it starts after its end\n  \
         help: write a range as [start:end] or [start:end:step], e.g. web[01:20].example.com or db-[a:f]"
    );
    assert_eq!(
        err("[db]\ndb-1:\n"),
        "T/hosts.ini:2:1: host pattern `db-1:` ends in ':'\n  \
         help: write a port after the ':' (host:2222), or remove the ':'"
    );
    assert_eq!(
        err("[db]\n  db-1 ansible_host=-oProxyCommand=x\n"),
        "T/hosts.ini:2:8: host address `-oProxyCommand=x` starts with '-'\n  \
         help: ssh would read it as an option; write the address without a leading '-'"
    );
    assert_eq!(
        err("[db]\ndb-1 ansible_port=ssh\n"),
        "T/hosts.ini:2:6: ansible_port `ssh` is not a number\n  help: a port is a number from 1 to 65535"
    );
    assert_eq!(
        err("[db]\ndb-1 oops\n"),
        "T/hosts.ini:2:6: `oops` is not key=value\n  \
         help: write host variables like ansible_host=10.0.0.1, after the host name"
    );
    assert_eq!(
        err("[db]\ndb-1 x='open\n"),
        "T/hosts.ini:2:8: the quote ' opened here is never closed\n  \
         help: close the quote, or escape it with '\\'"
    );
    assert_eq!(
        err("[db]\ndb-1 ansible_become=maybe\n"),
        "T/hosts.ini:2:6: ansible_become `maybe` is not a boolean\n  \
         help: write true or false (Ansible also reads yes/no, on/off, 1/0)"
    );
    assert_eq!(
        err("[db]\ndb-1 ansible_become=yes ansible_become_user=postgres\n"),
        "T/hosts.ini:2:25: ansible_become_user `postgres` is not root\n  \
         help: wavectl's host side needs root: become root (remove ansible_become_user or set it to root)"
    );
    assert_eq!(
        err("[db]\ndb-1\n[db:vars]\nansible_become_method=su\n"),
        "T/hosts.ini:4:1: ansible_become_method `su` is not supported\n  \
         help: wavectl becomes root with `sudo -n` only: set ansible_become_method=sudo or remove it"
    );
    assert_eq!(
        err("[db:meta]\n"),
        "T/hosts.ini:1:1: section [db:meta] has the unknown type `meta`\n  \
         help: sections are [group], [group:vars] and [group:children]"
    );
    assert_eq!(
        err("[web servers]\n"),
        "T/hosts.ini:1:1: `[web servers]` is not a section header\n  \
         help: write [group], [group:vars] or [group:children], without spaces inside the brackets"
    );
    assert_eq!(
        err("[web,db]\n"),
        "T/hosts.ini:1:2: group name `web,db` contains ','\n  \
         help: a group name uses letters, digits, '_', '-' and '.', and starts with a letter, digit or '_'"
    );
    assert_eq!(
        err("[web]\nw1\n[dbs:vars]\nx=1\n"),
        "T/hosts.ini:3:1: section [dbs:vars] is for a group no section declares\n  \
         help: declare the group with a [dbs] or [dbs:children] section, or fix the name"
    );
    assert_eq!(
        err("[web]\nw1\n[web:vars]\njust words\n"),
        "T/hosts.ini:4:1: `just words` is not key=value\n  \
         help: a [group:vars] section holds one key=value per line"
    );
    assert_eq!(
        err("[a:children]\nb\n[b:children]\nc\n[c:children]\na\n[c]\nh1\n"),
        "T/hosts.ini:6:1: group `a` is its own ancestor: a → b → c → a\n  \
         help: a group cannot be a child of itself or of its descendants; remove one of these parent-child links"
    );
    assert_eq!(
        err("---\nall:\n"),
        "T/hosts.ini:1:1: `---` starts a YAML document, not an INI host line\n  \
         help: a YAML inventory's file name must end in .yml or .yaml"
    );
    assert_eq!(
        err("[db]\nweb\\ 1\n"),
        "T/hosts.ini:2:1: host name `web 1` contains ' '\n  \
         help: a host name uses letters, digits, '.', '_' and '-', starts with a letter or digit, at most 253 characters"
    );
    assert_eq!(
        err("# empty\n[db]\n"),
        "T/hosts.ini: the inventory has no hosts\n  help: list at least one host in a group"
    );
}

#[test]
fn group_vars_and_host_vars_directories_are_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hosts");
    std::fs::write(&path, "h1\n").unwrap();
    assert!(load(&path).is_ok());
    std::fs::create_dir(dir.path().join("group_vars")).unwrap();
    let e = load(&path)
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "T");
    assert_eq!(
        e,
        "T/hosts: T/group_vars is beside this inventory, and wavectl does not read it\n  \
         help: wavectl reads only the inventory file itself: move the variables it needs \
         (ansible_host, ansible_port, ansible_user, ansible_become, labels) into the inventory, \
         or give wavectl an inventory in another directory"
    );
}

/// Issue 13, case 11b: an `ansible_host` the transport would read as a URL, a user or
/// an ssh option, or one with shell characters, is refused where it is written — on the
/// host's line or in a group's vars.
#[test]
fn a_hostile_ansible_host_is_refused_with_its_place() {
    assert_eq!(
        err("[db]\ndb-1 ansible_host='ssh://-oProxyCommand=touch /tmp/x'\n"),
        "T/hosts.ini:2:6: host address `ssh://-oProxyCommand=touch /tmp/x` contains whitespace\n  \
         help: write an IP address, a DNS name or an ssh_config alias (or leave `address` out \
         to use the host name)"
    );
    assert_eq!(
        err("[db]\ndb-1 ansible_host=ssh://-oProxyCommand=sh\n"),
        "T/hosts.ini:2:6: host address `ssh://-oProxyCommand=sh` is a URL\n  help: write the \
         host name or IP address alone: the user goes in `user` (ansible_user), the port in \
         `port` (ansible_port)"
    );
    assert_eq!(
        err("[db]\ndb-1\n\n[db:vars]\nansible_host=root@10.0.0.1\n"),
        "T/hosts.ini:5:1: host address `root@10.0.0.1` contains '@'\n  help: write the host \
         name or IP address alone: the user goes in `user` (ansible_user), the port in `port` \
         (ansible_port)"
    );
    assert!(
        err("db-1 ansible_ssh_host=db`id`\n")
            .starts_with("T/hosts.ini:1:6: host address `db`id`` contains '`'\n"),
        "{}",
        err("db-1 ansible_ssh_host=db`id`\n")
    );
}
