"""The recommendation web service and its `shoprec serve` command."""

import argparse
import sys
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
        print(f"shoprec serve: cannot load model: {error}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port)
    return 0
