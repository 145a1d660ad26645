"""Local deployments: promote runs through test, staging and production."""

from shoprec.deploy.commands import register

__all__ = ["register"]
