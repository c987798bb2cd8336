-- Subsidy payment's catalog, funds and claims.

-- A policy (补贴政策): what stays the same across its versions.
CREATE TABLE policies (
    code           TEXT   PRIMARY KEY,
    title          TEXT   NOT NULL,
    policy_group   TEXT   NOT NULL,
    payee_kind     TEXT   NOT NULL,
    period_kind    TEXT   NOT NULL,
    create_subject TEXT   NOT NULL,
    created_us     INTEGER NOT NULL
);
CREATE INDEX policies_group ON policies (policy_group);

-- One version of a policy's rules. `rules` is the whole version as the domain keeps it (JSON);
-- the columns beside it are what lookups filter on. A published version never changes: only the
-- draft → published step updates a row, guarded by its state.
CREATE TABLE policy_versions (
    policy_code     TEXT   NOT NULL REFERENCES policies (code),
    version         INTEGER NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('draft', 'published')),
    valid_from      TEXT   NOT NULL,
    valid_to        TEXT,
    region_prefix   TEXT   NOT NULL,
    fund_source     TEXT   NOT NULL,
    rules           TEXT   NOT NULL,
    create_subject  TEXT   NOT NULL,
    created_us      INTEGER NOT NULL,
    publish_subject TEXT,
    publish_note    TEXT,
    published_us    INTEGER,
    PRIMARY KEY (policy_code, version),
    CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CHECK ((state = 'published') = (publish_subject IS NOT NULL)),
    CHECK (publish_subject IS NULL OR publish_subject <> create_subject)
);

-- A fund (资金): one source's budget for a region and year. The CHECK is what keeps concurrent
-- reservations inside the budget: a reservation is an UPDATE that the database refuses when it
-- would overdraw.
CREATE TABLE funds (
    id              TEXT   PRIMARY KEY,
    display_name    TEXT   NOT NULL,
    fund_source     TEXT   NOT NULL,
    region_prefix   TEXT   NOT NULL,
    year            INTEGER NOT NULL,
    budget_document TEXT   NOT NULL,
    budget_fen      INTEGER NOT NULL,
    reserved_fen    INTEGER NOT NULL DEFAULT 0,
    payable_fen     INTEGER NOT NULL DEFAULT 0,
    consumed_fen    INTEGER NOT NULL DEFAULT 0,
    recoverable_fen INTEGER NOT NULL DEFAULT 0,
    released_fen    INTEGER NOT NULL DEFAULT 0,
    create_subject  TEXT   NOT NULL,
    created_us      INTEGER NOT NULL,
    revision        INTEGER NOT NULL DEFAULT 1,
    UNIQUE (fund_source, region_prefix, year),
    CHECK (reserved_fen >= 0 AND payable_fen >= 0 AND consumed_fen >= 0 AND recoverable_fen >= 0),
    CHECK (budget_fen - reserved_fen - payable_fen - consumed_fen >= 0)
);

-- The fund's double-entry journal, append-only; `seq` counts from 1 within the fund.
CREATE TABLE ledger_entries (
    fund_id        TEXT   NOT NULL REFERENCES funds (id),
    seq            INTEGER NOT NULL,
    kind           TEXT   NOT NULL,
    debit_account  TEXT   NOT NULL,
    credit_account TEXT   NOT NULL,
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    claim_id       TEXT,
    batch_id       TEXT,
    document       TEXT   NOT NULL,
    entry_date     TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    recorded_us    INTEGER NOT NULL,
    PRIMARY KEY (fund_id, seq),
    CHECK (debit_account <> credit_account)
);

-- Claims (补贴申请). (source_system, source_reference) is the idempotency key; `payload` is the
-- submitted claim as JSON (compared field by field when a source is reused), `decision` the
-- current decision with its frozen facts.
CREATE TABLE claims (
    id                  TEXT   PRIMARY KEY,
    policy_code         TEXT   NOT NULL REFERENCES policies (code),
    policy_group        TEXT   NOT NULL,
    person_id           TEXT   NOT NULL,
    payee_kind          TEXT   NOT NULL CHECK (payee_kind IN ('person', 'organization')),
    payee_key           TEXT   NOT NULL,
    period_first        TEXT   NOT NULL,
    period_last         TEXT   NOT NULL,
    source_system       TEXT   NOT NULL,
    source_reference    TEXT   NOT NULL,
    payload             TEXT   NOT NULL,
    state               TEXT   NOT NULL,
    region              TEXT   NOT NULL,
    person_display_name TEXT   NOT NULL,
    policy_version      INTEGER,
    amount_fen          INTEGER NOT NULL DEFAULT 0,
    fund_id             TEXT   REFERENCES funds (id),
    payment_batch_id    TEXT,
    decision            TEXT   NOT NULL,
    earlier_decisions   TEXT   NOT NULL DEFAULT '[]',
    review_cause        TEXT   NOT NULL DEFAULT '',
    required_reviews    INTEGER NOT NULL DEFAULT 0,
    reviews             TEXT   NOT NULL DEFAULT '[]',
    approved_month      TEXT,
    submit_subject      TEXT   NOT NULL,
    acting_service      TEXT   NOT NULL DEFAULT '',
    created_us          INTEGER NOT NULL,
    updated_us          INTEGER NOT NULL,
    revision            INTEGER NOT NULL DEFAULT 1,
    UNIQUE (source_system, source_reference),
    CHECK (amount_fen >= 0),
    CHECK (state <> 'approved' OR fund_id IS NOT NULL)
);
CREATE INDEX claims_region ON claims (region, id);
CREATE INDEX claims_person_group ON claims (person_id, policy_group);
-- What a payment batch selects: approved claims of a fund, by region.
CREATE INDEX claims_fund_state ON claims (fund_id, state, region);

-- The periods a granted claim holds: one row per month (monthly policies) or day (one-time
-- ones) per person and policy group, and the same per same-period exclusivity group. The
-- primary key is the rule that one person is never granted two claims of one group for the same
-- month or day, whichever department submitted them. Rows live while the claim counts (pending
-- review, approved, batched, paid, failed, recovery) and go when it is rejected or withdrawn. The
-- periods are taken before the claim row is written (the decision depends on them), so the
-- reference is checked at commit.
CREATE TABLE claim_periods (
    person_id TEXT NOT NULL,
    group_key TEXT NOT NULL,
    unit      TEXT NOT NULL,
    claim_id  TEXT NOT NULL REFERENCES claims (id) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (person_id, group_key, unit)
);
CREATE INDEX claim_periods_claim ON claim_periods (claim_id);
