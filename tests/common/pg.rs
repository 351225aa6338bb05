//! A real PostgreSQL for the shared-store tests: `initdb` and `pg_ctl` from
//! /usr/lib/postgresql/VERSION/bin (the newest installed; 15 on these machines) run as the `postgres` user in a temporary directory, on a
//! loopback port. One cluster is shared by the tests of a binary ([`shared`]), each test
//! with a database of its own ([`Cluster::database`]); a test that stops PostgreSQL
//! starts its own ([`Cluster::start`]). A watchdog stops a cluster and removes its
//! directory when the test process ends, however it ends. A machine without PostgreSQL
//! fails the test, saying what to install.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!("no /usr/lib/postgresql/*/bin/initdb: the shared-store tests need PostgreSQL (apt-get install postgresql)")
    })
}

/// The password every test connects with (trust auth: it is not checked, but it is
/// in every URL, so a test can look for it in what wavectl prints).
pub const PASSWORD: &str = "s3cret-never-shown";

pub struct Cluster {
    dir: PathBuf,
    pub port: u16,
    next: AtomicUsize,
}

/// The cluster the tests of this binary share, started by the first that asks.
pub fn shared() -> &'static Cluster {
    static C: OnceLock<Cluster> = OnceLock::new();
    C.get_or_init(Cluster::start)
}

fn as_postgres(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin_dir().join(program))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("runuser {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Cluster {
    /// A new cluster of its own, up and taking connections.
    pub fn start() -> Cluster {
        bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("wavectl-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(chown.success(), "chown {}", dir.display());
        let data = dir.join("data");
        let d = data.to_str().unwrap();
        as_postgres(
            "initdb",
            &[
                "-D",
                d,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = free_port();
        let c = Cluster {
            dir,
            port,
            next: AtomicUsize::new(0),
        };
        c.watch();
        c.up();
        c
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_string()
    }

    /// Start (again) on its port.
    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").to_str().unwrap().to_string();
        as_postgres(
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
    }

    /// Stop at once (`immediate`: like a crash or a network gone).
    pub fn down(&self) {
        as_postgres(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Stop the cluster and remove its directory once this test process is gone.
    fn watch(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             runuser -u postgres -- {bin}/pg_ctl -D {data} -m immediate stop >/dev/null 2>&1; \
             rm -rf {dir}",
            pid = std::process::id(),
            bin = bin_dir().display(),
            data = self.data(),
            dir = self.dir.display()
        );
        // `setsid -f`: the watchdog forks off and outlives this process; setsid returns.
        let started = Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(started.success(), "setsid -f sh (the cluster's watchdog)");
    }

    /// SQL as the superuser, on database `db`; its output (unaligned, tuples only).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new empty database; its URL (with [`PASSWORD`]).
    pub fn database(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }
}

/// The database name of a URL made by [`Cluster::url`].
pub fn db_of(url: &str) -> &str {
    let tail = url.rsplit('/').next().unwrap();
    tail.split('?').next().unwrap()
}

/// One connection kept open to count rows fast (a test that polls a count every
/// millisecond would spend its machine on starting `psql`).
pub struct Counter {
    rt: tokio::runtime::Runtime,
    conn: sqlx::PgConnection,
}

impl Counter {
    pub fn connect(url: &str) -> Counter {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conn = rt.block_on(async {
            use sqlx::Connection;
            sqlx::PgConnection::connect(url).await.unwrap()
        });
        Counter { rt, conn }
    }

    /// The single number `sql` selects.
    pub fn count(&mut self, sql: &str) -> usize {
        let n: i64 = self
            .rt
            .block_on(sqlx::query_scalar(sql).fetch_one(&mut self.conn))
            .unwrap();
        n as usize
    }
}
