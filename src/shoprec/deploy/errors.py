"""Why a deploy command stopped, and the exit code each reason maps to."""

from shoprec.errors import EXIT_BAD_INPUT, EXIT_REFUSED, ShoprecError


class DeployError(ShoprecError):
    """A deploy command that cannot go ahead; `exit_code` says why (2: bad input)."""

    exit_code = EXIT_BAD_INPUT


class GateRefused(DeployError):
    """A promotion the gate rules refuse."""

    exit_code = EXIT_REFUSED


class ServiceError(DeployError):
    """A local service that failed to start or stop."""

    exit_code = EXIT_REFUSED
