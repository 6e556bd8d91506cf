//! The PostgreSQL store: journals that several engine processes share, each instance owned by one
//! process at a time under a lease, every write fenced.
//!
//! Tables (in the store's schema, created and migrated by [`PostgresStore::open`]):
//! `meta` (the schema version), `processes` (one row per open store, and one more each time it
//! registers anew after losing its lease: its lease), `instances`
//! (each instance's newest row number, whether it is open, its owner and its fencing epoch) and
//! `journal` (the rows, with the owner and epoch that wrote them), and `inbox` (requests posted to
//! instances other processes own).
//!
//! Every append is one statement that checks, for each row, that the writing process's lease has
//! not expired (by the database's clock) and that it still owns the instance under the epoch it
//! claimed it with (or claims it: an instance handed back, or a closed one a retry reopens); a
//! process that lost its lease commits nothing as the id that held it (it registers anew, under a
//! new id, once its engines have dropped their copies: [`Store::rejoin`]). The same statement
//! deletes the inbox message a step applied, so a message is applied exactly once. Concurrent
//! appends share one statement and one commit (group commit); a lone append is sent at once, a
//! prepared statement on the writer's own connection: one round trip and the commit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;

use super::{Definition, InstanceStatus, Message, Posted, Row, Store, StoreError, Summary};

/// The newest schema this build reads and writes. Schema 2 adds the rows' plaintext
/// [`Summary`] (journal `at`, `state`, `status`; instances' `state`, `status`, `started`,
/// `updated`), the `definitions` table and the inspector's indexes, as the SQLite store's
/// schema 2 does; a schema-1 database is upgraded in place (its summaries stay NULL: unknown).
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// The most rows one group commit carries.
const BATCH: usize = 1024;

/// How a [`PostgresStore`] is set up. Lease length and renewal are the engine's
/// ([`Config::lease`](crate::Config::lease)); what follows a lease that ran out is the
/// [`PostgresStore`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The schema the store's tables live in, created if missing. (The inspector, which takes a
    /// URL, reads it from the URL's `schema` parameter: see `Inspector::open`.)
    ///
    /// Default: `workflow`.
    pub schema: String,
    /// Connections in the store's pool: one writes (the group commit), the others serve reads
    /// and lease renewals.
    ///
    /// Default: `4`.
    pub pool: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "workflow".to_string(),
            pool: 4,
        }
    }
}

