"""The web pages, one module per area.

Signatories and coordinators of agreements: sign-in, tasks, agreements (parties), coordinator, substitutes.
Administration and the recurring work: administration (admin, simulation, email_templates), dashboards (and the
outbox), the overview (clock), nominations, cycles, survey.
"""
