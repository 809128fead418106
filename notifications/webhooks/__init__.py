"""Webhooks: case events as CloudEvents 1.0, signed as Standard Webhooks describes, through a transactional queue.

- `models.py`: subscriptions (endpoint, filters, the encrypted signing secret), queued deliveries, attempts.
- `events.py`: the transition listener that queues one delivery per matching subscription in the transition's
  own transaction (so an event is queued exactly when it is committed), and the CloudEvent it carries.
- `signing.py`: secrets (`whsec_...`), kept encrypted at rest with a key derived from the service's secret key,
  and the `webhook-id` / `webhook-timestamp` / `webhook-signature` headers (the `standardwebhooks` package).
- `targets.py`: which URLs may receive deliveries (no private, loopback or link-local address unless an
  administrator allowed it on that subscription: server-side request forgery).
- `sender.py`: the sweep that delivers after the commit, in order per case, with timeouts, retries with backoff,
  a dead-letter status and manual replay.
"""
