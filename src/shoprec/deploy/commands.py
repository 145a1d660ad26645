"""The `deploy`, `rollback`, `promote`, `status`, `history`, `stop` and `start` commands."""

import argparse
import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator

from shoprec.deploy import services, state, transaction
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

    deployment = deployer.deploy(
        args.env, args.run, approved=args.approve, canary=args.canary, wait=not args.no_wait
    )
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

    deployment, replaced = deployer.rollback(args.env, wait=not args.no_wait)
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


def _registry_findings(name: str, asked: dict | None, live: dict | None) -> list[str]:
    """How `name`'s aliases and history disagree with what its service was asked for."""
    from shoprec.deploy.deployer import canary_alias
    from shoprec.tracking import registry
    from shoprec.tracking.store import client

    mlflow_client = client()
    alias = registry.alias_version(mlflow_client, name)
    alias = alias and str(alias.version)
    challenger = registry.alias_version(mlflow_client, canary_alias(name))
    challenger = challenger and str(challenger.version)
    version = asked["version"] if asked else None
    asked_canary = ((asked or {}).get("canary") or {}).get("version")
    served = state.served_versions(name)
    findings = []
    if alias != version:
        findings.append(
            f"the registry's alias names version {alias}, the local service was asked for {version}"
        )
    if challenger != asked_canary:
        findings.append(
            f"the registry's canary alias names version {challenger}, the local service was "
            f"asked for {asked_canary} as its canary"
        )
    if alias is not None and (served[-1] if served else None) != alias:
        findings.append(
            f"the history ends with version {served[-1] if served else None}, the registry's "
            f"alias names {alias}"
        )
    if live is not None and alias is not None and live.get("model_version") != alias:
        findings.append(
            f"the service serves version {live.get('model_version')}, the registry's alias "
            f"names {alias}"
        )
    return findings


def status_command(args: argparse.Namespace) -> int:
    """Print each environment's URL, version and run served, since when, and whether it is up.

    Answers from the local services (`/health`) and what the last deploy asked each to serve,
    without loading MLflow; `--registry` also compares with the registry's aliases and
    history. Exits 1 when an environment with a deployed version does not answer, serves
    another version than it was asked for, was left half-changed by a command that was
    killed, or (with `--registry`) disagrees with its aliases; each such finding ends with
    the one command that repairs it. A pid file left by a service that is gone (e.g.
    killed) is removed and said so. An environment a command is changing right now is only
    described: what it shows may be half-way.
    """
    rows = [("ENVIRONMENT", "URL", "VERSION", "CANARY", "RUN", "SINCE", "SERVICE")]
    down, broken, notes = [], [], []
    for name, env in ENVIRONMENTS.items():
        deployed = services.deployed(env)
        stale = services.remove_stale_pid(env)
        if stale is not None:
            notes.append(f"{name}: removed stale pid file (process {stale} is gone)")
        live = services.health(env)
        version = deployed["version"] if deployed else None
        canary = (deployed or {}).get("canary") or {}
        findings = []
        if live is None:
            service = "down"
            if deployed is not None:
                down.append(name)
        elif live.get("model_version") != version:
            service = f"up (serving version {live.get('model_version')})"
            findings.append(f"the service serves version {live.get('model_version')}, "
                            f"it was asked for {version}")  # fmt: skip
        elif live.get("canary_version") != canary.get("version"):
            service = f"up (canary: version {live.get('canary_version') or 'none'})"
            findings.append(f"the service's canary is version {live.get('canary_version')}, "
                            f"it was asked for {canary.get('version')}")  # fmt: skip
        else:
            service = "up"
        if deployed is None:
            rows.append((name, env.url, "-", "-", "-", "-", service))
        else:
            since = _seconds(deployed.get("since"))
            shown = f"{canary['version']} ({canary['fraction']:.0%})" if canary else "-"
            run_id = deployed.get("run_id") or "-"
            rows.append((name, env.url, version, shown, run_id, since, service))
        busy = transaction.holder(name)
        if busy is not None:
            notes.append(f"{name}: `shoprec {busy.get('command', '?')}` (pid {busy.get('pid')}) "
                         "is changing it now; this row may be half-way")  # fmt: skip
            continue
        leftover = transaction.leftover(name)
        if leftover is not None:
            findings.insert(
                0,
                f"{leftover.describe()} was killed at step {leftover.step!r}; it has not finished",
            )
        if args.registry:
            findings += _registry_findings(name, deployed, live)
        if findings:
            broken.append(name)
            notes += [f"{name}: {finding}" for finding in findings]
            notes.append(f"{name}: repair with: shoprec start --env {name}")
    _print_table(rows)
    for note in notes:
        print(note, file=sys.stderr)
    if down:
        command = f"shoprec start --env {down[0]}" if len(down) == 1 else "shoprec start"
        print(
            f"shoprec status: {', '.join(down)} should serve but "
            f"{'is' if len(down) == 1 else 'are'} down; start with: {command}",
            file=sys.stderr,
        )
    return 1 if down or broken else 0


def history_command(args: argparse.Namespace) -> int:
    """Print every alias move (deploy, rollback, promote, start, canary, canary-rollback),
    oldest first, with its reason."""
    rows = [("AT", "ENVIRONMENT", "VERSION", "RUN", "ACTION")]
    rows += [
        (_seconds(event.at), event.env, event.version, event.run_id,
         event.action + (f" ({event.reason})" if event.reason else ""))
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
    from shoprec.deploy import deployer

    for name in _selected(args):
        pid = deployer.stop(name, wait=not args.no_wait)
        print(f"{name}: stopped (pid {pid})" if pid else f"{name}: not running")
    return 0


@_showing_progress
def start_command(args: argparse.Namespace) -> int:
    """Have each environment's service serve what the registry's aliases name, repairing what
    a killed command left half-done."""
    from shoprec.deploy import deployer  # the models load only for what serves them

    failures = []
    for name in _selected(args):
        try:
            started = deployer.start(name, wait=not args.no_wait)
        except DeployError as error:
            if not args.env and str(error).startswith("nothing deployed"):
                print(f"{name}: nothing deployed")
                continue
            failures.append(error)
            print(f"shoprec start: {error}", file=sys.stderr)
            continue
        deployment = started.deployment
        if deployment is None:
            print(f"{name}: {started.outcome}")
        else:
            print(f"{name}: {started.outcome}, serving version {deployment.version} "
                  f"(run {deployment.run_id})")  # fmt: skip
    return max((error.exit_code for error in failures), default=0)


@_showing_progress
def promote_command(args: argparse.Namespace) -> int:
    """Complete the environment's canary: its challenger serves every user."""
    from shoprec.deploy import deployer  # the models load only for what serves them

    deployment = deployer.promote(args.env, wait=not args.no_wait)
    print(f"{deployment.env}: promoted; serving version {deployment.version} "
          f"(run {deployment.run_id}) to every user")  # fmt: skip
    return 0
