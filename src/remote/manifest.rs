//! The host's own record of an install, `/var/lib/wavectl/NAME/manifest.json`: valid
//! JSON with one top-level field a line, in a fixed form, rendered and read here. The
//! host's shell reads a field with one line match (no JSON parser, no field order), and
//! rewrites a value in place (`state`, `backup`, `prev_*`); anything else reads it as
//! ordinary JSON (`jq .state`). Pure.
//!
//! ```text
//! {
//! "name": "raid-health",
//! "sha256": "…",
//! "run_id": "20261202T144507Z-raid-health-83fa",
//! "installed_at": 1764686707,
//! "state": "probation",
//! "backup": false,
//! "prev_run_id": null,
//! "prev_sha256": null,
//! "install_path": "/usr/local/sbin/raid-health",
//! "activation": "cron",
//! "schedule": "*/5 * * * *",
//! "lease_secs": 900
//! }
//! ```
//!
//! The form: the first line is exactly `{`, the last `}`; every line between is one field,
//! `"KEY": VALUE` with one space after the colon, followed by `,` on every line but the
//! last. A value is a JSON string, a non-negative integer, `true`, `false` or `null`,
//! never across lines: a string is escaped as JSON escapes it (`\"`, `\\`, `\n`,
//! `\u0001`, …), so no value can hold a newline or an unescaped `"`. The values the
//! shell reads or writes (`name`, `sha256`, `run_id`, `state`, `prev_run_id`,
//! `prev_sha256`) are plain words (`[A-Za-z0-9_-]`), never escaped: [`Manifest::render`]
//! refuses anything else. The host sets `backup` (`true` when a pre-wavectl original is
//! kept) and `prev_*` (the confirmed version kept in `prev/`) in place of the values the
//! controller sends, and rewrites `state`; it never adds or removes a line. Readers must
//! ignore keys they do not know (a newer wavectl may add some).
//!
//! Earlier forms, read here ([`Manifest::read`] tells them apart) and on the host, each
//! kept with the wrapper that reads it until an install replaces it:
//! - the release before this one wrote `manifest`, one `KEY=VALUE` a line
//!   ([`ManifestFormat::KeyValue`]);
//! - the one before that wrote `manifest.json` as compact JSON, one line
//!   ([`ManifestFormat::CompactJson`]): a `manifest.json` whose first line is not
//!   exactly `{`.
//!
//! Where a state directory holds more than one (an install or a rollback cut short
//! between writing one and removing the other), the newest form is the host's record:
//! `manifest.json` in this form, else `manifest`, else a compact `manifest.json`.

use serde::{Deserialize, Serialize};

use crate::spec::ActivationKind;

/// The file's name in NAME's state directory (and in `prev/`).
pub const FILE: &str = "manifest.json";

/// Where an install stands on the host. The words are the host's (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestState {
    /// Installed by a run that has not confirmed it: its lease may run out.
    Probation,
    /// Confirmed by its run: it stays.
    Confirmed,
    /// Being removed: the wrapper refuses to run it.
    Revoked,
}

impl ManifestState {
    pub const ALL: [ManifestState; 3] = [
        ManifestState::Probation,
        ManifestState::Confirmed,
        ManifestState::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ManifestState::Probation => "probation",
            ManifestState::Confirmed => "confirmed",
            ManifestState::Revoked => "revoked",
        }
    }

    /// The host's word for a state; None for anything else.
    pub fn parse(word: &str) -> Option<ManifestState> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

impl std::fmt::Display for ManifestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which release's form a manifest was read from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// `manifest.json`, one field a line: what this release writes.
    Json,
    /// `manifest`, one `KEY=VALUE` a line: the release before this one.
    KeyValue,
    /// `manifest.json`, compact JSON on one line: the release before that.
    CompactJson,
}

