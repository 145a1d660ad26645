"""Local deployments: promote runs through test, staging and production."""
