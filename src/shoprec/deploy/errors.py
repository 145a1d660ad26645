"""Why a deploy command stopped, and the exit code each reason maps to."""

from shoprec.errors import ShoprecError


class DeployError(ShoprecError):
    """A deploy command that cannot go ahead; `exit_code` says why (2: bad input)."""

    exit_code = 2


class GateRefused(DeployError):
    """A promotion the gate rules refuse."""

    exit_code = 1


class ServiceError(DeployError):
    """A local service that failed to start or stop."""

    exit_code = 1
