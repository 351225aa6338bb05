//! Tests of the Ansible YAML inventory: its structure, values, and exact errors.

use super::*;

fn load_yml(text: &str) -> (tempfile::TempDir, Result<Inventory, InputError>) {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hosts.yml");
    std::fs::write(&path, text).unwrap();
    let r = load(&path);
    (dir, r)
}

fn err(text: &str) -> String {
    let (dir, r) = load_yml(text);
    r.unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "T")
}

#[test]
fn values_become_labels_as_text() {
    let (_dir, inv) = load_yml(
        "all:\n  hosts:\n    h1:\n      n: 30\n      b: true\n      f: 1.5\n      s: 'pg main'\n      \
         l: [1, 2]\n      m: {a: 1}\n      z: ~\n      ansible_port: '2222'\n",
    );
    let h = &inv.unwrap().hosts[0];
    let labels: Vec<(&str, &str)> = h
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [("b", "true"), ("f", "1.5"), ("n", "30"), ("s", "pg main")]
    );
    assert_eq!(h.port, Some(2222));
}

#[test]
fn anchors_and_json() {
    let (_dir, inv) = load_yml(
        "all:\n  hosts:\n    a1: &conn\n      ansible_user: deploy\n      ansible_become: true\n    a2: *conn\n",
    );
    let inv = inv.unwrap();
    assert!(inv
        .hosts
        .iter()
        .all(|h| h.user.as_deref() == Some("deploy") && h.become_root));

    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hosts.json");
    std::fs::write(
        &path,
        "{\n\t\"all\": {\n\t\t\"hosts\": {\"j1\": {\"ansible_port\": 2201}},\n\t\t\"children\": {\"web\": {\"hosts\": {\"j2\": null}}}\n\t}\n}\n",
    )
    .unwrap();
    let inv = load(&path).unwrap();
    assert_eq!(inv.hosts[0].port, Some(2201));
    assert_eq!(inv.hosts[1].labels.get("group").unwrap(), "web");
}

#[test]
fn yaml_errors() {
    assert_eq!(
        err("all:\n  hosts:\n    h1:\n   bad: [\n"),
        "T/hosts.yml:4:4: YAML syntax: while parsing a block mapping, did not find expected key\n  \
         help: fix the YAML syntax; an Ansible YAML inventory maps group names to hosts, vars and children"
    );
    assert_eq!(
        err("all:\n  host:\n    h1:\n"),
        "T/hosts.yml:2:3: group `all` has the unknown key `host`\n  \
         help: a group holds only `hosts:`, `vars:` and `children:`"
    );
    assert_eq!(
        err("all:\n  hosts:\n    - h1\n    - h2\n"),
        "T/hosts.yml:3:5: hosts of group `all` are not a mapping\n  \
         help: write each host as a key ending in ':' (`web1.example.com:`), its variables under it"
    );
    assert_eq!(
        err("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n"),
        "T/hosts.yml:1:1: this is an inventory plugin's configuration, not an inventory\n  \
         help: wavectl reads static inventories: write one out with `ansible-inventory -i FILE --list --yaml > hosts.yml`"
    );
    assert_eq!(
        err("- a\n- b\n"),
        "T/hosts.yml:1:1: the inventory is not a mapping of groups\n  \
         help: start with `all:`, then `hosts:`, `vars:` and `children:` under it"
    );
    assert_eq!(
        err("all:\n  hosts:\n    h1:\n      ansible_port: 99999\n"),
        "T/hosts.yml:4:21: port 99999 is out of range\n  help: a port is a number from 1 to 65535"
    );
    assert_eq!(
        err("all:\n  hosts:\n    h1:\n      ansible_host: [a, b]\n"),
        "T/hosts.yml:4:21: ansible_host is a list\n  help: write ansible_host as one plain value"
    );
    assert_eq!(
        err("all:\n  hosts:\n    h1:\n      ansible_user: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6162\n"),
        "T/hosts.yml:4:21: ansible_user is vault-encrypted\n  help: write ansible_user as one plain value"
    );
    assert_eq!(
        err("all:\n  hosts:\n    h1:\n      <<: {a: 1}\n"),
        "T/hosts.yml:4:7: YAML merge keys (`<<`) are not supported\n  \
         help: write the variables out, or put them in a group's vars"
    );
    assert_eq!(
        err("all:\n  hosts:\n    h1:\n      h1: x\n      h1: y\n"),
        "T/hosts.yml:5:7: YAML syntax: duplicated key in mapping\n  \
         help: fix the YAML syntax; an Ansible YAML inventory maps group names to hosts, vars and children"
    );
    assert_eq!(
        err("all:\n  hosts:\n    h1:\n---\nall:\n"),
        "T/hosts.yml:5:1: the file holds more than one YAML document\n  \
         help: an inventory is one document: remove the second `---` and what follows, or merge them"
    );
    assert_eq!(
        err("all:\n  children:\n    all:\n"),
        "T/hosts.yml:3:5: `all` cannot be a child group\n  \
         help: every group is already under `all`; remove it here"
    );
    assert_eq!(
        err("all:\n  hosts:\n    'db[1:x]':\n"),
        "T/hosts.yml:3:5: host range [1:x] in `db[1:x]`: start and end must both be numbers or both single letters\n  \
         help: write a range as [start:end] or [start:end:step], e.g. web[01:20].example.com or db-[a:f]"
    );
    assert_eq!(
        err("# nothing\n"),
        "T/hosts.yml: the inventory has no hosts\n  help: list at least one host in a group"
    );
    assert_eq!(
        err("all:\n  children:\n    web:\n"),
        "T/hosts.yml: the inventory has no hosts\n  help: list at least one host in a group"
    );
}

/// Issue 13, case 11b: the YAML reader refuses the same addresses, with their place.
#[test]
fn a_hostile_ansible_host_is_refused_with_its_place() {
    assert_eq!(
        err("all:\n  hosts:\n    db-1:\n      ansible_host: \"db;reboot\"\n"),
        "T/hosts.yml:4:21: host address `db;reboot` contains ';'\n  help: a host address uses \
         letters, digits, '.', '_' and '-' (a host name, an IPv4 address or an ssh_config \
         alias), or is an IPv6 address like 2001:db8::1"
    );
    assert_eq!(
        err("all:\n  vars:\n    ansible_host: \"$(id)\"\n  hosts:\n    db-1:\n"),
        "T/hosts.yml:3:19: host address `$(id)` must not start with '$'\n  help: a host \
         address uses letters, digits, '.', '_' and '-' (a host name, an IPv4 address or an \
         ssh_config alias), or is an IPv6 address like 2001:db8::1"
    );
}
