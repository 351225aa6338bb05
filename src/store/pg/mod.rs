//! PostgreSQL behind [`Store`] (`--store postgres://…`): one database shared by every
//! controller, bastion and CI runner that names it. Tables in `0001_init.sql`; the
//! schema's version is sqlx's migrations table.
//!
//! - A rollout's lock is a session advisory lock held by the controller's own
//!   connection (it dies with the controller or its network); taking it bumps the
//!   rollout's epoch in `wavectl_leases`.
//! - Every journal append is one transaction on that connection that first checks the
//!   epoch is still the writer's (a stale controller's records are refused: `Fenced`).
//!   A connection that drops is reconnected for up to [`PATIENCE`]: the lock is taken
//!   again only if the epoch is still ours; past that the store is `Unreachable`.
//! - Stop requests are rows plus a NOTIFY, polled as well (NOTIFY is best-effort).
//!
//! The password is never printed: messages name the store by [`redact`]ed URL.

mod conninfo;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use sha2::Digest;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

use crate::rollout::{Freeze, Promotion, Record, StopRequest, FORMAT};

use super::{
    Access, Appending, AppliedPlan, Artefact, AuditEntry, BoxFuture, Holder, Journal,
    JournalWriter, Lease, Store, StoreError, STOP_POLL,
};

pub use conninfo::{parse_options, redact};

/// How long a controller goes on without the store (reconnecting) before it gives up
/// the run (exit 4): the contract's 30 s.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long a new connection (and the lock on it) may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// The advisory locks' first key: wavectl's (the second is the rollout's `hashtext`).
const LOCK_CLASS: i32 = 0x7761_7665; // "wave"

/// The channel stop requests are announced on (payload: the run).
const STOP_CHANNEL: &str = "wavectl_stop";

/// The schema versions this wavectl knows, oldest first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs journals leases stops audit artefacts applied plans",
        include_str!("0001_init.sql"),
    ),
    (
        2,
        "holds: freezes and promotes",
        include_str!("0002_holds.sql"),
    ),
];

/// The newest schema version this wavectl knows.
pub fn latest_schema() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

fn migrator() -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            MIGRATIONS
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect(),
        ),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// A PostgreSQL database as the store.
pub struct PgStore {
    opts: PgConnectOptions,
    /// The URL with its password hidden: how messages name the store.
    shown: String,
    pool: PgPool,
}