/// Journals in a PostgreSQL database that several engine processes share (the `postgres`
/// feature).
///
/// Each open store is one process of the cluster: it registers in the database with a lease,
/// which it renews in the background. An instance belongs to the process that started it, or that
/// took it over ([`Engine::recover`](crate::Engine::recover) takes over the open instances of
/// processes whose lease expired, and of engines shut down cleanly, which hand theirs back at
/// once), or that retried it ([`Engine::retry`](crate::Engine::retry) of a failed instance claims
/// it for the process that calls it, whichever process ran it). Every append is refused with
/// [`StoreError::Fenced`] unless the writer still holds its lease and owns the instance under the
/// epoch it claimed it with, checked in the statement that writes the row: a paused or
/// partitioned process cannot commit a step for an instance someone else now owns.
///
/// A process whose lease expired (a long pause, a partition) comes back by itself: once a
/// renewal finds the lease gone, every write is refused ([`Store::lease_lost`]), an engine over
/// the store drops all its copies at its next takeover pass and waits for their steps in flight
/// to end, and then the store registers anew ([`Store::rejoin`]): a new row in `processes`, a
/// new [`process`](Self::process) id, a fresh lease. The old id's instances are then like any
/// dead process's, taken over under new epochs by whichever process comes first, this one
/// included; no row is ever written as the new id by a copy from before the loss (with several
/// engines over the store, each workflow's appends are refused until its own engine has dropped
/// its copies, [`Store::lease_generation`] telling it the process is new). Both moments are
/// logged (`tracing` warnings).
///
/// The store runs its connections on a thread of its own, so it serves any runtime (a test's
/// paused clock included), and renews its lease by the wall clock. Its connections ask the server
/// for generic plans (`plan_cache_mode`, PostgreSQL 12 or newer): its statements are prepared once
/// per connection and never planned again per step.
pub struct PostgresStore {
    requests: mpsc::UnboundedSender<Request>,
    lease: Arc<Lease>,
    posted: tokio::sync::watch::Receiver<u64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The lease settings the engines over the store ask for, the process id that holds it, and
/// whether it was lost. The id changes when the process registers anew after a loss
/// ([`Store::rejoin`]): it is stored before `lost` is cleared, so whoever sees the lease held
/// reads the id that holds it.
struct Lease {
    millis: AtomicU64,
    renew_millis: AtomicU64,
    process: AtomicI64,
    /// How many times the process registered anew.
    generation: AtomicU64,
    lost: AtomicBool,
}

enum Request {
    /// A row, and the inbox message its step applied (removed in the same statement).
    Append(String, Row, Option<i64>, oneshot::Sender<Result<(), StoreError>>),
    OpenRows(
        String,
        oneshot::Sender<Result<Vec<Result<Row, StoreError>>, StoreError>>,
    ),
    Journal(String, String, oneshot::Sender<Result<Vec<Row>, StoreError>>),
    Release(String, oneshot::Sender<Result<(), StoreError>>),
    Post(String, String, Vec<u8>, oneshot::Sender<Result<Posted, StoreError>>),
    Inbox(String, oneshot::Sender<Result<Vec<Message>, StoreError>>),
    Acknowledge(Vec<i64>, oneshot::Sender<Result<(), StoreError>>),
    Define(Definition, oneshot::Sender<Result<(), StoreError>>),
    Rejoin(String, oneshot::Sender<Result<u64, StoreError>>),
}

/// The statements, with the schema's name in them.
struct Sql {
    append: String,
    classify: String,
    owner: String,
    claim: String,
    journal: String,
    release: String,
    renew: String,
    register: String,
    leave: String,
    post: String,
    inbox: String,
    acknowledge: String,
    listen: String,
    define: String,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let s = quote(schema);
        Sql {
            append: format!(
                "WITH input AS (
                   SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::bool[], $5::int8[], $6::bytea[], $7::int8[],
                                        $10::int8[], $11::text[], $12::int8[])
                     AS t(workflow, instance, seq, open, checksum, data, epoch, at, state, status)),
                 alive AS (SELECT 1 FROM {s}.processes WHERE id = $8 AND lease_until > clock_timestamp()),
                 started AS (
                   INSERT INTO {s}.instances (workflow, instance, newest, open, owner, epoch, state, status, started, updated)
                   SELECT workflow, instance, seq, open, $8, 1, state, status, at, at
                   FROM input WHERE seq = 1 AND EXISTS (SELECT 1 FROM alive)
                   ON CONFLICT DO NOTHING RETURNING workflow, instance, epoch),
                 -- The owner writes under the epoch it claimed the instance with. Any live process
                 -- writes, and claims under a new epoch, an instance no process owns (handed back)
                 -- or one whose newest row closed it: the next row of a closed instance is a
                 -- retry's (`Engine::retry` resumes a failed instance in the process that calls it,
                 -- whoever ran it), and of concurrent retries the row number lets one in.
                 stepped AS (
                   UPDATE {s}.instances i SET newest = input.seq, open = input.open, owner = $8,
                     state = input.state, status = input.status, updated = input.at,
                     epoch = CASE WHEN i.owner = $8 AND i.epoch = input.epoch THEN i.epoch ELSE i.epoch + 1 END
                   FROM input
                   WHERE input.seq > 1 AND i.workflow = input.workflow AND i.instance = input.instance
                     AND i.newest = input.seq - 1 AND EXISTS (SELECT 1 FROM alive)
                     AND ((i.owner = $8 AND i.epoch = input.epoch) OR i.owner IS NULL OR NOT i.open)
                   RETURNING i.workflow, i.instance, i.epoch),
                 ok AS (SELECT * FROM started UNION ALL SELECT * FROM stepped),
                 written AS (
                   INSERT INTO {s}.journal (workflow, instance, seq, open, checksum, data, owner, epoch, at, state, status)
                   SELECT input.workflow, input.instance, input.seq, input.open, input.checksum, input.data, $8, ok.epoch,
                     input.at, input.state, input.status
                   FROM input JOIN ok USING (workflow, instance)
                   RETURNING workflow, instance, epoch),
                 -- The inbox message a step applied leaves the inbox with the step: exactly once.
                 -- (A batch has one row per instance, so its instance's row being written is
                 -- the message's step being written; by the primary key, not a join over the
                 -- whole batch.)
                 consumed AS (
                   DELETE FROM {s}.inbox m WHERE m.id = ANY($9::int8[])
                     AND EXISTS (SELECT 1 FROM written w WHERE w.workflow = m.workflow AND w.instance = m.instance))
                 SELECT workflow, instance, epoch FROM written"
            ),
            classify: format!(
                "SELECT checksum, data, owner FROM {s}.journal WHERE workflow = $1 AND instance = $2 AND seq = $3"
            ),
            owner: format!("SELECT newest, owner FROM {s}.instances WHERE workflow = $1 AND instance = $2"),
            claim: format!(
                "WITH alive AS (SELECT 1 FROM {s}.processes WHERE id = $2 AND lease_until > clock_timestamp()),
                 claimed AS (
                   UPDATE {s}.instances i SET owner = $2, epoch = i.epoch + 1
                   WHERE i.workflow = $1 AND i.open AND EXISTS (SELECT 1 FROM alive)
                     AND (i.owner IS NULL OR NOT EXISTS (
                       SELECT 1 FROM {s}.processes p WHERE p.id = i.owner AND p.lease_until > clock_timestamp()))
                   RETURNING i.instance, i.newest, i.epoch),
                 swept AS (
                   -- Processes dead for a minute that own nothing: their rows would pile up,
                   -- one a process start. (Their writes stay refused: no row, no lease.)
                   DELETE FROM {s}.processes p
                   WHERE p.lease_until < clock_timestamp() - interval '1 minute'
                     AND NOT EXISTS (SELECT 1 FROM {s}.instances i WHERE i.owner = p.id)),
                 mine AS (
                   SELECT instance, newest, epoch FROM {s}.instances
                   WHERE workflow = $1 AND open AND owner = $2 AND EXISTS (SELECT 1 FROM alive)),
                 owned AS (SELECT * FROM claimed UNION ALL SELECT * FROM mine)
                 SELECT j.instance, j.seq, j.open, j.checksum, j.data, owned.epoch, j.at, j.state, j.status
                 FROM owned JOIN {s}.journal j ON j.workflow = $1 AND j.instance = owned.instance AND j.seq = owned.newest"
            ),
            journal: journal_query(&s),
            release: format!("UPDATE {s}.instances SET owner = NULL WHERE workflow = $1 AND owner = $2"),
            renew: format!(
                "UPDATE {s}.processes SET lease_until = clock_timestamp() + make_interval(secs => $2::float8 / 1000)
                 WHERE id = $1 AND lease_until > clock_timestamp()"
            ),
            register: format!(
                "INSERT INTO {s}.processes (lease_until, pid) VALUES \
                 (clock_timestamp() + make_interval(secs => $1::float8 / 1000), $2) RETURNING id"
            ),
            post: format!(
                "WITH target AS (
                   SELECT open FROM {s}.instances WHERE workflow = $1 AND instance = $2 FOR SHARE),
                 queued AS (
                   INSERT INTO {s}.inbox (workflow, instance, data)
                   SELECT $1, $2, $3 FROM target WHERE open RETURNING id),
                 told AS (SELECT pg_notify($4, $1) FROM queued)
                 SELECT (SELECT open FROM target), (SELECT count(*) FROM told)"
            ),
            inbox: format!(
                "SELECT m.id, m.instance, m.data FROM {s}.inbox m
                 JOIN {s}.instances i ON i.workflow = m.workflow AND i.instance = m.instance
                 WHERE m.workflow = $1 AND i.owner = $2 ORDER BY m.id LIMIT 1000"
            ),
            // Only while the process holds its lease and owns the message's instance: a message
            // for an instance another process owns now is that one's.
            acknowledge: format!(
                "DELETE FROM {s}.inbox m USING {s}.instances i
                 WHERE m.id = ANY($1) AND i.workflow = m.workflow AND i.instance = m.instance AND i.owner = $2
                   AND EXISTS (SELECT 1 FROM {s}.processes p WHERE p.id = $2 AND p.lease_until > clock_timestamp())"
            ),
            listen: channel(schema),
            define: format!(
                "INSERT INTO {s}.definitions (workflow, fingerprint, graph, context, first_seen)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
            ),
            leave: format!(
                "WITH gone AS (UPDATE {s}.instances SET owner = NULL WHERE owner = $1)
                 DELETE FROM {s}.processes WHERE id = $1"
            ),
        }
    }
}

