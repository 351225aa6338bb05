-- wavectl's shared store, schema version 2: holds (freeze, promote), team-wide.

-- Freezes in force, one per scope: a rollout's name, or '@all' (`freeze --all`; `@`
-- is in no rollout name). `body` is the JSON of rollout::Freeze.
CREATE TABLE wavectl_freezes (
    scope text PRIMARY KEY,
    body text NOT NULL
);

-- The latest promote of a run waiting at a gate (JSON of rollout::Promotion).
CREATE TABLE wavectl_promotes (
    run text PRIMARY KEY REFERENCES wavectl_runs (id),
    promotion text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