/// What a host's manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    /// The run that installed it.
    pub run_id: String,
    pub state: ManifestState,
    /// Lowercase hex sha256 of the script installed.
    pub sha256: String,
    /// Unix seconds, from the installing controller's clock.
    pub installed_at: u64,
    pub install_path: String,
    pub activation: ActivationKind,
    /// Cron schedule or OnCalendar value; empty for `none`.
    pub schedule: String,
    /// The probation lease this install was given, in seconds (0 = none).
    pub lease_secs: u64,
    /// A backup of the pre-wavectl file exists (`/var/lib/wavectl/NAME/backup`).
    pub backup: bool,
    /// The confirmed version this install replaced, kept in `prev/` for its rollback.
    pub prev: Option<PrevVersion>,
    /// The form it was read from (what [`Manifest::render`] writes: `Json`).
    pub format: ManifestFormat,
}

/// The previous confirmed version of a rollout on a host (`prev/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevVersion {
    pub run_id: String,
    pub sha256: String,
}

/// A value the host's shell reads or writes unescaped: `[A-Za-z0-9_-]`, non-empty
/// unless `may_be_empty`.
fn plain(key: &str, v: &str, may_be_empty: bool) -> Result<(), String> {
    if v.is_empty() && !may_be_empty {
        return Err(format!("manifest: {key} is empty"));
    }
    match v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(c) => Err(format!(
            "manifest: {key} {v:?} has {c:?}: only letters, digits, `_` and `-` can be written"
        )),
        None => Ok(()),
    }
}

/// A JSON string literal on one line (serde_json escapes `"`, `\` and every control
/// character).
fn jstr(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
}

