"""Errors of the event store and of the feedback events sent to it."""

from shoprec.errors import ShoprecError


class EventStoreError(ShoprecError):
    """The event store is unreachable, misconfigured or holds a schema this code cannot use."""
