"""The recommendation web service and its `shoprec serve` command."""

import argparse
import sys
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP",
        description="Serve recommendations from a model artifact over HTTP.",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR|URI",
        help="model artifact directory, or registry URI models:/shoprec@<alias> (or /<version>)",
    )
    parser.add_argument("--run-id", metavar="ID", help="run id to report in responses")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--environment", default="local", metavar="NAME", help="default local")
    parser.set_defaults(func=serve)


__all__ = ["register"]
