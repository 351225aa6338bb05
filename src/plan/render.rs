//! The text `wavectl plan` prints: a header, then one block per wave with its hosts
//! and, where `spread_by` is set, each group's count. Pure: builds a `String`.

use std::collections::{BTreeMap, HashMap};

use crate::inventory::Host;

use super::Wave;

/// Lines longer than this are wrapped (at a comma), continuing under the first item.
const WIDTH: usize = 100;

/// How hosts without the `spread_by` label show in a wave's group counts.
const NO_LABEL: &str = "(none)";

/// See [`super::render`].
pub(super) fn render(waves: &[Wave], targets: &[Host], spread_by: Option<&str>) -> String {
    let mut out = format!(
        "{} in {}",
        plural(targets.len(), "target", "targets"),
        plural(waves.len(), "wave", "waves")
    );
    if let Some(key) = spread_by {
        out.push_str(&format!(", spread by {key}"));
    }
    out.push('\n');

    let heads: Vec<String> = waves
        .iter()
        .map(|w| {
            format!(
                "wave {} ({}):",
                w.index,
                plural(w.hosts.len(), "host", "hosts")
            )
        })
        .collect();
    let width = heads.iter().map(String::len).max().unwrap_or(0);
    let by_name: HashMap<&str, &Host> = targets.iter().map(|h| (h.name.as_str(), h)).collect();

    for (wave, head) in waves.iter().zip(&heads) {
        let head = format!("{head:<width$} ");
        push_wrapped(&mut out, &head, &wave.hosts);
        if let Some(key) = spread_by {
            let counts = group_counts(wave, &by_name, key);
            push_wrapped(&mut out, &format!("  {key}: "), &counts);
        }
    }
    out
}

/// `value=count` for each group of `key` in the wave, by value, unlabelled hosts last.
fn group_counts(wave: &Wave, by_name: &HashMap<&str, &Host>, key: &str) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unlabelled = 0;
    for name in &wave.hosts {
        match by_name.get(name.as_str()).and_then(|h| h.labels.get(key)) {
            Some(value) => *counts.entry(value).or_default() += 1,
            None => unlabelled += 1,
        }
    }
    let mut items: Vec<String> = counts
        .iter()
        .map(|(value, n)| format!("{value}={n}"))
        .collect();
    if unlabelled > 0 {
        items.push(format!("{NO_LABEL}={unlabelled}"));
    }
    items
}

/// One line `head` + the items joined by ", ", wrapped before `WIDTH` with the
/// continuation lines indented to the first item. An item longer than a line gets
/// a line of its own.
fn push_wrapped(out: &mut String, head: &str, items: &[String]) {
    let indent = head.chars().count();
    let mut line = head.to_string();
    let mut line_len = indent;
    for (i, item) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        let piece_len = item.chars().count() + usize::from(!last);
        if line_len > indent && line_len + 1 + piece_len > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            line_len = indent;
        } else if line_len > indent {
            line.push(' ');
            line_len += 1;
        }
        line.push_str(item);
        if !last {
            line.push(',');
        }
        line_len += piece_len;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::inventory::Host;
    use crate::plan::{render, waves, Wave};
    use crate::spec::{Located, WaveSize, WaveSpec};

    fn wave(index: usize, hosts: &[&str]) -> Wave {
        Wave {
            index,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// The fleet of the day that made wavectl: two database clusters, a few
    /// unlabelled hosts, spread by cluster, one canary that is not first in the inventory.
    #[test]
    fn render_spread_plan_snapshot() {
        let db = |name: &str, cluster: &str| {
            Host::labelled(name, &[("role", "db"), ("cluster", cluster)])
        };
        let targets = vec![
            db("db-main-1", "pg-main"),
            db("db-standby-1", "pg-main"),
            db("db-standby-2", "pg-main"),
            db("db-rep-1", "pg-rep"),
            db("db-rep-2", "pg-rep"),
            db("db-analytics-1", "pg-analytics"),
            Host::labelled("db-scratch-1", &[("role", "db")]),
            Host::labelled("db-scratch-2", &[("role", "db")]),
            db("db-analytics-2", "pg-analytics"),
            db("db-rep-3", "pg-rep"),
        ];
        let spec = WaveSpec {
            sizes: vec![
                WaveSize::Count(1),
                WaveSize::Percent(10),
                WaveSize::Percent(50),
                WaveSize::Percent(100),
            ],
            canaries: vec![Located {
                value: "db-standby-2".to_string(),
                pos: None,
            }],
            spread_by: Some("cluster".to_string()),
            max_per_group: 1,
            concurrency: 50,
            bake: Duration::from_secs(600),
            min_runs: 1,
        };
        let waves = waves(&targets, &spec).unwrap();
        insta::assert_snapshot!(render(&waves, &targets, Some("cluster")));
    }

    #[test]
    fn render_without_spread_has_no_group_lines_and_aligns_host_lists() {
        let targets: Vec<Host> = (1..=12)
            .map(|i| Host::labelled(&format!("web-{i}"), &[]))
            .collect();
        let names: Vec<String> = targets.iter().map(|h| h.name.clone()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let waves = vec![
            wave(1, &refs[..1]),
            wave(2, &refs[1..2]),
            wave(3, &refs[2..]),
        ];
        assert_eq!(
            render(&waves, &targets, None),
            "12 targets in 3 waves\n\
             wave 1 (1 host):   web-1\n\
             wave 2 (1 host):   web-2\n\
             wave 3 (10 hosts): web-3, web-4, web-5, web-6, web-7, web-8, web-9, web-10, web-11, web-12\n"
        );
    }

    #[test]
    fn render_wraps_long_host_lists_under_the_first_host() {
        let targets: Vec<Host> = (1..=30)
            .map(|i| Host::labelled(&format!("host-{i:03}"), &[]))
            .collect();
        let names: Vec<&str> = targets.iter().map(|h| h.name.as_str()).collect();
        let text = render(&[wave(1, &names)], &targets, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "30 targets in 1 wave");
        assert!(lines[1].starts_with("wave 1 (30 hosts): host-001, host-002,"));
        let indent = "wave 1 (30 hosts): ".len();
        for line in &lines[2..] {
            assert!(
                line.starts_with(&" ".repeat(indent)) && !line[indent..].starts_with(' '),
                "{line:?}"
            );
        }
        for line in &lines {
            assert!(line.len() <= super::WIDTH, "{line:?}");
        }
        let listed: Vec<&str> = lines[1..]
            .iter()
            .flat_map(|l| l[indent..].split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(listed, names);
    }

    #[test]
    fn render_counts_unlabelled_hosts_last() {
        let targets = vec![
            Host::labelled("b", &[("dc", "lon1")]),
            Host::labelled("a", &[]),
            Host::labelled("c", &[("dc", "ams1")]),
        ];
        let text = render(&[wave(1, &["b", "a", "c"])], &targets, Some("dc"));
        assert_eq!(text, "3 targets in 1 wave, spread by dc\nwave 1 (3 hosts): b, a, c\n  dc: ams1=1, lon1=1, (none)=1\n");
    }

    #[test]
    fn render_empty_plan() {
        assert_eq!(render(&[], &[], None), "0 targets in 0 waves\n");
    }
}
