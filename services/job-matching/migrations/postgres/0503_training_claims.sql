-- Training subsidies (Chaoyang §四(三)): a course may name the policies its completions are
-- claimed under; the training subsidy goes to the provider, an organization payee, so the course
-- records the provider's unified social credit code.
ALTER TABLE jobs_courses ADD COLUMN provider_credit_code TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs_courses ADD COLUMN training_subsidy_policy TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs_courses ADD COLUMN training_subsidy_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs_courses ADD COLUMN living_allowance_policy TEXT NOT NULL DEFAULT '';

-- A claim's payee is now a resource name: '' (the person), 'carriers/{id}' or
-- 'trainingCourses/{id}' (the course's provider).
ALTER TABLE jobs_claims RENAME COLUMN payee_carrier_id TO payee;
UPDATE jobs_claims SET payee = 'carriers/' || payee WHERE payee <> '';
