-- Payee accounts are looked up by their owner (a re-sent account list, a person's accounts);
-- the partial index on the account in use does not serve that.
CREATE INDEX payee_accounts_owner ON payee_accounts (owner_kind, owner_key, created_us);

-- Proactive claims (免申即享). The follower of identity's feed notes, in the same transaction as
-- its cursor, each change a policy may be triggered by; a job then reads the person's facts,
-- matches the policies' triggers and proposes claims for a clerk to confirm. A proposal's
-- source reference is built from the policy, the person and the change, so a replayed feed
-- proposes nothing twice.
CREATE TABLE proposal_checks (
    event_cursor   TEXT   PRIMARY KEY,
    person_id      TEXT   NOT NULL,
    change_kind    TEXT   NOT NULL,
    category       TEXT   NOT NULL DEFAULT '',
    effective_date TEXT,
    noted_us       BIGINT NOT NULL
);

-- A batch's claims, listed by the batch they are in.
CREATE INDEX claims_payment_batch ON claims (payment_batch_id);

-- The office that issues a batch's public notice, as printed on it.
ALTER TABLE payment_batches ADD COLUMN notice_issuer TEXT NOT NULL DEFAULT '';
