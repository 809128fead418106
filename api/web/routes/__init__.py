"""The web pages, one module per area.

Part 1: sign-in, tasks, agreements (parties), coordinator, substitutes. Part 2: administration (admin, simulation,
email_templates), dashboards (and the outbox), the overview (clock), nominations, cycles, survey.
"""
