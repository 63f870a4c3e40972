"""Subcommands ``vplc image build`` and ``vplc deploy|status|update|rollback|logs|remove``.

Registered by name through the ``vplc.commands`` entry-point group, so runtime never imports
this package. The docker SDK is imported only when a command runs: ``vplc run`` loads this
module on every start and must stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from containers._errors import ContainersError, InvalidInputError

__all__ = ["register_deploy", "register_image"]

Handler = Callable[[argparse.Namespace], int]


def _guarded(handler: Handler) -> Handler:
    """Turn the layer's errors into one message on stderr and the documented exit code."""

    def run(args: argparse.Namespace) -> int:
        import docker.errors

        try:
            return handler(args)
        except ContainersError as exc:
            print(f"vplc: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except docker.errors.APIError as exc:
            print(f"vplc: error: Docker engine: {exc.explanation or exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    return run


def register_image(sub: Any) -> None:
    image = sub.add_parser("image", help="build container images of apps")
    isub = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    build = isub.add_parser("build", help="build vplc-<app>:<version> from an app folder")
    build.add_argument("app", type=Path, metavar="APP_DIR")
    build.add_argument("--base-image", default=None, help="default vplc-base:bookworm")
    build.add_argument("--tag", default=None, help="default vplc-<app>:<version>")
    build.add_argument("--no-cache", action="store_true", help="rebuild every image layer")
    build.add_argument(
        "--wheelhouse",
        type=Path,
        default=None,
        help="install these prebuilt wheels (made elsewhere) instead of building them here",
    )
    build.set_defaults(func=_guarded(_image_build))
    plant = isub.add_parser(
        "build-plant", help="build vplc-sim:<runtime version>: `vplc sim serve` as entrypoint"
    )
    plant.add_argument("--base-image", default=None, help="default vplc-base:bookworm")
    plant.add_argument("--tag", default=None, help="default vplc-sim:<runtime version>")
    plant.add_argument("--no-cache", action="store_true", help="rebuild every image layer")
    plant.add_argument("--wheelhouse", type=Path, default=None, help="prebuilt wheels to install")
    plant.set_defaults(func=_guarded(_image_build_plant))


def _image_build(args: argparse.Namespace) -> int:
    from containers._base import BASE_IMAGE
    from containers._client import connect
    from containers._image import build_image

    if not (args.app / "app.yaml").is_file():
        print(f"vplc: error: {args.app}: not an app folder (no app.yaml)", file=sys.stderr)
        return 2
    built = build_image(
        connect(),
        args.app,
        base_image=args.base_image or BASE_IMAGE,
        tag=args.tag,
        no_cache=args.no_cache,
        wheelhouse=args.wheelhouse,
        progress=lambda line: print(line, flush=True),
    )
    print(json.dumps({"tag": built.tag, "id": built.id, "labels": built.labels}, indent=2))
    return 0


def _image_build_plant(args: argparse.Namespace) -> int:
    from containers._base import BASE_IMAGE
    from containers._client import connect
    from containers._plant import build_plant_image

    built = build_plant_image(
        connect(),
        base_image=args.base_image or BASE_IMAGE,
        tag=args.tag,
        no_cache=args.no_cache,
        wheelhouse=args.wheelhouse,
        progress=lambda line: print(line, flush=True),
    )
    print(json.dumps({"tag": built.tag, "id": built.id, "labels": built.labels}, indent=2))
    return 0


def register_deploy(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=None, help="records and audit trail")
    common.add_argument("--user", default=None, help="who is acting (default $USER)")
    p = sub.add_parser("deploy", parents=[common], help="create and start a deployment")
    p.add_argument("file", type=Path, metavar="DEPLOYMENT.yaml")
    p.set_defaults(func=_guarded(_deploy))
    p = sub.add_parser("status", parents=[common], help="deployments: version, health, scan")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guarded(_status))
    p = sub.add_parser("update", parents=[common], help="another image (recreate or blue-green)")
    p.add_argument("name")
    p.add_argument("image")
    p.add_argument("--deadline", type=float, default=None, metavar="SECONDS")
    p.set_defaults(func=_guarded(_update))
    p = sub.add_parser(
        "rollback", parents=[common], help="return to the previous release (or --to one)"
    )
    p.add_argument("name")
    p.add_argument(
        "--to",
        default=None,
        metavar="VERSION|IMAGE_ID",
        help="a release of `vplc history NAME`: its version or (a prefix of) its image ID",
    )
    p.add_argument("--deadline", type=float, default=None, metavar="SECONDS")
    p.set_defaults(func=_guarded(_rollback))
    p = sub.add_parser("history", parents=[common], help="the releases kept, by image ID")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guarded(_history))
    p = sub.add_parser("logs", parents=[common], help="the deployment's JSON log lines")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", default="all", help="number of lines from the end")
    p.set_defaults(func=_guarded(_logs))
    p = sub.add_parser("remove", parents=[common], help="stop (outputs safe) and remove")
    p.add_argument("name")
    p.add_argument("--purge", action="store_true", help="also delete the state volume")
    p.set_defaults(func=_guarded(_remove))