impl Manifest {
    /// The text an install sends, in the form of the module docs: `backup` false and
    /// `prev_*` null unless set (the host sets them). Refuses (with what and why) a
    /// value the host's shell could not read as a plain word.
    pub fn render(&self) -> Result<String, String> {
        plain("name", &self.name, false)?;
        plain("run_id", &self.run_id, false)?;
        plain("sha256", &self.sha256, false)?;
        let (prev_run, prev_sha) = match &self.prev {
            Some(p) => {
                plain("prev_run_id", &p.run_id, false)?;
                plain("prev_sha256", &p.sha256, true)?;
                (jstr(&p.run_id), jstr(&p.sha256))
            }
            None => ("null".to_string(), "null".to_string()),
        };
        let fields = [
            ("name", jstr(&self.name)),
            ("sha256", jstr(&self.sha256)),
            ("run_id", jstr(&self.run_id)),
            ("installed_at", self.installed_at.to_string()),
            ("state", jstr(self.state.as_str())),
            ("backup", self.backup.to_string()),
            ("prev_run_id", prev_run),
            ("prev_sha256", prev_sha),
            ("install_path", jstr(&self.install_path)),
            ("activation", jstr(self.activation.as_str())),
            ("schedule", jstr(&self.schedule)),
            ("lease_secs", self.lease_secs.to_string()),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        Ok(format!("{{\n{}\n}}\n", body.join(",\n")))
    }

    /// A manifest in any form a host may hold (see the module docs): this release's
    /// `manifest.json` (first line exactly `{`), the previous release's `manifest`
    /// (`KEY=VALUE`), or the compact `manifest.json` of the release before.
    pub fn read(text: &str) -> Result<Manifest, String> {
        match text.split('\n').next() {
            Some("{") => Self::from_json(text),
            Some(first) if first.trim_start().starts_with('{') => Self::from_compact_json(text),
            _ => Self::from_key_value(text),
        }
    }

    /// This release's `manifest.json`, read as ordinary JSON (keys in any order,
    /// unknown keys ignored).
    fn from_json(text: &str) -> Result<Manifest, String> {
        let j: JsonManifest =
            serde_json::from_str(text).map_err(|e| format!("manifest.json: {e}"))?;
        for (key, v) in [
            ("name", &j.name),
            ("run_id", &j.run_id),
            ("sha256", &j.sha256),
        ] {
            if v.is_empty() {
                return Err(format!("manifest.json has no {key}"));
            }
        }
        Ok(Manifest {
            activation: ActivationKind::parse(&j.activation).ok_or_else(|| {
                format!("manifest.json: unknown activation kind {:?}", j.activation)
            })?,
            name: j.name,
            run_id: j.run_id,
            state: j.state,
            sha256: j.sha256,
            installed_at: j.installed_at,
            install_path: j.install_path,
            schedule: j.schedule,
            lease_secs: j.lease_secs,
            backup: j.backup,
            prev: j
                .prev_run_id
                .filter(|r| !r.is_empty())
                .map(|run_id| PrevVersion {
                    run_id,
                    sha256: j.prev_sha256.unwrap_or_default(),
                }),
            format: ManifestFormat::Json,
        })
    }

    /// The previous release's `manifest`: `KEY=VALUE` lines, keys in any order, unknown
    /// keys and `#` lines ignored; `name`, `run_id`, `state` and `sha256` are needed.
    /// `install_path` and `schedule` were escaped: `\\`, `\n`, `\t`, `\r`, `\xHH`.
    fn from_key_value(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest {
            name: String::new(),
            run_id: String::new(),
            state: ManifestState::Revoked,
            sha256: String::new(),
            installed_at: 0,
            install_path: String::new(),
            activation: ActivationKind::None,
            schedule: String::new(),
            lease_secs: 0,
            backup: false,
            prev: None,
            format: ManifestFormat::KeyValue,
        };
        let (mut state, mut prev_run, mut prev_sha) = (None, None, None);
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| format!("manifest line {}: {what}: {line:?}", i + 1);
            let (key, value) = line.split_once('=').ok_or_else(|| bad("no `=`"))?;
            let num = || value.parse::<u64>().map_err(|_| bad("not a number"));
            match key {
                "name" => m.name = value.to_string(),
                "run_id" => m.run_id = value.to_string(),
                "state" => {
                    state = Some(ManifestState::parse(value).ok_or_else(|| bad("unknown state"))?)
                }
                "sha256" => m.sha256 = value.to_string(),
                "installed_at" => m.installed_at = num()?,
                "install_path" => m.install_path = unescape_kv(value).map_err(|e| bad(&e))?,
                "activation" => {
                    m.activation = ActivationKind::parse(value)
                        .ok_or_else(|| bad("unknown activation kind"))?
                }
                "schedule" => m.schedule = unescape_kv(value).map_err(|e| bad(&e))?,
                "lease_secs" => m.lease_secs = num()?,
                "backup" => m.backup = value == "1",
                "prev_run_id" => prev_run = Some(value.to_string()),
                "prev_sha256" => prev_sha = Some(value.to_string()),
                _ => {}
            }
        }
        m.state = state.ok_or("manifest has no state")?;
        for (key, v) in [
            ("name", &m.name),
            ("run_id", &m.run_id),
            ("sha256", &m.sha256),
        ] {
            if v.is_empty() {
                return Err(format!("manifest has no {key}"));
            }
        }
        if let Some(run_id) = prev_run.filter(|r| !r.is_empty()) {
            m.prev = Some(PrevVersion {
                run_id,
                sha256: prev_sha.unwrap_or_default(),
            });
        }
        Ok(m)
    }

    /// The compact `manifest.json` of the release before the previous one.
    fn from_compact_json(text: &str) -> Result<Manifest, String> {
        let j: CompactJson = serde_json::from_str(text.trim()).map_err(|e| e.to_string())?;
        let unknown = |what: &str, v: &str| format!("manifest.json: unknown {what} {v:?}");
        Ok(Manifest {
            state: ManifestState::parse(&j.state).ok_or_else(|| unknown("state", &j.state))?,
            activation: ActivationKind::parse(&j.activation.kind)
                .ok_or_else(|| unknown("activation kind", &j.activation.kind))?,
            name: j.name,
            run_id: j.run_id,
            sha256: j.sha256,
            installed_at: j.installed_at,
            install_path: j.install_path,
            schedule: j.activation.schedule,
            lease_secs: j.lease_secs,
            backup: j.backup,
            prev: j.prev.map(|p| PrevVersion {
                run_id: p.run_id,
                sha256: p.sha256,
            }),
            format: ManifestFormat::CompactJson,
        })
    }
}

