-- The last day of the period of work a confirmation sent is for (NULL while it lasts), so the
-- cooperation statistics count periods overlapping a year; and whether the partner answered
-- that the person is one of its target persons (target_person: -1 not asked yet, 0 no, 1 yes).
ALTER TABLE exchange_outbox ADD COLUMN end_date TEXT;
ALTER TABLE exchange_received_confirmations ADD COLUMN end_date TEXT;