impl PgStore {
    /// The store `url` names (a `postgres://` URL or a libpq conninfo); nothing is
    /// connected yet.
    pub fn new(url: &str) -> Result<PgStore, StoreError> {
        let shown = redact(url);
        let opts = parse_options(url).map_err(|problem| StoreError::Unusable {
            path: shown.clone().into(),
            problem: format!("--store {shown}: {problem}"),
            help: "give a URL like postgres://USER@HOST:5432/DB?sslmode=verify-full, or a conninfo like \"host=HOST dbname=DB user=USER\" (the password from PGPASSWORD or ~/.pgpass)".into(),
        })?;
        let opts = opts.application_name("wavectl");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_WITHIN)
            .connect_lazy_with(opts.clone());
        Ok(PgStore { opts, shown, pool })
    }

    fn unreachable(&self, e: sqlx::Error) -> StoreError {
        unreachable_err(&self.shown, e)
    }

    fn unusable(&self, problem: String, help: &str) -> StoreError {
        StoreError::Unusable {
            path: self.shown.clone().into(),
            problem,
            help: help.to_string(),
        }
    }

    /// The schema version of the database (0: none yet).
    async fn schema_version(&self) -> Result<i64, StoreError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.unreachable(e))?;
        if !exists {
            return Ok(0);
        }
        let v: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))?;
        Ok(v.unwrap_or(0))
    }

    /// Refuse a schema newer than this wavectl knows (exit 2).
    fn refuse_newer(&self, found: i64) -> Result<(), StoreError> {
        if found > latest_schema() {
            return Err(self.unusable(
                format!(
                    "the store {} has schema version {found}, newer than this wavectl knows ({})",
                    self.shown,
                    latest_schema()
                ),
                "use the wavectl version that upgraded it (or a newer one)",
            ));
        }
        Ok(())
    }

    /// `wavectl store init`: create or upgrade the schema; the version it is at now.
    pub async fn init(&self) -> Result<(i64, i64), StoreError> {
        let before = self.schema_version().await?;
        self.refuse_newer(before)?;
        migrator().run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => self.unreachable(e),
            other => self.unusable(
                format!("cannot upgrade the schema of {}: {other}", self.shown),
                "see the database's log; a schema half upgraded by hand must be fixed by hand",
            ),
        })?;
        Ok((before, latest_schema()))
    }

    async fn usable(&self) -> Result<(), StoreError> {
        let v = match self.schema_version().await {
            Ok(v) => v,
            Err(StoreError::Unreachable { why, .. }) => {
                return Err(self.unusable(
                    format!("cannot reach the store {}: {why}", self.shown),
                    "check the URL, that the database is up and reachable from here, and the password (PGPASSWORD or ~/.pgpass)",
                ))
            }
            Err(e) => return Err(e),
        };
        self.refuse_newer(v)?;
        if v < latest_schema() {
            let what = if v == 0 {
                "has no wavectl schema".to_string()
            } else {
                format!(
                    "has schema version {v}, older than this wavectl's ({})",
                    latest_schema()
                )
            };
            return Err(self.unusable(
                format!("the store {} {what}", self.shown),
                &format!("run `wavectl --store {} store init` once", self.shown),
            ));
        }
        Ok(())
    }

    async fn holder_now(&self, rollout: &str) -> Result<Option<Holder>, StoreError> {
        let row = sqlx::query(
            "SELECT l.run, l.host, l.username, l.pid FROM wavectl_leases l \
             WHERE l.rollout = $1 AND EXISTS (SELECT 1 FROM pg_locks k \
               WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 2 \
               AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND k.classid = ($2::int4)::oid AND k.objid = (hashtext($1))::oid)",
        )
        .bind(rollout)
        .bind(LOCK_CLASS)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.unreachable(e))?;
        Ok(row.map(|r| Holder {
            run: r.get(0),
            host: r.get(1),
            user: r.get(2),
            pid: r.get::<i32, _>(3) as u32,
        }))
    }

    async fn lock_now(&self, rollout: &str, driver: &Holder) -> Result<Lease, StoreError> {
        let connect = async {
            let mut conn = PgConnection::connect_with(&self.opts).await?;
            let got = try_lock(&mut conn, rollout).await?;
            Ok::<_, sqlx::Error>((conn, got))
        };
        let (mut conn, got) = match tokio::time::timeout(CONNECT_WITHIN, connect).await {
            Ok(r) => r.map_err(|e| self.unreachable(e))?,
            Err(_) => {
                return Err(StoreError::Unreachable {
                    store: self.shown.clone(),
                    why: format!(
                        "no answer within {}",
                        crate::units::duration(CONNECT_WITHIN)
                    ),
                })
            }
        };
        if !got {
            let _ = conn.close().await;
            let holder = self.holder_now(rollout).await?.unwrap_or(Holder {
                run: "?".into(),
                host: "?".into(),
                user: "?".into(),
                pid: 0,
            });
            return Err(StoreError::Locked {
                rollout: rollout.to_string(),
                holder,
            });
        }
        let mut tx = conn.begin().await.map_err(|e| self.unreachable(e))?;
        let epoch: i64 = sqlx::query_scalar(
            "INSERT INTO wavectl_leases AS l (rollout, epoch, run, host, username, pid) \
             VALUES ($1, 1, $2, $3, $4, $5) ON CONFLICT (rollout) DO UPDATE SET \
             epoch = l.epoch + 1, run = EXCLUDED.run, host = EXCLUDED.host, \
             username = EXCLUDED.username, pid = EXCLUDED.pid, taken_at = now() \
             RETURNING epoch",
        )
        .bind(rollout)
        .bind(&driver.run)
        .bind(&driver.host)
        .bind(&driver.user)
        .bind(driver.pid as i32)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.unreachable(e))?;
        // Stop requests left for this run were for a controller that is gone.
        sqlx::query("DELETE FROM wavectl_stops WHERE run = $1")
            .bind(&driver.run)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.unreachable(e))?;
        tx.commit().await.map_err(|e| self.unreachable(e))?;
        let hold = PgHold {
            conn: tokio::sync::Mutex::new(Some(conn)),
            opts: self.opts.clone(),
            shown: self.shown.clone(),
        };
        Ok(Lease::new(
            rollout,
            driver.clone(),
            epoch as u64,
            Arc::new(hold),
        ))
    }

    async fn read_now(&self, run: &str) -> Result<Journal, StoreError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM wavectl_runs WHERE id = $1)")
                .bind(run)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))?;
        if !exists {
            return Err(StoreError::NoSuchRun(run.to_string()));
        }
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, record FROM wavectl_journal WHERE run = $1 ORDER BY seq")
                .bind(run)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))?;
        Ok(parse_records(&self.shown, run, &rows))
    }

    async fn request_stop_now(&self, run: &str, req: &StopRequest) -> Result<(), StoreError> {
        let text = serde_json::to_string(req).unwrap_or_default();
        let mut tx = self.pool.begin().await.map_err(|e| self.unreachable(e))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM wavectl_runs WHERE id = $1)")
                .bind(run)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.unreachable(e))?;
        if !exists {
            return Err(StoreError::NoSuchRun(run.to_string()));
        }
        sqlx::query(
            "INSERT INTO wavectl_stops (run, request) VALUES ($1, $2) \
             ON CONFLICT (run) DO UPDATE SET request = EXCLUDED.request, at = now()",
        )
        .bind(run)
        .bind(&text)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.unreachable(e))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(STOP_CHANNEL)
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.unreachable(e))?;
        tx.commit().await.map_err(|e| self.unreachable(e))
    }

    async fn stop_request_now(&self, run: &str) -> Result<Option<StopRequest>, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT request FROM wavectl_stops WHERE run = $1")
                .bind(run)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))?;
        Ok(text.map(|t| {
            serde_json::from_str(&t).unwrap_or(StopRequest {
                by: "a stop request".into(),
            })
        }))
    }

    /// Told by NOTIFY, and asked every [`STOP_POLL`] as well (a notification is lost
    /// across a reconnection, a failover or a pooler).
    async fn wait_stop_now(&self, run: &str) -> StopRequest {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(STOP_CHANNEL).await {
                Ok(()) => Some(l),
                Err(_) => None,
            },
            Err(_) => None,
        };
        loop {
            if let Ok(Some(r)) = self.stop_request_now(run).await {
                return r;
            }
            match &mut listener {
                Some(l) => match tokio::time::timeout(STOP_POLL, l.try_recv()).await {
                    Ok(Err(_)) | Ok(Ok(None)) => tokio::time::sleep(STOP_POLL).await,
                    _ => {}
                },
                None => tokio::time::sleep(STOP_POLL).await,
            }
        }
    }

    async fn audit_now(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let text = serde_json::to_string(entry).unwrap_or_default();
        let key = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        sqlx::query(
            "INSERT INTO wavectl_audit (at, key, entry) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&entry.at)
        .bind(&key)
        .bind(&text)
        .execute(&self.pool)
        .await
        .map_err(|e| self.unreachable(e))?;
        Ok(())
    }

    async fn audit_log_now(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT entry FROM wavectl_audit ORDER BY at, seq")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))?;
        Ok(rows
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    async fn applied_now(&self, id: &str) -> Result<Option<AppliedPlan>, StoreError> {
        let row: Option<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT plan, hash, run, at, username FROM wavectl_applied_plans WHERE plan = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.unreachable(e))?;
        Ok(row.map(|(plan, hash, run, at, user)| AppliedPlan {
            plan,
            hash,
            run,
            at,
            user,
        }))
    }

    async fn claim_now(&self, rec: &AppliedPlan) -> Result<Option<AppliedPlan>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO wavectl_applied_plans (plan, hash, run, at, username) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (plan) DO NOTHING",
        )
        .bind(&rec.plan)
        .bind(&rec.hash)
        .bind(&rec.run)
        .bind(&rec.at)
        .bind(&rec.user)
        .execute(&self.pool)
        .await
        .map_err(|e| self.unreachable(e))?;
        if done.rows_affected() == 1 {
            return Ok(None);
        }
        Ok(Some(
            self.applied_now(&rec.plan)
                .await?
                .unwrap_or_else(|| rec.clone()),
        ))
    }
}