/// This release's `manifest.json` as serde reads it.
#[derive(Deserialize)]
struct JsonManifest {
    name: String,
    sha256: String,
    run_id: String,
    installed_at: u64,
    state: ManifestState,
    backup: bool,
    #[serde(default)]
    prev_run_id: Option<String>,
    #[serde(default)]
    prev_sha256: Option<String>,
    install_path: String,
    activation: String,
    schedule: String,
    lease_secs: u64,
}

/// The compact `manifest.json` (serde_json, in this field order).
#[derive(Deserialize)]
struct CompactJson {
    name: String,
    sha256: String,
    run_id: String,
    installed_at: u64,
    state: String,
    backup: bool,
    install_path: String,
    activation: CompactActivation,
    #[serde(default)]
    lease_secs: u64,
    #[serde(default)]
    prev: Option<CompactPrev>,
}

#[derive(Deserialize)]
struct CompactActivation {
    kind: String,
    schedule: String,
}

#[derive(Deserialize)]
struct CompactPrev {
    run_id: String,
    sha256: String,
}

/// A value of the `KEY=VALUE` form read back: `\\`, `\n`, `\t`, `\r`, `\xHH`.
fn unescape_kv(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('x') => {
                let h: String = chars.by_ref().take(2).collect();
                let b = u8::from_str_radix(&h, 16)
                    .ok()
                    .filter(|b| b.is_ascii() && h.len() == 2)
                    .ok_or_else(|| format!("bad escape \\x{h}"))?;
                out.push(char::from(b));
            }
            other => return Err(format!("bad escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

/// The previous release's `KEY=VALUE` form, as it rendered it (for the tests that make
/// such hosts): `install_path` and `schedule` escaped.
#[cfg(test)]
pub(super) fn render_key_value(m: &Manifest) -> String {
    use std::fmt::Write as _;
    fn escape(v: &str) -> String {
        let mut out = String::with_capacity(v.len());
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out
    }
    let mut s =
        String::from("# wavectl manifest: one KEY=VALUE a line, written by wavectl; do not edit\n");
    let _ = writeln!(s, "name={}", m.name);
    let _ = writeln!(s, "run_id={}", m.run_id);
    let _ = writeln!(s, "state={}", m.state);
    let _ = writeln!(s, "sha256={}", m.sha256);
    let _ = writeln!(s, "installed_at={}", m.installed_at);
    let _ = writeln!(s, "install_path={}", escape(&m.install_path));
    let _ = writeln!(s, "activation={}", m.activation.as_str());
    let _ = writeln!(s, "schedule={}", escape(&m.schedule));
    let _ = writeln!(s, "lease_secs={}", m.lease_secs);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            name: "raid-health".into(),
            run_id: "r1".into(),
            state: ManifestState::Probation,
            sha256: "ab".into(),
            installed_at: 1_700_000_000,
            install_path: "/usr/local/sbin/raid health".into(),
            activation: ActivationKind::SystemdTimer,
            schedule: "*-*-* 03:00".into(),
            lease_secs: 901,
            backup: false,
            prev: None,
            format: ManifestFormat::Json,
        }
    }

    /// The lines of the form: `{`, `"KEY": VALUE` + `,` but the last, `}`.
    fn fields(t: &str) -> Vec<(String, String)> {
        let lines: Vec<&str> = t.strip_suffix('\n').unwrap().split('\n').collect();
        assert_eq!((lines[0], *lines.last().unwrap()), ("{", "}"), "{t}");
        let inner = &lines[1..lines.len() - 1];
        inner
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let l = if i + 1 < inner.len() {
                    l.strip_suffix(',')
                        .unwrap_or_else(|| panic!("no comma: {l}"))
                } else {
                    assert!(!l.ends_with(','), "{t}");
                    l
                };
                let (k, v) = l.split_once("\": ").unwrap();
                let k = k.strip_prefix('"').unwrap();
                assert!(k
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
                // Each value is one JSON value on its own.
                serde_json::from_str::<serde_json::Value>(v).unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn renders_json_one_field_a_line_and_reads_it_back() {
        let m = sample();
        let t = m.render().unwrap();
        assert!(
            t.starts_with("{\n\"name\": \"raid-health\",\n\"sha256\": \"ab\",\n\"run_id\": \"r1\",\n\"installed_at\": 1700000000,\n\"state\": \"probation\",\n\"backup\": false,\n\"prev_run_id\": null,\n\"prev_sha256\": null,\n"),
            "{t}"
        );
        assert!(t.ends_with(",\n\"lease_secs\": 901\n}\n"), "{t}");
        assert_eq!(fields(&t).len(), 12);
        assert_eq!(Manifest::read(&t).unwrap(), m);
        // Ordinary JSON for anyone else.
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["state"], "probation");
        assert_eq!(v["activation"], "systemd-timer");
        assert_eq!(v["installed_at"], 1_700_000_000);
        // What the host rewrites in place, and keys a newer wavectl may add, in any
        // order: still read.
        let held = t
            .replace("\"state\": \"probation\"", "\"state\": \"confirmed\"")
            .replace("\"backup\": false", "\"backup\": true")
            .replace("\"prev_run_id\": null", "\"prev_run_id\": \"r0\"")
            .replace("\"prev_sha256\": null", "\"prev_sha256\": \"cd\"")
            .replace("{\n", "{\n\"some_future_key\": [1, 2],\n");
        let mut lines: Vec<&str> = held.lines().collect();
        lines.swap(2, 5);
        let held = lines.join("\n") + "\n";
        let h = Manifest::read(&held).unwrap();
        assert_eq!((h.state, h.backup), (ManifestState::Confirmed, true));
        assert_eq!(
            h.prev,
            Some(PrevVersion {
                run_id: "r0".into(),
                sha256: "cd".into()
            })
        );
        let mut p = m.clone();
        p.prev = h.prev.clone();
        assert_eq!(Manifest::read(&p.render().unwrap()).unwrap(), p);
    }

    #[test]
    fn free_form_values_are_escaped_on_their_line() {
        let mut m = sample();
        m.install_path = "/opt/x\n\"state\": \"confirmed\",\\n\r\t\u{1}\u{7f}é\u{2028}".into();
        m.schedule = "a\n\"run_id\": \"evil\"".into();
        let t = m.render().unwrap();
        let f = fields(&t);
        assert_eq!(f.len(), 12, "{t}");
        assert_eq!(f.iter().filter(|(k, _)| k == "state").count(), 1);
        assert_eq!(f.iter().filter(|(k, _)| k == "run_id").count(), 1);
        assert_eq!(t.lines().filter(|l| l.starts_with("\"state\"")).count(), 1);
        assert!(
            t.contains(
                "\n\"install_path\": \"/opt/x\\n\\\"state\\\": \\\"confirmed\\\",\\\\n\\r\\t\\u0001\u{7f}é\u{2028}\",\n"
            ),
            "{t}"
        );
        assert_eq!(Manifest::read(&t).unwrap(), m);
    }

    #[test]
    fn values_the_shell_reads_raw_are_refused_unless_plain() {
        for (i, bad) in ["a\"b", "a\\b", "a b", "a\nb", "é", ""].iter().enumerate() {
            let mut m = sample();
            match i % 3 {
                0 => m.run_id = bad.to_string(),
                1 => m.name = bad.to_string(),
                _ => m.sha256 = bad.to_string(),
            }
            let e = m.render().unwrap_err();
            assert!(e.starts_with("manifest: "), "{e}");
            let mut m = sample();
            m.prev = Some(PrevVersion {
                run_id: "r0".into(),
                sha256: bad.to_string(),
            });
            assert_eq!(m.render().is_ok(), bad.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn broken_manifests_are_errors() {
        let t = sample().render().unwrap();
        for broken in [
            t.replace("\"probation\"", "\"odd\""),
            t.replace("\"state\": \"probation\",\n", ""),
            t.replace("\"run_id\": \"r1\"", "\"run_id\": \"\""),
            t.replace("\"systemd-timer\"", "\"x\""),
            t.replace("\"lease_secs\": 901", "\"lease_secs\": -1"),
            t.replace("\n}\n", "\n"),
            t.replace("\"backup\": false,", "\"backup\": false"),
            "{\n".into(),
        ] {
            assert!(Manifest::read(&broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn the_previous_releases_key_value_manifest_is_read() {
        let mut m = sample();
        m.install_path = "/opt/x\nstate=confirmed\\n\r\t\u{1}é".into();
        m.format = ManifestFormat::KeyValue;
        let t = render_key_value(&m);
        assert!(
            t.contains("install_path=/opt/x\\nstate=confirmed\\\\n\\r\\t\\x01é\n"),
            "{t}"
        );
        assert_eq!(Manifest::read(&t).unwrap(), m);
        let held = t.replace("state=probation", "state=confirmed")
            + "backup=1\nprev_run_id=r0\nprev_sha256=cd\nsome_future_key=x\n";
        let h = Manifest::read(&held).unwrap();
        assert_eq!(
            (h.state, h.backup, h.format),
            (ManifestState::Confirmed, true, ManifestFormat::KeyValue)
        );
        assert_eq!(h.prev.unwrap().run_id, "r0");
        assert!(Manifest::read(&t.replace("state=probation", "state=odd")).is_err());
        assert!(Manifest::read(&t.replace("state=probation\n", "")).is_err());
        assert!(Manifest::read(&t.replace("run_id=r1\n", "")).is_err());
        assert!(Manifest::read(&(t.clone() + "no equals sign\n")).is_err());
        assert!(Manifest::read(&t.replace("/opt/x", "/opt\\q")).is_err());
    }

    #[test]
    fn the_compact_json_of_the_release_before_is_read() {
        let old = r#"{"name":"x","sha256":"00","run_id":"B","installed_at":1,"state":"probation","backup":true,"install_path":"/x\n\"y\"","activation":{"kind":"systemd-timer","schedule":"daily"},"lease_secs":60,"prev":{"run_id":"A","sha256":"11"}}"#;
        let m = Manifest::read(old).unwrap();
        assert_eq!(
            (m.run_id.as_str(), m.state, m.lease_secs),
            ("B", ManifestState::Probation, 60)
        );
        assert_eq!(
            (m.install_path.as_str(), m.activation),
            ("/x\n\"y\"", ActivationKind::SystemdTimer)
        );
        assert_eq!(m.prev.unwrap().run_id, "A");
        assert_eq!(m.format, ManifestFormat::CompactJson);
        assert!(m.backup);
        // With the newline the previous release's printf left: still compact.
        assert_eq!(
            Manifest::read(&format!("{old}\n")).unwrap().format,
            ManifestFormat::CompactJson
        );
        // Older still: no lease, no prev.
        let older = r#"{"name":"x","sha256":"00","run_id":"r","installed_at":1,"state":"confirmed","backup":false,"install_path":"/x","activation":{"kind":"none","schedule":""}}"#;
        let m = Manifest::read(older).unwrap();
        assert_eq!((m.lease_secs, m.prev), (0, None));
        assert!(Manifest::read(&older.replace("confirmed", "Odd")).is_err());
        // The compact form is never taken for this release's: its first line is more
        // than `{`.
        let j = sample().render().unwrap();
        assert!(Manifest::read(&j.replacen("{\n", "{", 1)).is_err());
    }

    #[test]
    fn every_state_has_one_word() {
        for s in ManifestState::ALL {
            assert_eq!(ManifestState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(ManifestState::parse("Probation"), None);
    }
}