/// The NOTIFY channel of the schema's inbox.
fn channel(schema: &str) -> String {
    let mut name = format!("wf_inbox_{schema}");
    name.truncate(63); // PostgreSQL's longest identifier
    name
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `sql`, prepared once per connection (the pool's connections keep their statements).
async fn prepared(client: &Object, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
    client.prepare_cached(sql).await.map_err(backend)
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {error}"))
}

/// What the store's thread keeps.
struct Shared {
    pool: Pool,
    sql: Sql,
    /// The epoch this process claimed each instance it owns with.
    epochs: Mutex<HashMap<(String, String), i64>>,
    /// Once the process registered anew: the workflows whose engine has dropped its copies from
    /// before since ([`Store::rejoin`]); the others' appends are refused. Locked under `epochs`.
    ready: Mutex<HashSet<String>>,
    lease: Arc<Lease>,
}

impl Shared {
    fn epochs(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), i64>> {
        self.epochs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.ready.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The process id this store writes as now.
    fn process(&self) -> i64 {
        self.lease.process.load(Ordering::Acquire)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a libpq-style URL or key-value string, e.g.
    /// `postgres://user@localhost/db`), creates or migrates the store's schema, and registers this
    /// process with a lease. Fails with [`StoreError::SchemaTooNew`] on a schema a newer build
    /// wrote, and with [`StoreError::Backend`] when the server cannot be reached.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_with(url, PostgresOptions::default())
    }

    /// [`open`](Self::open) with `options`.
    pub fn open_with(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(backend)?;
        // Generic plans, always: the append statement takes a millisecond or more to plan (many
        // times its run), and once the tables have statistics the server may otherwise plan it
        // anew on every step. Its generic plan (index lookups per row) suits one row and a
        // thousand alike.
        let server_options = format!(
            "{} -c plan_cache_mode=force_generic_plan",
            config.get_options().unwrap_or_default()
        );
        config.options(server_options.trim_start());
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(backend)?;
        let lease = Arc::new(Lease {
            millis: AtomicU64::new(1500),
            renew_millis: AtomicU64::new(500),
            process: AtomicI64::new(0),
            generation: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        });
        let (requests, receiver) = mpsc::unbounded_channel();
        let (opened, open) = std::sync::mpsc::channel();
        let held = lease.clone();
        let (told, posted) = tokio::sync::watch::channel(0u64);
        let listen_config = config.clone();
        // The connections live on a thread of their own: the store serves callers on any
        // runtime (or none), and renews its lease by the wall clock.
        let thread = std::thread::Builder::new()
            .name("workflow-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => return drop(opened.send(Err(backend(error)))),
                };
                runtime.block_on(async move {
                    let sql = Sql::new(&options.schema);
                    let millis = held.millis.load(Ordering::Relaxed);
                    match migrate(&pool, &options.schema, &sql.register, millis).await {
                        Ok(process) => held.process.store(process, Ordering::Release),
                        Err(error) => return drop(opened.send(Err(error))),
                    };
                    let _ = opened.send(Ok(()));
                    tokio::spawn(listen(listen_config, channel(&options.schema), told));
                    let shared = Arc::new(Shared {
                        pool,
                        sql,
                        epochs: Mutex::new(HashMap::new()),
                        ready: Mutex::new(HashSet::new()),
                        lease: held,
                    });
                    serve(shared, receiver).await;
                })
            })
            .map_err(backend)?;
        open.recv()
            .map_err(|_| backend("the store's thread stopped while opening"))??;
        Ok(PostgresStore {
            requests,
            lease,
            posted,
            thread: Some(thread),
        })
    }

    /// This process's id in the cluster (its row in `processes`). A new one once the process
    /// registered anew after its lease expired ([`Store::rejoin`]).
    pub fn process(&self) -> i64 {
        self.lease.process.load(Ordering::Acquire)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(make(reply))
            .map_err(|_| backend("the store's thread has stopped"))?;
        answer.await.map_err(|_| backend("the store's thread has stopped"))?
    }
}

impl Drop for PostgresStore {
    /// Leaves the cluster: hands every instance back and deletes the process's lease, so that
    /// others take its instances over at once.
    fn drop(&mut self) {
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.requests, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Creates or migrates the schema under an advisory lock (processes starting together wait for
/// each other), checks its version, and registers the process.
async fn migrate(pool: &Pool, schema: &str, register: &str, lease_millis: u64) -> Result<i64, StoreError> {
    let mut client = pool
        .get()
        .await
        .map_err(|error| backend(format!("cannot connect: {error}")))?;
    let s = quote(schema);
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("workflow-schema {schema}")],
    )
    .await
    .map_err(backend)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.meta (version int8 NOT NULL);
         CREATE TABLE IF NOT EXISTS {s}.processes (
           id bigserial PRIMARY KEY, lease_until timestamptz NOT NULL, pid int8, host text);
         CREATE TABLE IF NOT EXISTS {s}.instances (
           workflow text NOT NULL, instance text NOT NULL, newest int8 NOT NULL, open bool NOT NULL,
           owner int8, epoch int8 NOT NULL, PRIMARY KEY (workflow, instance));
         CREATE INDEX IF NOT EXISTS instances_open ON {s}.instances (workflow, owner) WHERE open;
         CREATE TABLE IF NOT EXISTS {s}.journal (
           workflow text NOT NULL, instance text NOT NULL, seq int8 NOT NULL, open bool NOT NULL,
           checksum int8 NOT NULL, data bytea NOT NULL, owner int8 NOT NULL, epoch int8 NOT NULL,
           PRIMARY KEY (workflow, instance, seq));
         CREATE TABLE IF NOT EXISTS {s}.inbox (
           id bigserial PRIMARY KEY, workflow text NOT NULL, instance text NOT NULL, data bytea NOT NULL);
         CREATE INDEX IF NOT EXISTS inbox_instance ON {s}.inbox (workflow, instance);
         ALTER TABLE {s}.journal ADD COLUMN IF NOT EXISTS at int8, ADD COLUMN IF NOT EXISTS state text,
           ADD COLUMN IF NOT EXISTS status int8;
         ALTER TABLE {s}.instances ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS status int8,
           ADD COLUMN IF NOT EXISTS started int8, ADD COLUMN IF NOT EXISTS updated int8;
         CREATE TABLE IF NOT EXISTS {s}.definitions (
           workflow text NOT NULL, fingerprint text NOT NULL, graph text NOT NULL, context text NOT NULL,
           first_seen int8 NOT NULL, PRIMARY KEY (workflow, fingerprint));
         CREATE INDEX IF NOT EXISTS instances_by_started ON {s}.instances (workflow, started);
         CREATE INDEX IF NOT EXISTS instances_by_state ON {s}.instances (workflow, state, status, started);
         CREATE INDEX IF NOT EXISTS instances_by_status ON {s}.instances (workflow, status, started);
         CREATE INDEX IF NOT EXISTS journal_at ON {s}.journal USING brin (at);"
    ))
    .await
    .map_err(backend)?;
    let found: Option<i64> = tx
        .query_opt(&format!("SELECT max(version) FROM {s}.meta"), &[])
        .await
        .map_err(backend)?
        .and_then(|row| row.get(0));
    match found {
        None => {
            tx.execute(
                &format!("INSERT INTO {s}.meta (version) VALUES ($1)"),
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(backend)?;
        }
        Some(found) if found > SCHEMA_VERSION => {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            })
        }
        // Upgraded above: the new columns, table and indexes.
        Some(found) if found < SCHEMA_VERSION => {
            tx.execute(&format!("UPDATE {s}.meta SET version = $1"), &[&SCHEMA_VERSION])
                .await
                .map_err(backend)?;
            fill_v1_summaries(&tx, &s).await?;
        }
        Some(_) => {}
    }
    let row = tx
        .query_one(register, &[&(lease_millis as f64), &i64::from(std::process::id())])
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(row.get(0))
}

