//! The host's own record of an install, `/var/lib/wavectl/NAME/manifest`: one
//! `KEY=VALUE` a line, rendered and parsed here (the host shell only reads `run_id`,
//! `state` and `sha256`, and rewrites `state`, `backup` and the `prev_*` lines). Pure.
//!
//! ```text
//! # wavectl manifest: one KEY=VALUE a line, written by wavectl; do not edit
//! name=raid-health
//! run_id=20261202T144507Z-raid-health-83fa
//! state=probation
//! sha256=…
//! installed_at=1764686707
//! install_path=/usr/local/sbin/raid-health
//! activation=cron
//! schedule=*/5 * * * *
//! lease_secs=900
//! backup=1                     (the host adds it: a pre-wavectl original is kept)
//! prev_run_id=…                (the host adds them: the confirmed version kept in prev/)
//! prev_sha256=…
//! ```
//!
//! Keys may come in any order and unknown keys are ignored, so a newer wavectl may add
//! some. A value is one line: in `install_path` and `schedule` (the only free-form
//! values) a backslash is written `\\` and a control character as `\n`, `\t`, `\r` or
//! `\xHH` (the spec forbids control characters there; this keeps a hostile value from
//! ever making a line of its own).
//!
//! The release before this one wrote `manifest.json`, compact JSON. A host may still
//! hold such an install (and its `prev/manifest.json`); it is read here from the JSON
//! ([`Manifest::from_json`]) and on the host by one `sed` (`wv_mf_json`), and kept in its
//! own format, with its own wrapper, until an install replaces it.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::spec::ActivationKind;

/// The file's first line.
pub const HEADER: &str =
    "# wavectl manifest: one KEY=VALUE a line, written by wavectl; do not edit";

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
    /// Read from the previous release's `manifest.json`.
    pub legacy: bool,
}

/// The previous confirmed version of a rollout on a host (`prev/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevVersion {
    pub run_id: String,
    pub sha256: String,
}

impl Manifest {
    /// The text an install sends: everything the controller knows, in `probation`; the
    /// host adds `backup` and the `prev_*` lines.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{HEADER}");
        let _ = writeln!(s, "name={}", self.name);
        let _ = writeln!(s, "run_id={}", self.run_id);
        let _ = writeln!(s, "state={}", self.state);
        let _ = writeln!(s, "sha256={}", self.sha256);
        let _ = writeln!(s, "installed_at={}", self.installed_at);
        let _ = writeln!(s, "install_path={}", escape(&self.install_path));
        let _ = writeln!(s, "activation={}", self.activation.as_str());
        let _ = writeln!(s, "schedule={}", escape(&self.schedule));
        let _ = writeln!(s, "lease_secs={}", self.lease_secs);
        s
    }

    /// A manifest as the host holds it (with `backup` and `prev_*`). Keys in any
    /// order, unknown keys and `#` lines ignored; `name`, `run_id`, `state` and
    /// `sha256` are needed.
    pub fn parse(text: &str) -> Result<Manifest, String> {
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
            legacy: false,
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
                "install_path" => m.install_path = unescape(value).map_err(|e| bad(&e))?,
                "activation" => {
                    m.activation = ActivationKind::parse(value)
                        .ok_or_else(|| bad("unknown activation kind"))?
                }
                "schedule" => m.schedule = unescape(value).map_err(|e| bad(&e))?,
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

    /// A `manifest.json` of the release before this one.
    pub fn from_json(text: &str) -> Result<Manifest, String> {
        let j: LegacyJson = serde_json::from_str(text.trim()).map_err(|e| e.to_string())?;
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
            legacy: true,
        })
    }
}

/// The previous release's `manifest.json` (serde_json, compact, in this field order).
#[derive(Deserialize)]
struct LegacyJson {
    name: String,
    sha256: String,
    run_id: String,
    installed_at: u64,
    state: String,
    backup: bool,
    install_path: String,
    activation: LegacyActivation,
    #[serde(default)]
    lease_secs: u64,
    #[serde(default)]
    prev: Option<LegacyPrev>,
}