/// Records as stored, parsed as the file store parses its lines: the records before
/// the first that does not read, and that damage.
fn parse_records(shown: &str, run: &str, rows: &[(i64, String)]) -> Journal {
    let mut records = Vec::with_capacity(rows.len());
    for (seq, text) in rows {
        let at = format!("{shown} run {run} record {seq}");
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let damage = StoreError::Corrupt {
                    at,
                    message: e.to_string(),
                };
                return Journal {
                    records,
                    damage: Some(damage),
                };
            }
        };
        match value.get("v").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT) => {}
            Some(found) => {
                return Journal {
                    records,
                    damage: Some(StoreError::Version { at, found }),
                }
            }
            None => {
                let damage = StoreError::Corrupt {
                    at,
                    message: "no format version `v`".into(),
                };
                return Journal {
                    records,
                    damage: Some(damage),
                };
            }
        }
        match serde_json::from_value::<Record>(value) {
            Ok(r) => records.push(r),
            Err(e) => {
                let damage = StoreError::Corrupt {
                    at,
                    message: e.to_string(),
                };
                return Journal {
                    records,
                    damage: Some(damage),
                };
            }
        }
    }
    Journal {
        records,
        damage: None,
    }
}

/// `pg_try_advisory_lock` of the rollout on `conn` (a session lock: held until the
/// connection ends).
async fn try_lock(conn: &mut PgConnection, rollout: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(rollout)
        .fetch_one(conn)
        .await
}

