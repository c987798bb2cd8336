-- Only pending lines are looked up by state (the lines still to be sent to subsidy payment), and
-- they are few. An index on state alone invited the planner, on statistics taken while a month's
-- lines were all in another state, to read every line of that state to update one payroll's 60
-- (10 ms a payroll measured, against 0.3 ms by the primary key).
DROP INDEX wr_payroll_lines_state;
CREATE INDEX wr_payroll_lines_pending ON wr_payroll_lines (project_id, month, line_number) WHERE state = 'pending';
