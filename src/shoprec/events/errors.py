"""Errors of the event store and of the feedback events sent to it."""

from shoprec.errors import ShoprecError


class EventStoreError(ShoprecError):
    """The event store is unreachable, misconfigured or holds a schema this code cannot use."""


class DamagedStoreError(EventStoreError):
    """The event store is damaged, or holds a schema this code cannot use: nothing may be
    written to it until someone recovers it (the message says how)."""
