-- A fund's balances move with every reservation, payment and return; its name, source, region
-- and year never do. They now live in rows of their own, as on PostgreSQL, where a referenced
-- row updated once per chunk of a payroll made every reference check walk its dead versions.
--
-- SQLite cannot drop columns a CHECK names, so `funds` is rebuilt. Claims, journal entries,
-- batches and recoveries reference it: their checks wait for the commit, by which time the
-- rebuilt table holds every fund again.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE fund_balances (
    fund_id         TEXT    PRIMARY KEY REFERENCES funds (id),
    budget_fen      INTEGER NOT NULL,
    reserved_fen    INTEGER NOT NULL DEFAULT 0,
    payable_fen     INTEGER NOT NULL DEFAULT 0,
    consumed_fen    INTEGER NOT NULL DEFAULT 0,
    recoverable_fen INTEGER NOT NULL DEFAULT 0,
    released_fen    INTEGER NOT NULL DEFAULT 0,
    revision        INTEGER NOT NULL DEFAULT 1,
    -- The CHECKs keep reservations inside the budget: a reservation is an UPDATE the database
    -- refuses when it would overdraw.
    CHECK (reserved_fen >= 0 AND payable_fen >= 0 AND consumed_fen >= 0 AND recoverable_fen >= 0),
    CHECK (budget_fen - reserved_fen - payable_fen - consumed_fen >= 0)
);
INSERT INTO fund_balances (fund_id, budget_fen, reserved_fen, payable_fen, consumed_fen, recoverable_fen,
                           released_fen, revision)
SELECT id, budget_fen, reserved_fen, payable_fen, consumed_fen, recoverable_fen, released_fen, revision
FROM funds;
CREATE TABLE funds_before_0206 AS
SELECT id, display_name, fund_source, region_prefix, year, budget_document, create_subject, created_us FROM funds;
DROP TABLE funds;
CREATE TABLE funds (
    id              TEXT    PRIMARY KEY,
    display_name    TEXT    NOT NULL,
    fund_source     TEXT    NOT NULL,
    region_prefix   TEXT    NOT NULL,
    year            INTEGER NOT NULL,
    budget_document TEXT    NOT NULL,
    create_subject  TEXT    NOT NULL,
    created_us      INTEGER NOT NULL,
    UNIQUE (fund_source, region_prefix, year)
);
INSERT INTO funds (id, display_name, fund_source, region_prefix, year, budget_document, create_subject, created_us)
SELECT id, display_name, fund_source, region_prefix, year, budget_document, create_subject, created_us
FROM funds_before_0206;
DROP TABLE funds_before_0206;
