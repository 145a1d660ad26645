"""Impressions and feedback events: their store, the impression logger, `POST /events`, the
service as deployed (`serve`, `runner`), `shoprec events summary` and the serving benchmark."""