/// Fills, in a schema upgraded from schema 1 (`s`, quoted), each instance's state and status from
/// its newest row, where that row is plain JSON (not sealed by a codec), as the SQLite store's
/// upgrade does; the rest stays NULL (unknown), and so do all times, which schema 1 did not keep.
/// A thousand instances a round trip, in key order.
async fn fill_v1_summaries(tx: &tokio_postgres::Transaction<'_>, s: &str) -> Result<(), StoreError> {
    let read = format!(
        "SELECT i.workflow, i.instance, j.data FROM {s}.instances i
         JOIN {s}.journal j ON j.workflow = i.workflow AND j.instance = i.instance AND j.seq = i.newest
         WHERE (i.workflow, i.instance) > ($1, $2) ORDER BY i.workflow, i.instance LIMIT 1000"
    );
    let update = format!(
        "UPDATE {s}.instances i SET state = u.state, status = u.status
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS u(workflow, instance, state, status)
         WHERE i.workflow = u.workflow AND i.instance = u.instance"
    );
    let (mut workflow, mut instance) = (String::new(), String::new());
    loop {
        let rows = tx.query(&read, &[&workflow, &instance]).await.map_err(backend)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        workflow = last.try_get(0).map_err(backend)?;
        instance = last.try_get(1).map_err(backend)?;
        let (mut workflows, mut instances, mut states, mut statuses) = (vec![], vec![], vec![], vec![]);
        for row in &rows {
            let (Ok(w), Ok(i), Ok(data)) = (
                row.try_get::<_, String>(0),
                row.try_get::<_, String>(1),
                row.try_get::<_, Vec<u8>>(2),
            ) else {
                continue;
            };
            let Some((state, status)) = crate::journal::plain_summary(&data) else {
                continue;
            };
            workflows.push(w);
            instances.push(i);
            states.push(state);
            statuses.push(status.map(InstanceStatus::code));
        }
        tx.execute(&update, &[&workflows, &instances, &states, &statuses])
            .await
            .map_err(backend)?;
    }
}

