"""The web pages, one module per area: sign-in, tasks, agreements (parties), coordinator, substitutes."""
