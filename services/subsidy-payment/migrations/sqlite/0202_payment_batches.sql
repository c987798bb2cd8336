-- Payment batches (发放批次): approved claims of one fund and region, with control totals fixed
-- at creation, through public notice (公示), approval by a second subject, export to the bank
-- and the bank's results.
CREATE TABLE payment_batches (
    id                      TEXT   PRIMARY KEY,
    display_name            TEXT   NOT NULL,
    fund_id                 TEXT   NOT NULL REFERENCES funds (id),
    region_prefix           TEXT   NOT NULL,
    selection               TEXT   NOT NULL,
    state                   TEXT   NOT NULL,
    control_count           INTEGER NOT NULL,
    control_amount_fen      INTEGER NOT NULL,
    skipped_without_account INTEGER NOT NULL,
    notice_days             INTEGER NOT NULL DEFAULT 0,
    notice_first            TEXT,
    notice_last             TEXT,
    objection_contact       TEXT   NOT NULL DEFAULT '',
    open_objections         INTEGER NOT NULL DEFAULT 0,
    paid_count              INTEGER NOT NULL DEFAULT 0,
    paid_fen                INTEGER NOT NULL DEFAULT 0,
    failed_count            INTEGER NOT NULL DEFAULT 0,
    failed_fen              INTEGER NOT NULL DEFAULT 0,
    reconciliation          TEXT,
    create_subject          TEXT   NOT NULL,
    created_us              INTEGER NOT NULL,
    approve_subject         TEXT,
    approve_note            TEXT,
    approved_us             INTEGER,
    export_count            INTEGER NOT NULL DEFAULT 0,
    first_export_us         INTEGER,
    cancel_reason           TEXT   NOT NULL DEFAULT '',
    cancelled_us            INTEGER,
    revision                INTEGER NOT NULL DEFAULT 1,
    CHECK (control_count > 0 AND control_amount_fen > 0),
    CHECK (approve_subject IS NULL OR approve_subject <> create_subject)
);
CREATE INDEX payment_batches_fund ON payment_batches (fund_id, created_us);

-- A batch's lines. `open_claim_id` holds the claim while the line is open (pending) and is
-- cleared when it is paid, failed or cancelled: its UNIQUE constraint is the rule that a claim
-- is in at most one open batch. Lines are written before their batch row (its control totals
-- are theirs), so the reference is checked at commit.
CREATE TABLE payment_lines (
    batch_id           TEXT   NOT NULL REFERENCES payment_batches (id) DEFERRABLE INITIALLY DEFERRED,
    line_number        INTEGER NOT NULL,
    claim_id           TEXT   NOT NULL REFERENCES claims (id),
    open_claim_id      TEXT   UNIQUE,
    account_id         TEXT   NOT NULL REFERENCES payee_accounts (id),
    payee_display_name TEXT   NOT NULL,
    masked_account     TEXT   NOT NULL,
    amount_fen         INTEGER NOT NULL CHECK (amount_fen > 0),
    region             TEXT   NOT NULL,
    state              TEXT   NOT NULL CHECK (state IN ('pending', 'paid', 'failed', 'cancelled')),
    paid_date          TEXT,
    bank_reference     TEXT   NOT NULL DEFAULT '',
    failure_reason     TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (batch_id, line_number),
    CHECK ((state = 'pending') = (open_claim_id IS NOT NULL))
);
CREATE INDEX payment_lines_claim ON payment_lines (claim_id);

-- Objections during the notice (异议). The objector's contact is personal data: encrypted, and
-- masked in answers.
CREATE TABLE objections (
    batch_id         TEXT   NOT NULL REFERENCES payment_batches (id),
    seq              INTEGER NOT NULL,
    line_number      INTEGER NOT NULL,
    claim_id         TEXT,
    channel          TEXT   NOT NULL,
    content          TEXT   NOT NULL,
    objector_contact_enc BLOB,
    objector_contact_masked TEXT NOT NULL,
    received_date    TEXT   NOT NULL,
    state            TEXT   NOT NULL CHECK (state IN ('open', 'upheld', 'dismissed')),
    resolution       TEXT   NOT NULL DEFAULT '',
    record_subject   TEXT   NOT NULL,
    resolve_subject  TEXT,
    created_us       INTEGER NOT NULL,
    resolved_us      INTEGER,
    PRIMARY KEY (batch_id, seq)
);

-- The bank's result files as imported: the hash makes a re-import of the same file change
-- nothing; the report is what it found.
CREATE TABLE bank_result_files (
    batch_id    TEXT   NOT NULL REFERENCES payment_batches (id),
    sha256      TEXT   NOT NULL,
    file_name   TEXT   NOT NULL,
    bank_name   TEXT   NOT NULL,
    report      TEXT   NOT NULL,
    subject     TEXT   NOT NULL,
    imported_us INTEGER NOT NULL,
    PRIMARY KEY (batch_id, sha256)
);