/// The store's thread: the group commit, reads, and the lease's renewal, until the store is
/// dropped; then it leaves the cluster.
async fn serve(shared: Arc<Shared>, mut requests: mpsc::UnboundedReceiver<Request>) {
    let (appends, batches) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write(shared.clone(), batches));
    let (rejoins, asked) = mpsc::unbounded_channel();
    let renewal = tokio::spawn(renew(shared.clone(), asked));
    while let Some(request) = requests.recv().await {
        match request {
            Request::Append(workflow, row, message, reply) => {
                let _ = appends.send(Pending {
                    workflow,
                    row,
                    message,
                    reply,
                });
            }
            // The renewal registers anew: it alone changes the process's lease and id.
            Request::Rejoin(workflow, reply) => {
                let _ = rejoins.send((workflow, reply));
            }
            Request::Define(definition, reply) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = reply.send(define(&shared, &definition).await);
                });
            }
            Request::OpenRows(workflow, reply) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = reply.send(claim(&shared, &workflow).await);
                });
            }
            Request::Journal(workflow, instance, reply) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = reply.send(journal(&shared, &workflow, &instance).await);
                });
            }
            Request::Post(workflow, instance, data, reply) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = reply.send(post(&shared, &workflow, &instance, data).await);
                });
            }
            Request::Inbox(workflow, reply) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = reply.send(inbox(&shared, &workflow).await);
                });
            }
            Request::Acknowledge(ids, reply) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = reply.send(acknowledge(&shared, ids).await);
                });
            }
            Request::Release(workflow, reply) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = reply.send(release(&shared, &workflow).await);
                });
            }
        }
    }
    drop(appends);
    let _ = writer.await;
    renewal.abort();
    if let Ok(client) = shared.pool.get().await {
        let _ = client.execute(&shared.sql.leave, &[&shared.process()]).await;
    }
}