#[derive(Deserialize)]
struct LegacyActivation {
    kind: String,
    schedule: String,
}

#[derive(Deserialize)]
struct LegacyPrev {
    run_id: String,
    sha256: String,
}

/// A value on one line: `\` as `\\`, control characters as `\n`, `\t`, `\r`, `\xHH`.
pub fn escape(v: &str) -> String {
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

/// The inverse of [`escape`].
pub fn unescape(v: &str) -> Result<String, String> {
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
            legacy: false,
        }
    }

    #[test]
    fn renders_one_field_a_line_and_parses_back() {
        let m = sample();
        let t = m.render();
        assert!(t.starts_with(&format!(
            "{HEADER}\nname=raid-health\nrun_id=r1\nstate=probation\n"
        )));
        assert!(t.contains("\nactivation=systemd-timer\n"), "{t}");
        assert!(t.ends_with("\nlease_secs=901\n"), "{t}");
        assert_eq!(Manifest::parse(&t).unwrap(), m);
        // What the host adds, and the state it rewrites, in any order.
        let held = t.replace("state=probation", "state=confirmed")
            + "backup=1\nprev_run_id=r0\nprev_sha256=cd\nsome_future_key=x\n";
        let h = Manifest::parse(&held).unwrap();
        assert_eq!((h.state, h.backup), (ManifestState::Confirmed, true));
        assert_eq!(
            h.prev,
            Some(PrevVersion {
                run_id: "r0".into(),
                sha256: "cd".into()
            })
        );
    }

    #[test]
    fn hostile_values_cannot_make_a_line_of_their_own() {
        let mut m = sample();
        m.install_path = "/opt/x\nstate=confirmed\\n\r\t\u{1}é".into();
        m.schedule = "a\nrun_id=evil".into();
        let t = m.render();
        assert_eq!(t.lines().filter(|l| l.starts_with("state=")).count(), 1);
        assert_eq!(t.lines().filter(|l| l.starts_with("run_id=")).count(), 1);
        assert!(
            t.contains("install_path=/opt/x\\nstate=confirmed\\\\n\\r\\t\\x01é\n"),
            "{t}"
        );
        assert_eq!(Manifest::parse(&t).unwrap(), m);
    }

    #[test]
    fn broken_manifests_are_errors() {
        let t = sample().render();
        assert!(Manifest::parse(&t.replace("state=probation", "state=odd")).is_err());
        assert!(Manifest::parse(&t.replace("state=probation\n", "")).is_err());
        assert!(Manifest::parse(&t.replace("run_id=r1\n", "")).is_err());
        assert!(Manifest::parse(&t.replace("activation=systemd-timer", "activation=x")).is_err());
        assert!(Manifest::parse(&(t.clone() + "no equals sign\n")).is_err());
        assert!(Manifest::parse(&t.replace("raid health", "raid\\q")).is_err());
    }

    #[test]
    fn the_previous_releases_json_is_read() {
        let old = r#"{"name":"x","sha256":"00","run_id":"B","installed_at":1,"state":"probation","backup":true,"install_path":"/x\n\"y\"","activation":{"kind":"systemd-timer","schedule":"daily"},"lease_secs":60,"prev":{"run_id":"A","sha256":"11"}}"#;
        let m = Manifest::from_json(old).unwrap();
        assert_eq!(
            (m.run_id.as_str(), m.state, m.lease_secs),
            ("B", ManifestState::Probation, 60)
        );
        assert_eq!(
            (m.install_path.as_str(), m.activation),
            ("/x\n\"y\"", ActivationKind::SystemdTimer)
        );
        assert_eq!(m.prev.unwrap().run_id, "A");
        assert!(m.legacy && m.backup);
        // Older still: no lease, no prev.
        let older = r#"{"name":"x","sha256":"00","run_id":"r","installed_at":1,"state":"confirmed","backup":false,"install_path":"/x","activation":{"kind":"none","schedule":""}}"#;
        let m = Manifest::from_json(older).unwrap();
        assert_eq!((m.lease_secs, m.prev), (0, None));
        assert!(Manifest::from_json(&older.replace("confirmed", "Odd")).is_err());
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