def _manager(args: argparse.Namespace) -> Any:
    from containers._client import connect
    from containers._manager import DeploymentManager
    from containers._record import default_state_dir, default_user

    return DeploymentManager(
        connect(),
        state_dir=args.state_dir or default_state_dir(),
        user=args.user or default_user(),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )


def _deploy(args: argparse.Namespace) -> int:
    from containers._spec import Strategy, load_deployment
    from containers._swarm import deploy_file  # routes `target: swarm` to a Swarm service

    if load_deployment(args.file).strategy is Strategy.BLUE_GREEN:
        from containers import _bluegreen_deploy

        print(json.dumps(_bluegreen_deploy.deploy(_manager(args), args.file)))
        return 0
    print(json.dumps(deploy_file(_manager(args), args.file)))
    return 0


def _update(args: argparse.Namespace) -> int:
    from containers import _swarm
    from containers._rollout import update

    mgr = _manager(args)
    do = _swarm.update if _swarm.is_swarm(mgr, args.name) else update
    print(json.dumps(do(mgr, args.name, args.image, deadline_s=args.deadline)))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from containers import _swarm
    from containers._history import find_release
    from containers._rollout import history, rollback

    mgr = _manager(args)
    if not _swarm.is_swarm(mgr, args.name):
        print(json.dumps(rollback(mgr, args.name, to=args.to, deadline_s=args.deadline)))
        return 0
    if args.to is None:
        print(json.dumps(_swarm.rollback(mgr, args.name)))
        return 0
    with mgr.refusals("rollback", args.name, to=args.to, target="swarm"):
        rec = mgr.store.get(args.name)
        if rec is None:
            raise InvalidInputError(f"no deployment named {args.name!r} in {mgr.store.dir}")
        target = find_release(args.name, history(rec), args.to)
    result = _swarm.update(
        mgr, args.name, target["image_id"], deadline_s=args.deadline, what="rollback"
    )
    print(json.dumps(result))
    return 0


def _history(args: argparse.Namespace) -> int:
    from containers._history import format_history
    from containers._record import DeploymentStore, default_state_dir
    from containers._rollout import history

    store = DeploymentStore(args.state_dir or default_state_dir())
    rec = store.get(args.name)
    if rec is None:
        raise InvalidInputError(f"no deployment named {args.name!r} in {store.dir}")
    releases = history(rec)
    if args.json:
        print(json.dumps(releases, indent=2))
        return 0
    keep = rec.get("spec", {}).get("keep_releases", 5)
    print(f"{args.name}: {len(releases)} release(s) kept (up to {keep}), newest first")
    print("\n".join(format_history(releases)))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from containers import _swarm

    mgr = _manager(args)
    rec = mgr.store.get(args.name) or {}
    if _swarm.is_swarm(mgr, args.name):
        _swarm.remove(mgr, args.name, purge=args.purge)
    elif rec.get("spec", {}).get("strategy") == "blue-green":
        from containers import _bluegreen_deploy

        _bluegreen_deploy.remove(mgr, args.name, purge=args.purge)
    else:
        mgr.remove(args.name, purge=args.purge)
    print(f"{args.name}: removed" + (" with its state volume" if args.purge else ""))
    return 0


def _logs(args: argparse.Namespace) -> int:
    from containers import _swarm

    tail: int | Literal["all"] = "all" if args.tail == "all" else int(args.tail)
    mgr = _manager(args)
    if _swarm.is_swarm(mgr, args.name):
        source = _swarm.logs(mgr, args.name, follow=args.follow, tail=tail)
    else:
        source = mgr.logs(args.name, follow=args.follow, tail=tail)
    try:
        for chunk in source:
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    except BrokenPipeError:
        pass
    return 0


def _mqtt_problems(conns: list[dict[str, Any]]) -> list[str]:
    """A broker connection that is down or collides, under its deployment's row."""
    lines = []
    for c in conns:
        if c.get("collision"):
            lines.append(f"mqtt {c['who']}: CLIENT-ID COLLISION: {c['collision']}")
        elif not c.get("connected"):
            why = c.get("last_error") or c.get("reason") or "connecting"
            lines.append(f"mqtt {c['who']}: DOWN for {c.get('down_s')} s: {why}")
    return lines


def _status(args: argparse.Namespace) -> int:
    from containers import _swarm

    mgr = _manager(args)
    rows = _swarm.status(mgr, mgr.status())  # + one row per Swarm service
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'deployment':<22}{'version':<10}{'state':<10}{'engine':<8}{'health':<11}"
        f"{'restarts':>8}  scan"
    )
    for r in rows:
        scan = r["scan"] or {}
        tasks = (
            ", ".join(
                f"{n}: {t['cycles']} cycles, {t['overruns']} overruns"
                for n, t in scan["tasks"].items()
            )
            if scan
            else "-"
        )
        # A running container whose runtime sits in FAULT (outputs safe) must stand out.
        fault = f" — FAULT: {scan['fault_reason']}" if scan.get("fault_reason") else ""
        print(
            f"{r['deployment']:<22}{r['version']:<10}{r['state']:<10}"
            f"{scan.get('state') or '-':<8}{r['health']:<11}{r['restarts']:>8}  {tasks}{fault}"
        )
        for line in _mqtt_problems(scan.get("mqtt", [])):
            print(f"{'':<22}{line}")
    return 0