/// An append waiting for the group commit.
struct Pending {
    workflow: String,
    row: Row,
    /// The inbox message the row's step applied, removed in the same statement.
    message: Option<i64>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The group commit: whatever appends are waiting go in one statement. It keeps one connection
/// of the pool (a new one after a failure), on which the statement is prepared once: an idle
/// writer sends a lone step at once, in one round trip.
async fn write(shared: Arc<Shared>, mut appends: mpsc::UnboundedReceiver<Pending>) {
    let mut later: Vec<Pending> = Vec::new();
    let mut connection = None;
    loop {
        let mut batch: Vec<Pending> = std::mem::take(&mut later);
        if batch.is_empty() {
            match appends.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
        }
        while batch.len() < BATCH {
            match appends.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // One row per instance a statement: a second one waits for the next.
        let mut seen = std::collections::HashSet::new();
        let (now, next): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|pending| seen.insert((pending.workflow.clone(), pending.row.instance.clone())));
        later = next;
        commit(&shared, &mut connection, now).await;
    }
}

async fn commit(shared: &Shared, connection: &mut Option<Object>, mut batch: Vec<Pending>) {
    let fenced = |pending: Pending| {
        let _ = pending.reply.send(Err(StoreError::Fenced {
            instance: pending.row.instance,
        }));
    };
    if shared.lease.lost.load(Ordering::Acquire) {
        return batch.into_iter().for_each(fenced);
    }
    // Registered anew: a workflow whose engine may still hold copies from before writes nothing.
    if shared.lease.generation.load(Ordering::Acquire) > 0 {
        let ready = shared.ready();
        let (now, refused): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| ready.contains(&p.workflow));
        drop(ready);
        refused.into_iter().for_each(fenced);
        batch = now;
        if batch.is_empty() {
            return;
        }
    }
    // Read once, after `lost`: the whole batch, and why a row was refused, is of one process id.
    let process = shared.process();
    let mut outcome = Err(backend("not tried"));
    // A lost connection is retried on a new one: a row the failed attempt did commit is
    // recognised below.
    for attempt in 0..3 {
        outcome = append_batch(shared, process, connection, &batch).await;
        if outcome.is_ok() {
            break;
        }
        *connection = None;
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
    let written = match outcome {
        Ok(written) => written,
        Err(error) => {
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    for Pending {
        workflow, row, reply, ..
    } in batch
    {
        let key = (workflow, row.instance.clone());
        let result = match written.get(&key) {
            Some(&epoch) => {
                shared.epochs().insert(key, epoch);
                Ok(())
            }
            None => refused(shared, process, &key.0, row).await,
        };
        let _ = reply.send(result);
    }
}

/// Writes one batch on the writer's connection (taken from the pool if it has none); the
/// instances whose row was written, with their epoch.
async fn append_batch(
    shared: &Shared,
    process: i64,
    connection: &mut Option<Object>,
    batch: &[Pending],
) -> Result<HashMap<(String, String), i64>, StoreError> {
    let client = match connection {
        Some(client) => client,
        None => connection.insert(shared.pool.get().await.map_err(backend)?),
    };
    let statement = client.prepare_cached(&shared.sql.append).await.map_err(backend)?;
    let mut workflows = Vec::with_capacity(batch.len());
    let mut instances = Vec::with_capacity(batch.len());
    let mut seqs = Vec::with_capacity(batch.len());
    let mut opens = Vec::with_capacity(batch.len());
    let mut checksums = Vec::with_capacity(batch.len());
    let mut datas = Vec::with_capacity(batch.len());
    let mut epochs = Vec::with_capacity(batch.len());
    let mut messages = Vec::with_capacity(batch.len());
    let mut ats: Vec<Option<i64>> = Vec::with_capacity(batch.len());
    let mut states: Vec<Option<&str>> = Vec::with_capacity(batch.len());
    let mut statuses: Vec<Option<i64>> = Vec::with_capacity(batch.len());
    {
        let known = shared.epochs();
        for Pending {
            workflow, row, message, ..
        } in batch
        {
            workflows.push(workflow.as_str());
            instances.push(row.instance.as_str());
            seqs.push(i64::try_from(row.seq).unwrap_or(i64::MAX));
            opens.push(row.open);
            checksums.push(i64::from(row.checksum));
            datas.push(row.data.as_slice());
            epochs.push(
                known
                    .get(&(workflow.clone(), row.instance.clone()))
                    .copied()
                    .unwrap_or(0),
            );
            messages.push(*message);
            ats.push(row.summary.at.and_then(|at| i64::try_from(at).ok()));
            states.push(row.summary.state.as_deref());
            statuses.push(row.summary.status.map(InstanceStatus::code));
        }
    }
    let rows = client
        .query(
            &statement,
            &[
                &workflows, &instances, &seqs, &opens, &checksums, &datas, &epochs, &process, &messages, &ats, &states,
                &statuses,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.get::<_, String>(0), row.get::<_, String>(1)), row.get::<_, i64>(2)))
        .collect())
}

/// Why a row was not written: it is there already (a retry of a commit that went through), its
/// number is taken or skipped ([`StoreError::Conflict`]), or the process does not own the
/// instance ([`StoreError::Fenced`]), which includes another process having written the row's
/// number (it took the instance over, or retried it first) and a start refused because the
/// process's lease ran out.
async fn refused(shared: &Shared, process: i64, workflow: &str, row: Row) -> Result<(), StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    let seq = i64::try_from(row.seq).unwrap_or(i64::MAX);
    let stored = client
        .query_opt(
            &prepared(&client, &shared.sql.classify).await?,
            &[&workflow, &row.instance, &seq],
        )
        .await
        .map_err(backend)?;
    let key = (workflow.to_string(), row.instance.clone());
    if let Some(stored) = stored {
        // By the writer, not by the bytes alone: two processes retrying one instance write the
        // same row.
        if row.seq > 1 && stored.get::<_, i64>(2) != process {
            shared.epochs().remove(&key);
            return Err(StoreError::Fenced { instance: row.instance });
        }
        let same = stored.get::<_, i64>(0) == i64::from(row.checksum) && stored.get::<_, &[u8]>(1) == row.data;
        let owned = shared.epochs().contains_key(&key);
        if same && owned && row.seq > 1 {
            return Ok(());
        }
        return Err(StoreError::Conflict {
            instance: row.instance,
            seq: row.seq,
        });
    }
    // A first row is refused only for a taken id (whose row is there, above) or a lease that
    // ran out, which the server saw before the renewal did.
    if row.seq == 1 {
        return Err(StoreError::Fenced { instance: row.instance });
    }
    let newest: Option<(i64, Option<i64>)> = client
        .query_opt(
            &prepared(&client, &shared.sql.owner).await?,
            &[&workflow, &row.instance],
        )
        .await
        .map_err(backend)?
        .map(|r| (r.get(0), r.get(1)));
    match newest {
        Some((newest, Some(owner))) if owner == process && newest + 1 != seq => Err(StoreError::Conflict {
            instance: row.instance,
            seq: row.seq,
        }),
        None => Err(StoreError::Conflict {
            instance: row.instance,
            seq: row.seq,
        }),
        _ => {
            shared.epochs().remove(&key);
            Err(StoreError::Fenced { instance: row.instance })
        }
    }
}

/// The newest rows of the open instances this process owns, after taking over those whose owner
/// is gone (lease expired, or handed back).
async fn claim(shared: &Shared, workflow: &str) -> Result<Vec<Result<Row, StoreError>>, StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    let process = shared.process();
    let rows = client
        .query(&prepared(&client, &shared.sql.claim).await?, &[&workflow, &process])
        .await
        .map_err(backend)?;
    let mut epochs = shared.epochs();
    // Claimed by an id the process has left meanwhile (its lease ran out and it registered
    // anew): those instances are the old id's, for a takeover to claim; no copy of them here.
    if process != shared.process() {
        return Ok(Vec::new());
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let instance: String = r.get(0);
            epochs.insert((workflow.to_string(), instance.clone()), r.get(5));
            row(instance, r.get(1), r.get(2), r.get(3), r.get(4), summary(&r, 6))
        })
        .collect())
}

/// A row's summary from its columns `at, state, status` starting at `first`; a value of
/// another type reads as unknown.
fn summary(r: &tokio_postgres::Row, first: usize) -> Summary {
    Summary {
        at: r
            .try_get::<_, Option<i64>>(first)
            .ok()
            .flatten()
            .and_then(|at| u64::try_from(at).ok()),
        state: r.try_get::<_, Option<String>>(first + 1).ok().flatten(),
        status: r
            .try_get::<_, Option<i64>>(first + 2)
            .ok()
            .flatten()
            .and_then(InstanceStatus::from_code),
    }
}