fn unreachable_err(shown: &str, e: sqlx::Error) -> StoreError {
    StoreError::Unreachable {
        store: shown.to_string(),
        why: e.to_string(),
    }
}

/// The error says the connection is gone (or going): reconnect, don't give up yet.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            // connection exceptions, operator intervention (terminated, shutting down),
            // the database in recovery or out of resources.
            c.starts_with("08") || c.starts_with("57") || c.starts_with("53")
        }),
        _ => false,
    }
}

/// A PostgreSQL lease's hold: the connection whose session holds the advisory lock
/// (`None` while it is being reconnected).
struct PgHold {
    conn: tokio::sync::Mutex<Option<PgConnection>>,
    opts: PgConnectOptions,
    shown: String,
}

/// Why one try at a fenced write failed.
enum Try {
    /// Refused for good (fenced, or an error that is not the connection's).
    Refused(StoreError),
    /// The connection went: try again on a new one.
    Again(sqlx::Error),
}

impl PgHold {
    /// Run `work` in one transaction on the lease's connection, after checking that the
    /// rollout's epoch is still `epoch`. A lost connection is made again (and the lock
    /// taken again, if the epoch is still ours) for up to [`PATIENCE`].
    async fn fenced(
        &self,
        rollout: &str,
        run: &str,
        epoch: u64,
        work: &Write,
    ) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut guard = self.conn.lock().await;
        let mut last: Option<sqlx::Error> = None;
        loop {
            if guard.is_none() {
                if tokio::time::Instant::now() >= deadline {
                    let why = last.map_or("no connection".to_string(), |e| e.to_string());
                    return Err(StoreError::Unreachable {
                        store: self.shown.clone(),
                        why: format!("{why} (for {})", crate::units::duration(PATIENCE)),
                    });
                }
                // Not at once: the connection went for a reason, and a takeover may be
                // on its way (it will be seen in the epoch).
                tokio::time::sleep(Duration::from_secs(2)).await;
                match bounded(deadline, self.retake(rollout, run, epoch)).await {
                    Ok(c) => *guard = Some(c),
                    Err(Try::Refused(e)) => return Err(e),
                    Err(Try::Again(e)) => {
                        last = Some(e);
                        continue;
                    }
                }
            }
            let Some(conn) = guard.as_mut() else { continue };
            match bounded(deadline, attempt(conn, rollout, run, epoch, work)).await {
                Ok(()) => return Ok(()),
                Err(Try::Refused(e)) => return Err(e),
                Err(Try::Again(e)) => {
                    if let Some(c) = guard.take() {
                        drop(c);
                    }
                    last = Some(e);
                }
            }
        }
    }

    /// A new connection, holding the rollout's lock again — only if nobody took the
    /// rollout meanwhile (the epoch is still ours).
    async fn retake(&self, rollout: &str, run: &str, epoch: u64) -> Result<PgConnection, Try> {
        let mut conn = PgConnection::connect_with(&self.opts)
            .await
            .map_err(Try::Again)?;
        let lost = |why: String| {
            Try::Refused(StoreError::Fenced {
                run: run.to_string(),
                why,
            })
        };
        let got = try_lock(&mut conn, rollout).await.map_err(Try::Again)?;
        if !got {
            return Err(lost(format!(
                "the connection holding rollout `{rollout}`'s lock dropped, and another controller holds it now"
            )));
        }
        let now: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM wavectl_leases WHERE rollout = $1")
                .bind(rollout)
                .fetch_optional(&mut conn)
                .await
                .map_err(Try::Again)?;
        if now != Some(epoch as i64) {
            let _ = conn.close().await;
            return Err(lost(format!(
                "the connection holding rollout `{rollout}`'s lock dropped, and another controller took the run over meanwhile (epoch {} → {})",
                epoch,
                now.unwrap_or(0)
            )));
        }
        Ok(conn)
    }
}

