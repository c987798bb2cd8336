-- Organized labor export (有组织劳务输出): batches of placed persons travelling together, and each
-- traveller's transport and agency-service subsidy claims as subsidy payment answers them.
-- Claim states: not_claimed, pending, submitted, granted, refused, paid, payment_failed.

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
    transport_state TEXT NOT NULL,
    transport_claim TEXT NOT NULL,
    transport_amount_fen INTEGER NOT NULL,
    transport_detail TEXT NOT NULL,
    agency_state TEXT NOT NULL,
    agency_claim TEXT NOT NULL,
    agency_amount_fen INTEGER NOT NULL,
    agency_detail TEXT NOT NULL,
    -- When its claims were last tried: a round takes the least recently tried first, so claims
    -- subsidy payment keeps refusing for now do not hold back the others.
    attempted_us INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, placement_id)
);
CREATE INDEX jobs_travellers_pending ON jobs_travellers (batch_id) WHERE transport_state = 'pending' OR agency_state = 'pending';