/// Keeps a workflow's definition once per fingerprint.
async fn define(shared: &Shared, definition: &Definition) -> Result<(), StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    let first_seen = i64::try_from(definition.first_seen).unwrap_or(i64::MAX);
    client
        .execute(
            &prepared(&client, &shared.sql.define).await?,
            &[
                &definition.workflow,
                &definition.fingerprint,
                &definition.graph,
                &definition.context,
                &first_seen,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

fn row(
    instance: String,
    seq: i64,
    open: bool,
    checksum: i64,
    data: Vec<u8>,
    summary: Summary,
) -> Result<Row, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        instance: instance.clone(),
        seq: u64::try_from(seq).unwrap_or(0),
        reason: reason.to_string(),
    };
    let seq = u64::try_from(seq).map_err(|_| corrupt("a negative row number"))?;
    let checksum = u32::try_from(checksum).map_err(|_| corrupt("a checksum out of range"))?;
    Ok(Row {
        instance,
        seq,
        open,
        checksum,
        data,
        summary,
    })
}

async fn journal(shared: &Shared, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    let rows = client
        .query(&prepared(&client, &shared.sql.journal).await?, &[&workflow, &instance])
        .await
        .map_err(backend)?;
    journal_rows(instance, rows)
}

/// The statement reading an instance's journal (`$1` its workflow, `$2` its id), in schema `s`
/// (quoted): what [`journal_rows`] reads.
pub(crate) fn journal_query(s: &str) -> String {
    format!(
        "SELECT seq, open, checksum, data, at, state, status FROM {s}.journal
         WHERE workflow = $1 AND instance = $2 ORDER BY seq"
    )
}

/// The rows [`journal_query`] selected; a value of the wrong type is a corrupt row, not a panic.
pub(crate) fn journal_rows(instance: &str, rows: Vec<tokio_postgres::Row>) -> Result<Vec<Row>, StoreError> {
    rows.into_iter()
        .map(|r| {
            let seq: i64 = r.try_get(0).unwrap_or(-1);
            let corrupt = |error: tokio_postgres::Error| StoreError::Corrupt {
                instance: instance.to_string(),
                seq: u64::try_from(seq).unwrap_or(0),
                reason: error.to_string(),
            };
            row(
                instance.to_string(),
                seq,
                r.try_get(1).map_err(corrupt)?,
                r.try_get(2).map_err(corrupt)?,
                r.try_get(3).map_err(corrupt)?,
                summary(&r, 4),
            )
        })
        .collect()
}

async fn release(shared: &Shared, workflow: &str) -> Result<(), StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    client
        .execute(
            &prepared(&client, &shared.sql.release).await?,
            &[&workflow, &shared.process()],
        )
        .await
        .map_err(backend)?;
    shared.epochs().retain(|(w, _), _| w != workflow);
    Ok(())
}

async fn post(shared: &Shared, workflow: &str, instance: &str, data: Vec<u8>) -> Result<Posted, StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    let row = client
        .query_one(
            &prepared(&client, &shared.sql.post).await?,
            &[&workflow, &instance, &data, &shared.sql.listen],
        )
        .await
        .map_err(backend)?;
    Ok(match row.get::<_, Option<bool>>(0) {
        Some(true) => Posted::Accepted,
        Some(false) => Posted::Finished,
        None => Posted::Unknown,
    })
}

async fn inbox(shared: &Shared, workflow: &str) -> Result<Vec<Message>, StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    let rows = client
        .query(
            &prepared(&client, &shared.sql.inbox).await?,
            &[&workflow, &shared.process()],
        )
        .await
        .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|r| Message {
            id: r.get(0),
            instance: r.get(1),
            data: r.get(2),
        })
        .collect())
}

async fn acknowledge(shared: &Shared, ids: Vec<i64>) -> Result<(), StoreError> {
    let client = shared.pool.get().await.map_err(backend)?;
    client
        .execute(
            &prepared(&client, &shared.sql.acknowledge).await?,
            &[&ids, &shared.process()],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// LISTENs on the inbox's channel on a connection of its own, and bumps `told` on every
/// notification; reconnects after a lost connection.
async fn listen(config: tokio_postgres::Config, channel: String, told: tokio::sync::watch::Sender<u64>) {
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let told = &told;
            let messages = async move {
                while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    if let tokio_postgres::AsyncMessage::Notification(_) = message {
                        told.send_modify(|n| *n = n.wrapping_add(1));
                    }
                }
            };
            let sql = format!("LISTEN {}", quote(&channel));
            let subscribe = client.batch_execute(&sql);
            let (_, subscribed) = tokio::join!(messages, async {
                let subscribed = subscribe.await;
                // After a reconnection, messages may have come meanwhile.
                told.send_modify(|n| *n = n.wrapping_add(1));
                subscribed
            });
            drop(subscribed);
        }
        if told.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A workflow's engine ready to go on after a lost lease, and where to answer it.
type Rejoining = (String, oneshot::Sender<Result<u64, StoreError>>);

/// Renews the lease every renewal period; a renewal that finds it expired marks it lost, after
/// which every append is refused, until an engine asks to register anew (`rejoins`: once it has
/// dropped its copies of the instances, see [`Store::rejoin`]). Renewals and registering share
/// this one task, so a renewal of the old id never marks the new one lost.
async fn renew(shared: Arc<Shared>, mut rejoins: mpsc::UnboundedReceiver<Rejoining>) {
    loop {
        let every = shared.lease.renew_millis.load(Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(every)) => {}
            asked = rejoins.recv() => {
                let Some((workflow, reply)) = asked else { return };
                let _ = reply.send(rejoin(&shared, workflow).await);
                continue;
            }
        }
        if shared.lease.lost.load(Ordering::Acquire) {
            continue;
        }
        let millis = shared.lease.millis.load(Ordering::Relaxed) as f64;
        let Ok(client) = shared.pool.get().await else {
            continue;
        };
        // A renewal that fails to reach the server is tried again; one that finds the lease
        // expired means others may own the instances now.
        let Ok(statement) = prepared(&client, &shared.sql.renew).await else {
            continue;
        };
        let process = shared.process();
        if let Ok(0) = client.execute(&statement, &[&process, &millis]).await {
            shared.lease.lost.store(true, Ordering::Release);
            shared.epochs().clear();
            tracing::warn!(
                process,
                "the PostgreSQL store's lease expired: its instances are fenced, for other processes to take over"
            );
        }
    }
}

