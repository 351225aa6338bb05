//! The SSH transport against real lab hosts: the per-connection command limit, the
//! login and command deadlines on a hung host, and no `ssh` left behind.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use wavectl::inventory::{Host, HostKeyCheck};
use wavectl::remote::RemoteCommand;
use wavectl::transport::{Stage, Transport, TransportError};

use common::*;

fn host(name: &str) -> Host {
    Host {
        name: name.into(),
        address: name.into(),
        port: None,
        user: None,
        labels: BTreeMap::new(),
        host_key_check: HostKeyCheck::Strict,
        become_root: false,
    }
}

fn cmd(line: &str, timeout: Duration) -> RemoteCommand {
    RemoteCommand {
        line: line.into(),
        stdin: None,
        timeout,
        what: "test",
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn at_most_ten_commands_run_at_once_on_one_connection() {
    let fleet = fleet(1);
    let cfg = fleet.ssh_config().to_path_buf();
    let counts: Vec<usize> = rt().block_on(async {
        let t = Transport::new(Some(cfg)).unwrap();
        let conn = t.connect(&host("h01"), Duration::from_secs(10)).await.unwrap();
        // Each command marks itself running, counts the running ones, and lingers.
        let c = cmd(
            "mkdir -p /tmp/running && f=/tmp/running/$$ && touch $f && ls /tmp/running | wc -l && sleep 0.4 && rm $f",
            Duration::from_secs(20),
        );
        // 25 at once: sshd (MaxSessions 10) would refuse the 11th session.
        let outs = join_all((0..25).map(|_| conn.run(&c))).await;
        conn.close().await;
        outs.into_iter()
            .map(|o| {
                let o = o.expect("every command runs");
                assert!(o.success(), "{o:?}");
                o.stdout.trim().parse::<usize>().unwrap()
            })
            .collect()
    });
    let most = counts.iter().copied().max().unwrap();
    assert!(
        most <= 10,
        "{most} commands ran at once on one connection: {counts:?}"
    );
    assert!(
        most >= 2,
        "commands did not run concurrently at all: {counts:?}"
    );
    assert!(ssh_processes(fleet.ssh_config().to_str().unwrap()).is_empty());
}

#[test]
fn a_hung_host_misses_the_login_and_command_deadlines_and_no_ssh_is_left() {
    let fleet = fleet(1);
    let cfg = fleet.ssh_config().to_path_buf();
    let h = fleet.host("h01");
    rt().block_on(async {
        let t = Transport::new(Some(cfg)).unwrap();
        // A command on a connection whose host then hangs: the local backstop fires.
        let conn = t
            .connect(&host("h01"), Duration::from_secs(10))
            .await
            .unwrap();
        h.freeze().unwrap();
        let started = Instant::now();
        let r = conn
            .run_within(
                &cmd("echo hi", Duration::from_secs(1)),
                Duration::from_secs(2),
            )
            .await;
        assert!(matches!(r, Err(TransportError::Deadline { .. })), "{r:?}");
        assert!(r.unwrap_err().is_deadline());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the deadline did not hold"
        );
        conn.close().await;
        // A new login to the hung host: no banner, the login deadline fires.
        let started = Instant::now();
        let r = t.connect(&host("h01"), Duration::from_secs(2)).await;
        // Judged on the evidence: connected (the kernel still accepts), no banner.
        assert!(
            matches!(
                r,
                Err(TransportError::ConnectTimeout {
                    stage: Stage::NoBanner,
                    ..
                })
            ),
            "{:?}",
            r.as_ref().err()
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the login deadline did not hold"
        );
        t.reap();
    });
    let left = ssh_processes(fleet.ssh_config().to_str().unwrap());
    assert!(left.is_empty(), "ssh left behind: {left:?}");
    h.thaw().unwrap();
}

#[test]
fn open_connections_stay_under_the_bound_and_kept_ones_are_reused_or_closed_oldest_first() {
    let fleet = fleet(4);
    let cfg = fleet.ssh_config().to_path_buf();
    let dir = rt().block_on(async {
        // At most two connections open at once.
        let t = Transport::with_limit(Some(cfg), 2).unwrap();
        let masters = || {
            ssh_processes(t.control_dir().to_str().unwrap())
                .into_iter()
                .filter(|(_, cmd)| cmd.contains("[mux]"))
                .count()
        };
        for name in ["h01", "h02", "h03", "h04"] {
            let c = t
                .connect(&host(name), Duration::from_secs(10))
                .await
                .unwrap();
            let out = c
                .run(&cmd("hostname", Duration::from_secs(10)))
                .await
                .unwrap();
            assert_eq!(out.stdout.trim(), name);
            t.keep(c).await;
            assert!(t.open_now() <= 2, "{} open", t.open_now());
            assert!(masters() <= 2, "{} ssh masters", masters());
        }
        // h01 and h02 were closed to make room (oldest first); h03 and h04 are kept.
        assert!(t.reuse("h01").await.is_none());
        assert!(t.reuse("h02").await.is_none());
        // A kept connection whose master is gone is not reused (h03's: the third login).
        let all = ssh_processes(t.control_dir().to_str().unwrap());
        let (pid, _) = all
            .iter()
            .find(|(_, cmd)| cmd.contains(" -M ") && cmd.contains("/2/m "))
            .cloned()
            .unwrap_or_else(|| panic!("h03's master among {all:?}"));
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(t.reuse("h03").await.is_none(), "a dead master was reused");
        let c = t.reuse("h04").await.expect("h04's connection was kept");
        let out = c
            .run(&cmd("hostname", Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(out.stdout.trim(), "h04");
        c.close().await;
        t.close_idle().await;
        assert_eq!(t.open_now(), 0);
        assert_eq!(t.reap(), 0, "a closed connection left its master");
        t.control_dir().to_str().unwrap().to_string()
    });
    let left = ssh_processes(&dir);
    assert!(left.is_empty(), "ssh left behind: {left:?}");
}

/// A TCP server on 127.0.0.1 that accepts, counts, sends `banner` on its first
/// `banners` connections, then says nothing more (holding every connection open).
fn stalling_server(banner: Option<&'static str>, banners: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let n = count.fetch_add(1, Ordering::SeqCst);
            if let Some(b) = banner.filter(|_| n < banners) {
                let _ = stream.write_all(b.as_bytes());
            }
            held.push(stream);
        }
    });
    (port, accepted)
}