/// `work`, given until `deadline` (at least a second): a store that does not answer
/// (a network gone without a reset) is a lost connection, not a wait of minutes.
async fn bounded<T>(
    deadline: tokio::time::Instant,
    work: impl std::future::Future<Output = Result<T, Try>>,
) -> Result<T, Try> {
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(Duration::from_secs(1));
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => Err(Try::Again(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer within {}",
                crate::units::duration(Duration::from_secs(left.as_secs()))
            ),
        )))),
    }
}

/// What a fenced write writes.
enum Write {
    /// A new run's row.
    Create { rollout: String },
    /// Journal records (JSON, in order).
    Append { lines: Vec<String> },
}

/// One try: a transaction that checks the epoch, then does `work`.
async fn attempt(
    conn: &mut PgConnection,
    rollout: &str,
    run: &str,
    epoch: u64,
    work: &Write,
) -> Result<(), Try> {
    let sort = |e: sqlx::Error| {
        if connection_lost(&e) {
            Try::Again(e)
        } else {
            Try::Refused(StoreError::Unreachable {
                store: "the store".into(),
                why: e.to_string(),
            })
        }
    };
    let mut tx = conn.begin().await.map_err(sort)?;
    let now: Option<i64> =
        sqlx::query_scalar("SELECT epoch FROM wavectl_leases WHERE rollout = $1 FOR SHARE")
            .bind(rollout)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sort)?;
    if now != Some(epoch as i64) {
        return Err(Try::Refused(StoreError::Fenced {
            run: run.to_string(),
            why: format!(
                "another controller took rollout `{rollout}` over (epoch {} → {}): its records are refused",
                epoch,
                now.unwrap_or(0)
            ),
        }));
    }
    match work {
        Write::Create { rollout } => {
            sqlx::query("INSERT INTO wavectl_runs (id, rollout) VALUES ($1, $2)")
                .bind(run)
                .bind(rollout)
                .execute(&mut *tx)
                .await
                .map_err(sort)?;
        }
        Write::Append { lines } => {
            sqlx::query(
                "INSERT INTO wavectl_journal (run, epoch, record) \
                 SELECT $1, $2, r FROM unnest($3::text[]) WITH ORDINALITY AS t(r, i) \
                 ORDER BY i",
            )
            .bind(run)
            .bind(epoch as i64)
            .bind(lines)
            .execute(&mut *tx)
            .await
            .map_err(sort)?;
        }
    }
    tx.commit().await.map_err(sort)
}

/// The one writer of a run's journal in the database.
struct PgWriter {
    run: String,
    lease: Lease,
}

impl PgWriter {
    fn hold(&self) -> Result<Arc<PgHold>, StoreError> {
        self.lease
            .guard::<Arc<PgHold>>()
            .cloned()
            .ok_or_else(|| StoreError::Fenced {
                run: self.run.clone(),
                why: "its lease is not one of this database".to_string(),
            })
    }
}

impl JournalWriter for PgWriter {
    fn run(&self) -> &str {
        &self.run
    }

    fn lease(&self) -> &Lease {
        &self.lease
    }