/// Registers the process anew (a new id, a fresh lease) if its lease was lost, and lets
/// `workflow`'s appends through (its engine has dropped its copies); the generation now. Nothing
/// of the old id carries over: its instances are a dead process's, taken over under new epochs
/// like any other's.
async fn rejoin(shared: &Shared, workflow: String) -> Result<u64, StoreError> {
    if !shared.lease.lost.load(Ordering::Acquire) {
        let _epochs = shared.epochs();
        if shared.lease.generation.load(Ordering::Acquire) > 0 {
            shared.ready().insert(workflow);
        }
        return Ok(shared.lease.generation.load(Ordering::Acquire));
    }
    let client = shared.pool.get().await.map_err(backend)?;
    let millis = shared.lease.millis.load(Ordering::Relaxed) as f64;
    let row = client
        .query_one(
            &prepared(&client, &shared.sql.register).await?,
            &[&millis, &i64::from(std::process::id())],
        )
        .await
        .map_err(backend)?;
    let old = shared.process();
    let process: i64 = row.try_get(0).map_err(backend)?;
    // Whatever a claim of the old id left in the map goes too, and under the map's lock, which a
    // claim holds while it checks that its id is still the process's; the new id is in place
    // before the lease reads as held (see `Lease`).
    let mut epochs = shared.epochs();
    epochs.clear();
    let mut ready = shared.ready();
    ready.clear();
    ready.insert(workflow);
    drop(ready);
    shared.lease.process.store(process, Ordering::Release);
    let generation = shared.lease.generation.fetch_add(1, Ordering::AcqRel) + 1;
    shared.lease.lost.store(false, Ordering::Release);
    drop(epochs);
    tracing::warn!(
        old,
        process,
        "the PostgreSQL store registered anew after its lease expired"
    );
    Ok(generation)
}

#[async_trait]
impl Store for PostgresStore {
    async fn append(&self, workflow: &str, row: Row) -> Result<(), StoreError> {
        let workflow = workflow.to_string();
        self.ask(|reply| Request::Append(workflow, row, None, reply)).await
    }

    async fn append_consuming(&self, workflow: &str, row: Row, message: i64) -> Result<(), StoreError> {
        let workflow = workflow.to_string();
        self.ask(|reply| Request::Append(workflow, row, Some(message), reply))
            .await
    }

    fn lease_lost(&self) -> bool {
        self.lease.lost.load(Ordering::Acquire)
    }

    async fn rejoin(&self, workflow: &str) -> Result<u64, StoreError> {
        let workflow = workflow.to_string();
        self.ask(|reply| Request::Rejoin(workflow, reply)).await
    }

    fn lease_generation(&self) -> u64 {
        self.lease.generation.load(Ordering::Acquire)
    }

    async fn open_rows(&self, workflow: &str) -> Result<Vec<Result<Row, StoreError>>, StoreError> {
        let workflow = workflow.to_string();
        self.ask(|reply| Request::OpenRows(workflow, reply)).await
    }

    async fn define(&self, definition: &Definition) -> Result<(), StoreError> {
        let definition = definition.clone();
        self.ask(|reply| Request::Define(definition, reply)).await
    }

    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError> {
        let (workflow, instance) = (workflow.to_string(), instance.to_string());
        self.ask(|reply| Request::Journal(workflow, instance, reply)).await
    }

    async fn release(&self, workflow: &str) -> Result<(), StoreError> {
        let workflow = workflow.to_string();
        self.ask(|reply| Request::Release(workflow, reply)).await
    }

    fn lease(&self, length: Duration, renewal: Duration) {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        self.lease.millis.store(millis(length), Ordering::Relaxed);
        self.lease.renew_millis.store(millis(renewal), Ordering::Relaxed);
    }

    async fn post(&self, workflow: &str, instance: &str, message: Vec<u8>) -> Result<Posted, StoreError> {
        let (workflow, instance) = (workflow.to_string(), instance.to_string());
        self.ask(|reply| Request::Post(workflow, instance, message, reply))
            .await
    }

    async fn inbox(&self, workflow: &str) -> Result<Vec<Message>, StoreError> {
        let workflow = workflow.to_string();
        self.ask(|reply| Request::Inbox(workflow, reply)).await
    }

    async fn acknowledge(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.ask(|reply| Request::Acknowledge(ids, reply)).await
    }

    fn posted(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.posted.clone())
    }

    fn takeover_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(
            self.lease.renew_millis.load(Ordering::Relaxed) / 2,
        ))
    }
}
