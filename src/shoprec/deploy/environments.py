"""The deployment environments, in promotion order, and where each one listens."""

import os
from dataclasses import dataclass

from shoprec.deploy.errors import DeployError

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Environment:
    """A named environment served by one local process on its own port."""

    name: str
    default_port: int

    @property
    def port_variable(self) -> str:
        """The environment variable that overrides the default port."""
        return f"SHOPREC_PORT_{self.name.upper()}"

    @property
    def port(self) -> int:
        """The port to listen on: $SHOPREC_PORT_<NAME>, else the default."""
        value = os.environ.get(self.port_variable)
        if value is None:
            return self.default_port
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise DeployError(f"{self.port_variable}={value!r} is not a port number (1-65535)")
        return int(value)

    @property
    def url(self) -> str:
        """The base URL of the environment's service."""
        return f"http://{HOST}:{self.port}"


ENVIRONMENTS: dict[str, Environment] = {
    env.name: env
    for env in (
        Environment("test", 8601),
        Environment("staging", 8602),
        Environment("production", 8603),
    )
}


def get_environment(name: str) -> Environment:
    """The environment called `name`."""
    if name not in ENVIRONMENTS:
        raise DeployError(f"unknown environment {name!r}; expected one of {list(ENVIRONMENTS)}")
    return ENVIRONMENTS[name]
