"""Helpers the workflow services share: `dates` (today, deadlines), `people` (organisations, contacts), `mail`."""