#[test]
fn a_missed_login_is_judged_on_evidence_and_only_a_stalled_handshake_is_retried() {
    // No lab: two servers that stall, one before its banner, one after it.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        "Host *\n  User root\n  UserKnownHostsFile /dev/null\n",
    )
    .unwrap();
    let (silent, silent_n) = stalling_server(None, 0);
    let (stalled, stalled_n) = stalling_server(Some("SSH-2.0-OpenSSH_9.2p1 stall\r\n"), usize::MAX);
    // Its banner once, then silence: a host that froze in the middle of a handshake.
    let (froze, froze_n) = stalling_server(Some("SSH-2.0-OpenSSH_9.2p1 froze\r\n"), 1);
    let at = |name: &str, port: u16| Host {
        address: "127.0.0.1".into(),
        port: Some(port),
        ..host(name)
    };
    rt().block_on(async {
        let t = Transport::new(Some(cfg)).unwrap();
        let deadline = Duration::from_secs(2);
        // Connected, no banner: the host's (hung), at once, one login.
        match t.connect(&at("silent", silent), deadline).await {
            Err(TransportError::ConnectTimeout {
                stage, evidence, ..
            }) => {
                assert_eq!(stage, Stage::NoBanner, "{evidence}");
                assert!(evidence.contains("no SSH banner"), "{evidence}");
            }
            other => panic!("{:?}", other.err()),
        }
        assert_eq!(
            silent_n.load(Ordering::SeqCst),
            1,
            "no retry, and no fresh look, without a banner"
        );
        // A banner, then nothing: the controller's side first; a second, fresh login,
        // and the evidence names both.
        match t.connect(&at("stalled", stalled), deadline).await {
            Err(TransportError::ConnectTimeout {
                stage, evidence, ..
            }) => {
                assert_eq!(stage, Stage::Handshake, "{evidence}");
                assert!(
                    evidence.contains("first login") && evidence.contains("second login"),
                    "{evidence}"
                );
                assert!(evidence.contains("OpenSSH_9.2p1 stall"), "{evidence}");
            }
            other => panic!("{:?}", other.err()),
        }
        // The login, the fresh look beside it (which heard the banner), the retry.
        assert_eq!(stalled_n.load(Ordering::SeqCst), 3, "one retry");
        // A banner, then nothing, and a fresh connection meanwhile hears no banner: the
        // host stopped answering — hung at once, no retry.
        match t.connect(&at("froze", froze), deadline).await {
            Err(TransportError::ConnectTimeout {
                stage, evidence, ..
            }) => {
                assert_eq!(stage, Stage::NoBanner, "{evidence}");
                assert!(evidence.contains("OpenSSH_9.2p1 froze"), "{evidence}");
                assert!(
                    evidence.contains("fresh connection") && evidence.contains("no SSH banner"),
                    "{evidence}"
                );
                assert!(!evidence.contains("second login"), "{evidence}");
            }
            other => panic!("{:?}", other.err()),
        }
        assert_eq!(
            froze_n.load(Ordering::SeqCst),
            2,
            "the login and the fresh look"
        );
        t.reap();
    });
}