    /// One transaction for all of `records`, fenced by the lease's epoch (the engine's
    /// group commit).
    fn append<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let hold = self.hold()?;
            let lines: Vec<String> = records
                .iter()
                .map(|r| serde_json::to_string(r).unwrap_or_default())
                .collect();
            let work = Write::Append { lines };
            hold.fenced(&self.lease.rollout, &self.run, self.lease.epoch, &work)
                .await
        })
    }
}

impl Store for PgStore {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn journal_location(&self, run: &str) -> String {
        format!("{} (run {run})", self.shown)
    }

    fn artefact_location(&self, run: &str, what: Artefact) -> String {
        format!("{} (run {run}, {})", self.shown, artefact_name(what))
    }

    fn check(&self, _access: Access) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.usable())
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.usable())
    }

    fn runs(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT id FROM wavectl_runs ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))
        })
    }

    fn read<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Journal, StoreError>> {
        Box::pin(self.read_now(run))
    }

    fn lock<'a>(
        &'a self,
        rollout: &'a str,
        driver: &'a Holder,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(self.lock_now(rollout, driver))
    }

    fn holder<'a>(&'a self, rollout: &'a str) -> BoxFuture<'a, Result<Option<Holder>, StoreError>> {
        Box::pin(self.holder_now(rollout))
    }

    fn create<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn JournalWriter>, StoreError>> {
        Box::pin(async move {
            let w = PgWriter {
                run: run.to_string(),
                lease,
            };
            let hold = w.hold()?;
            let work = Write::Create {
                rollout: w.lease.rollout.clone(),
            };
            let made = hold
                .fenced(&w.lease.rollout, run, w.lease.epoch, &work)
                .await;
            match made {
                Ok(()) => Ok(Box::new(w) as Box<dyn JournalWriter>),
                Err(StoreError::Unreachable { why, .. }) if why.contains("duplicate key") => {
                    Err(self.unusable(
                        format!("run {run} is already in {}", self.shown),
                        "run ids are unique: try again",
                    ))
                }
                Err(e) => Err(e),
            }
        })
    }

    fn open<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Appending, StoreError>> {
        Box::pin(async move {
            let w = PgWriter {
                run: run.to_string(),
                lease,
            };
            w.hold()?;
            let j = self.read_now(run).await?;
            if let Some(e) = j.damage {
                return Err(e);
            }
            Ok((Box::new(w) as Box<dyn JournalWriter>, j.records))
        })
    }

    fn request_stop<'a>(
        &'a self,
        run: &'a str,
        req: &'a StopRequest,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.request_stop_now(run, req))
    }

    fn stop_request<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<StopRequest>, StoreError>> {
        Box::pin(self.stop_request_now(run))
    }

    fn wait_stop<'a>(&'a self, run: &'a str) -> BoxFuture<'a, StopRequest> {
        Box::pin(self.wait_stop_now(run))
    }

    fn audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.audit_now(entry))
    }

    fn audit_log(&self) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>> {
        Box::pin(self.audit_log_now())
    }

    fn put<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO wavectl_artefacts (run, what, bytes) VALUES ($1, $2, $3) \
                 ON CONFLICT (run, what) DO UPDATE SET bytes = EXCLUDED.bytes",
            )
            .bind(run)
            .bind(artefact_name(what))
            .bind(bytes)
            .execute(&self.pool)
            .await
            .map_err(|e| self.unreachable(e))?;
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT bytes FROM wavectl_artefacts WHERE run = $1 AND what = $2")
                .bind(run)
                .bind(artefact_name(what))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))
        })
    }

    fn applied_plan<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>> {
        Box::pin(self.applied_now(id))
    }

    fn claim_plan<'a>(
        &'a self,
        rec: &'a AppliedPlan,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>> {
        Box::pin(self.claim_now(rec))
    }

    fn unclaim_plan<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM wavectl_applied_plans WHERE plan = $1")
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| self.unreachable(e))?;
            Ok(())
        })
    }

    fn freeze<'a>(&'a self, f: &'a Freeze) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO wavectl_freezes (scope, body) VALUES ($1, $2) \
                 ON CONFLICT (scope) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(freeze_scope(f.rollout.as_deref()))
            .bind(serde_json::to_string(f).unwrap_or_default())
            .execute(&self.pool)
            .await
            .map_err(|e| self.unreachable(e))?;
            Ok(())
        })
    }

    fn unfreeze<'a>(
        &'a self,
        rollout: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Freeze>, StoreError>> {
        Box::pin(async move {
            // `None` lifts every freeze; a rollout's name lifts that rollout's only.
            let rows: Vec<(String, String)> = sqlx::query_as(
                "DELETE FROM wavectl_freezes WHERE $1::text IS NULL OR scope = $1 \
                 RETURNING scope, body",
            )
            .bind(rollout)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.unreachable(e))?;
            rows.into_iter()
                .map(|(s, f)| parse_freeze(&s, &f))
                .collect()
        })
    }

    fn freezes(&self) -> BoxFuture<'_, Result<Vec<Freeze>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT scope, body FROM wavectl_freezes ORDER BY scope")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.unreachable(e))?;
            let mut out = rows
                .into_iter()
                .map(|(s, f)| parse_freeze(&s, &f))
                .collect::<Result<Vec<_>, _>>()?;
            out.sort_by(|a, b| a.rollout.cmp(&b.rollout));
            Ok(out)
        })
    }

    fn promote<'a>(
        &'a self,
        run: &'a str,
        p: &'a Promotion,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO wavectl_promotes (run, promotion) \
                 SELECT id, $2 FROM wavectl_runs WHERE id = $1 \
                 ON CONFLICT (run) DO UPDATE SET promotion = EXCLUDED.promotion, at = now()",
            )
            .bind(run)
            .bind(serde_json::to_string(p).unwrap_or_default())
            .execute(&self.pool)
            .await
            .map_err(|e| self.unreachable(e))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NoSuchRun(run.to_string()));
            }
            Ok(())
        })
    }

    fn promotion<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<Promotion>, StoreError>> {
        Box::pin(async move {
            let row: Option<String> =
                sqlx::query_scalar("SELECT promotion FROM wavectl_promotes WHERE run = $1")
                    .bind(run)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.unreachable(e))?;
            row.map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    at: format!("table wavectl_promotes, run {run}"),
                    message: e.to_string(),
                })
            })
            .transpose()
        })
    }
}

