-- Recovery (追回). The follower of identity's feed notes, in the same transaction as its cursor,
-- each change that may undo a payment (a category revoked, annulled or cut short, a death, a
-- move away) for a person with paid claims; a job then re-evaluates those claims with the
-- corrected facts and opens a recovery for what the facts no longer support.
CREATE TABLE recovery_checks (
    event_cursor   TEXT   PRIMARY KEY,
    person_id      TEXT   NOT NULL,
    change_kind    TEXT   NOT NULL,
    effective_date TEXT,
    noted_us       BIGINT NOT NULL
);

CREATE TABLE recoveries (
    id                  TEXT   PRIMARY KEY,
    claim_id            TEXT   NOT NULL REFERENCES claims (id),
    policy_code         TEXT   NOT NULL,
    person_id           TEXT   NOT NULL,
    person_display_name TEXT   NOT NULL,
    fund_id             TEXT   NOT NULL REFERENCES funds (id),
    region              TEXT   NOT NULL,
    reason              TEXT   NOT NULL,
    trigger_cursor      TEXT   NOT NULL,
    amount_fen          BIGINT NOT NULL CHECK (amount_fen > 0),
    returned_fen        BIGINT NOT NULL DEFAULT 0,
    reevaluation        TEXT   NOT NULL,
    message             TEXT   NOT NULL,
    state               TEXT   NOT NULL CHECK (state IN ('open', 'returned', 'written_off', 'cancelled')),
    created_us          BIGINT NOT NULL,
    closed_us           BIGINT,
    revision            BIGINT NOT NULL DEFAULT 1,
    -- One recovery per claim and triggering change: a re-run of the job opens nothing twice.
    UNIQUE (claim_id, trigger_cursor)
);
CREATE INDEX recoveries_region ON recoveries (region, id);
