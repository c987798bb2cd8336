-- Organized labor export (有组织劳务输出): batches of placed persons travelling together; and every
-- subsidy claim this service sends to subsidy payment, one row each, keyed by the claim source
-- reference that makes subsidy payment take it once. Claim states: pending, submitted, granted,
-- refused, paid, payment_failed.

CREATE TABLE jobs_export_batches (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    agency_id TEXT NOT NULL REFERENCES jobs_carriers (id),
    mode TEXT NOT NULL,
    origin TEXT NOT NULL,
    destination TEXT NOT NULL,
    departure_date TEXT NOT NULL,
    transport_policy TEXT NOT NULL,
    agency_policy TEXT NOT NULL,
    state TEXT NOT NULL,
    departed_date TEXT,
    revision INTEGER NOT NULL,
    create_subject TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL
);
CREATE INDEX jobs_export_batches_origin ON jobs_export_batches (origin, id);

CREATE TABLE jobs_travellers (
    batch_id TEXT NOT NULL REFERENCES jobs_export_batches (id),
    -- A placement travels once: a second batch would claim its subsidies twice.
    placement_id TEXT NOT NULL UNIQUE REFERENCES jobs_placements (id),
    position INTEGER NOT NULL,
    fare_fen INTEGER NOT NULL CHECK (fare_fen >= 0),
    PRIMARY KEY (batch_id, placement_id)
);

CREATE TABLE jobs_claims (
    reference TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    person_id TEXT NOT NULL,
    -- The carrier paid (an organization payee); empty when the person is paid.
    payee_carrier_id TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    -- The facts this service offers, as JSON; the version in force takes those it declares.
    facts TEXT NOT NULL,
    -- The resource the claim shows on ("exportBatches/…", "carriers/…", "placements/…").
    owner TEXT NOT NULL,
    -- The person's registered region: who may see the claim.
    region TEXT NOT NULL,
    state TEXT NOT NULL,
    claim TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    detail TEXT NOT NULL,
    -- When it was last tried: a round takes the least recently tried first, so claims subsidy
    -- payment keeps refusing for now do not hold back the others.
    attempted_us INTEGER NOT NULL,
    created_us INTEGER NOT NULL
);
CREATE INDEX jobs_claims_owner ON jobs_claims (owner, created_us);
CREATE INDEX jobs_claims_pending ON jobs_claims (attempted_us) WHERE state = 'pending';
