"""The recommendation web service and its `shoprec serve` command."""

import argparse
from pathlib import Path


def serve(args: argparse.Namespace) -> int:
    """Serve the model at `args.model` over HTTP until interrupted."""
    import uvicorn

    from shoprec.artifact import ArtifactError
    from shoprec.service.app import create_app

    model = args.model if args.model.startswith("models:/") else Path(args.model)
    try:
        app = create_app(model, run_id=args.run_id, environment=args.environment)
    except ArtifactError as error:
        raise ArtifactError(f"cannot load model: {error}") from error
    uvicorn.run(app, host=args.host, port=args.port)
    return 0
