-- Payee accounts (收款账户). The account number, the holder's name and (for a person) citizen ID
-- are stored encrypted (AES-256-GCM envelopes bound to the account) for the disbursement file;
-- lists show the masked forms only. One account per payee is in use: a partial unique index.
CREATE TABLE payee_accounts (
    id                    TEXT   PRIMARY KEY,
    owner_kind            TEXT   NOT NULL CHECK (owner_kind IN ('person', 'organization')),
    owner_key             TEXT   NOT NULL,
    owner_display_name    TEXT   NOT NULL,
    region                TEXT   NOT NULL,
    kind                  TEXT   NOT NULL,
    account_enc           BYTEA  NOT NULL,
    account_masked        TEXT   NOT NULL,
    holder_name_enc       BYTEA  NOT NULL,
    holder_name_masked    TEXT   NOT NULL,
    holder_citizen_id_enc BYTEA,
    bank_name             TEXT   NOT NULL,
    bank_code             TEXT   NOT NULL,
    verification_state    TEXT   NOT NULL,
    verification_method   TEXT   NOT NULL,
    verification_document TEXT   NOT NULL,
    verified_us           BIGINT,
    in_use                BIGINT NOT NULL DEFAULT 0,
    superseded_by         TEXT,
    create_subject        TEXT   NOT NULL,
    created_us            BIGINT NOT NULL,
    CHECK (in_use = 0 OR verification_state = 'verified')
);
CREATE UNIQUE INDEX payee_accounts_one_in_use ON payee_accounts (owner_kind, owner_key) WHERE in_use = 1;
CREATE INDEX payee_accounts_region ON payee_accounts (region, id);
