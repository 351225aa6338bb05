-- wavectl's shared store, schema version 1. Every controller, bastion and CI runner
-- that names the database (`--store`) shares these tables.

-- One row per run; its journal is in wavectl_journal.
CREATE TABLE wavectl_runs (
    id text PRIMARY KEY,
    rollout text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every run's journal records, in the order they were made durable (seq), each with
-- the epoch of the lease it was written under.
CREATE TABLE wavectl_journal (
    seq bigserial PRIMARY KEY,
    run text NOT NULL REFERENCES wavectl_runs (id),
    epoch bigint NOT NULL,
    record text NOT NULL
);
CREATE INDEX wavectl_journal_run ON wavectl_journal (run, seq);

-- The last lease taken of each rollout: its epoch fences the journal's appends. Who
-- holds the rollout right now is whoever holds its session advisory lock.
CREATE TABLE wavectl_leases (
    rollout text PRIMARY KEY,
    epoch bigint NOT NULL,
    run text NOT NULL,
    host text NOT NULL,
    username text NOT NULL,
    pid integer NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);

-- Stop requests (abort, a purge stopping an apply), until the run's next lease.
CREATE TABLE wavectl_stops (
    run text PRIMARY KEY,
    request text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);

-- The audit log: one JSON entry a row; key (its sha256) makes imports idempotent.
CREATE TABLE wavectl_audit (
    seq bigserial PRIMARY KEY,
    at text NOT NULL,
    key text NOT NULL UNIQUE,
    entry text NOT NULL
);

-- What a run keeps besides its journal (the script, the spec's [notify]).
CREATE TABLE wavectl_artefacts (
    run text NOT NULL,
    what text NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (run, what)
);

-- Plans a run has applied: a plan applies once, store-wide.
CREATE TABLE wavectl_applied_plans (
    plan text PRIMARY KEY,
    hash text NOT NULL,
    run text NOT NULL,
    at text NOT NULL,
    username text NOT NULL
);
