"""Why a report could not be made: bad input (exit 2), or a side whose pipeline failed (exit 1)."""

from shoprec.errors import EXIT_BAD_INPUT, EXIT_REFUSED, ShoprecError


class ReportError(ShoprecError):
    """A report that cannot start: an unknown ref, a commit without what the report reads."""

    exit_code = EXIT_BAD_INPUT


class SideFailed(ShoprecError):
    """A side's environment or pipeline failed; the message names the side and its log."""

    exit_code = EXIT_REFUSED