/// A freeze's row key: its rollout, or `@all` (`@` is in no rollout name).
fn freeze_scope(rollout: Option<&str>) -> &str {
    rollout.unwrap_or("@all")
}

fn parse_freeze(scope: &str, text: &str) -> Result<Freeze, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        at: format!("table wavectl_freezes, scope {scope}"),
        message: e.to_string(),
    })
}

fn artefact_name(what: Artefact) -> &'static str {
    match what {
        Artefact::Script => "script",
        Artefact::Notify => "notify.json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Event;

    fn rec() -> String {
        serde_json::to_string(&Record::new(1, Event::Tick)).unwrap()
    }

    #[test]
    fn stored_records_read_as_the_journal_does_and_damage_names_its_row() {
        let rows = vec![(1, rec()), (2, rec())];
        let j = parse_records("postgres://a@db/w", "r1", &rows);
        assert_eq!(j.records.len(), 2);
        assert!(j.damage.is_none());
        let rows = vec![
            (1, rec()),
            (7, "{\"v\":1,\"at\":3,\"type\":\"no_such\"}".into()),
            (9, rec()),
        ];
        let j = parse_records("postgres://a@db/w", "r1", &rows);
        assert_eq!(j.records.len(), 1, "nothing after the damage");
        match j.damage {
            Some(StoreError::Corrupt { at, .. }) => {
                assert_eq!(at, "postgres://a@db/w run r1 record 7")
            }
            other => panic!("{other:?}"),
        }
        let j = parse_records(
            "s",
            "r1",
            &[(3, "{\"v\":2,\"at\":1,\"type\":\"tick\"}".into())],
        );
        assert!(matches!(
            j.damage,
            Some(StoreError::Version { found: 2, .. })
        ));
    }

    #[test]
    fn only_a_connection_that_went_is_tried_again() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(connection_lost(&io));
        assert!(connection_lost(&sqlx::Error::PoolTimedOut));
        assert!(!connection_lost(&sqlx::Error::RowNotFound));
        assert!(!connection_lost(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn the_schema_versions_are_in_order() {
        let v: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
        assert_eq!(latest_schema(), *v.last().unwrap());
        assert_eq!(migrator().migrations.len(), MIGRATIONS.len());
    }
}
