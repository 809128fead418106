"""The annual follow-up cycle (vuosittainen seuranta): schedule, cycle, measures, report requests, survey, report."""
