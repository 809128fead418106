"""Nominations (nimeäminen) to working groups: the request (parent) and one proposal case per asked organisation."""
