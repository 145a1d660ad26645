"""The `deploy`, `rollback`, `status`, `history`, `stop` and `start` commands."""

import argparse
import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator

from shoprec.deploy import services, state
from shoprec.deploy.environments import ENVIRONMENTS, get_environment
from shoprec.deploy.errors import DeployError


@contextlib.contextmanager
def _progress_on_stderr() -> Iterator[None]:
    """Show what the deploy waits for (service starts, swaps, smoke tests) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    services.progress.addHandler(handler)
    services.progress.setLevel(logging.INFO)
    try:
        yield
    finally:
        services.progress.removeHandler(handler)


def _showing_progress(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        with _progress_on_stderr():
            return command(args)

    return run


def _selected(args: argparse.Namespace) -> list[str]:
    return [args.env] if args.env else list(ENVIRONMENTS)


@_showing_progress
def deploy_command(args: argparse.Namespace) -> int:
    """Deploy a run to an environment, if the promotion gates allow it."""
    from shoprec.deploy import deployer  # the models load only for what serves them

    deployment = deployer.deploy(args.env, args.run, approved=args.approve, canary=args.canary)
    url = get_environment(args.env).url
    if args.canary is not None:
        print(f"{deployment.env}: version {deployment.version} (run {deployment.run_id}) serves "
              f"{args.canary:.0%} of users as a canary at {url}; complete it with: shoprec "
              f"promote --env {deployment.env}")  # fmt: skip
        return 0
    print(
        f"{deployment.env}: serving version {deployment.version} (run {deployment.run_id}) at {url}"
    )
    return 0


@_showing_progress
def rollback_command(args: argparse.Namespace) -> int:
    """Serve the version the environment served before its current one."""
    from shoprec.deploy import deployer  # the models load only for what serves them

    deployment, replaced = deployer.rollback(args.env)
    print(
        f"{deployment.env}: rolled back from version {replaced} to version "
        f"{deployment.version} (run {deployment.run_id})"
    )
    return 0


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


def _seconds(timestamp: str | None) -> str:
    return timestamp.partition(".")[0].removesuffix("+00:00") + "Z" if timestamp else "-"


def status_command(args: argparse.Namespace) -> int:
    """Print each environment's URL, version and run served, since when, and whether it is up.

    Answers from the local services (`/health`) and what the last deploy asked each to serve,
    without loading MLflow; `--registry` also compares with the registry's aliases. Exits 1
    when an environment with a deployed version does not answer, or (with `--registry`) serves
    another version than its alias names; a pid file left by a service that is gone (e.g.
    killed) is removed and said so.
    """
    aliases = state.current() if args.registry else None
    rows = [("ENVIRONMENT", "URL", "VERSION", "CANARY", "RUN", "SINCE", "SERVICE")]
    down, mismatched, notes = [], [], []
    for name, env in ENVIRONMENTS.items():
        deployed = services.deployed(env)
        stale = services.remove_stale_pid(env)
        if stale is not None:
            notes.append(f"{name}: removed stale pid file (process {stale} is gone)")
        live = services.health(env)
        version = deployed["version"] if deployed else None
        canary = (deployed or {}).get("canary") or {}
        if live is None:
            service = "down"
            if deployed is not None:
                down.append(name)
        elif live.get("model_version") != version:
            service = f"up (serving version {live.get('model_version')})"
        elif live.get("canary_version") != canary.get("version"):
            service = f"up (canary: version {live.get('canary_version') or 'none'})"
        else:
            service = "up"
        if deployed is None:
            rows.append((name, env.url, "-", "-", "-", "-", service))
        else:
            since = _seconds(deployed.get("since"))
            shown = f"{canary['version']} ({canary['fraction']:.0%})" if canary else "-"
            run_id = deployed.get("run_id") or "-"
            rows.append((name, env.url, version, shown, run_id, since, service))
        if aliases is not None:
            alias = aliases.get(name)
            if (alias and alias.version) != version:
                mismatched.append(name)
                notes.append(
                    f"{name}: the registry's alias names version {alias and alias.version}, "
                    f"the local service was asked for {version}; run: shoprec start --env {name}"
                )
    _print_table(rows)
    for note in notes:
        print(note, file=sys.stderr)
    if down:
        print(
            f"shoprec status: {', '.join(down)} should serve but "
            f"{'is' if len(down) == 1 else 'are'} down; start with: shoprec start",
            file=sys.stderr,
        )
    return 1 if down or mismatched else 0


def history_command(args: argparse.Namespace) -> int:
    """Print every deployment and rollback, oldest first."""
    rows = [("AT", "ENVIRONMENT", "VERSION", "RUN", "ACTION")]
    reasons = state.rollback_reasons()
    rows += [
        (_seconds(event.at), event.env, event.version, event.run_id, event.action
         + (f" ({reasons[key]})" if (key := (event.env, event.version, event.at)) in reasons
            else ""))
        for event in state.history(args.env)
    ]  # fmt: skip
    if len(rows) == 1:
        print("nothing deployed yet")
    else:
        _print_table(rows)
    return 0


@_showing_progress
def stop_command(args: argparse.Namespace) -> int:
    """Stop the local service of one or every environment."""
    for name in _selected(args):
        pid = services.stop(get_environment(name))
        print(f"{name}: stopped (pid {pid})" if pid else f"{name}: not running")
    return 0


@_showing_progress
def start_command(args: argparse.Namespace) -> int:
    """Start services for the runs the stored state says each environment serves."""
    from shoprec.deploy import deployer  # the models load only for what serves them

    current = state.current()
    failures = []
    for name in _selected(args):
        if not args.env and name not in current:
            print(f"{name}: nothing deployed")
            continue
        try:
            deployment, pid = deployer.start(name)
        except DeployError as error:
            failures.append(error)
            print(f"shoprec start: {error}", file=sys.stderr)
            continue
        started = f"started (pid {pid})" if pid else "already running"
        print(f"{name}: {started}, serving version {deployment.version} (run {deployment.run_id})")
    return max((error.exit_code for error in failures), default=0)


@_showing_progress
def promote_command(args: argparse.Namespace) -> int:
    """Complete the environment's canary: its challenger serves every user."""
    from shoprec.deploy import deployer  # the models load only for what serves them

    deployment = deployer.promote(args.env)
    print(f"{deployment.env}: promoted; serving version {deployment.version} "
          f"(run {deployment.run_id}) to every user")  # fmt: skip
    return 0
