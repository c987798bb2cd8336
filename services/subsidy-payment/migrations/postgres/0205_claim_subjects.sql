-- Whom a policy's claims are about (补贴对象). A one-time award to a carrier is about the
-- organization alone, with no person; its claims are counted per organization. Claims and the
-- periods they hold are therefore keyed by the subject: the person's id, or "org:" and the
-- organization's unified social credit code (person ids are letters and digits only).
ALTER TABLE policies ADD COLUMN claim_subject TEXT NOT NULL DEFAULT 'person';
ALTER TABLE claims RENAME COLUMN person_id TO subject_key;
ALTER TABLE claim_periods RENAME COLUMN person_id TO subject_key;
