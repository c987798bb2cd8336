-- The retry job looks every round for active signings whose employment identity has not
-- recorded. Without an index it read every signing of the deployment to find none (105 ms a
-- round over 400,000 signings, PostgreSQL); this one holds only the few it looks for.
CREATE INDEX assignments_unrecorded ON assignments (id) WHERE state = 'active' AND employment_recorded = 0;
