-- Closing a city's month reads its pending lines page by page in (month, village, assignment)
-- order; this index serves that read without sorting the month.
DROP INDEX month_lines_pending;
CREATE INDEX month_lines_sending ON month_lines (outcome, month, village, assignment_id);
