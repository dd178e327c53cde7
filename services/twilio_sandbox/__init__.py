"""A small local fake of Twilio's Messages API, for development and tests.

The official `twilio` client pointed at it (`client.api.base_url`) works unchanged:
same paths, form fields, JSON answers and error bodies as API 2010-04-01, status
callbacks and inbound webhooks signed as Twilio signs them. A control API under
`/_sandbox/` lets tests make it misbehave and see what it received. Everything
is kept in memory. Run it with `python -m services.twilio_sandbox`.
"""
