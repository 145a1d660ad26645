"""The deployment environments, in promotion order, and where each one listens."""

from dataclasses import dataclass

from shoprec.deploy.errors import DeployError

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Environment:
    """A named environment served by one local process on its own port."""

    name: str

    @property
    def port_variable(self) -> str:
        """The environment variable that sets this environment's port."""
        from shoprec.settings import environment_variable

        return environment_variable(f"port_{self.name}")

    @property
    def port(self) -> int:
        """The port to listen on: $SHOPREC_PORT_<NAME>, else the default (`shoprec.settings`)."""
        from shoprec.settings import get_settings  # pydantic only when a port is needed

        return get_settings().port(self.name)

    @property
    def url(self) -> str:
        """The base URL of the environment's service."""
        return f"http://{HOST}:{self.port}"


ENVIRONMENTS: dict[str, Environment] = {
    env.name: env
    for env in (
        Environment("test"),
        Environment("staging"),
        Environment("production"),
    )
}


def get_environment(name: str) -> Environment:
    """The environment called `name`."""
    if name not in ENVIRONMENTS:
        raise DeployError(f"unknown environment {name!r}; expected one of {list(ENVIRONMENTS)}")
    return ENVIRONMENTS[name]
