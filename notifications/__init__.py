"""Emails: engine events -> (template, recipients, dedupe key) -> outbox row -> aiosmtplib, in fi/sv/en.

Map: render (sandboxed Jinja2 templates per language), outbox (queue in the caller's transaction),
reminders (timer handlers and transition notices), delivery (claim, send, retry, capture), digest (daily digest),
mime and smtp (message building and the SMTP client).
"""
