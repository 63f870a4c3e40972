"""Container benchmarks: image build (cold/cached), deploy, update and rollback to the end of
their probation, the output gap, and the automatic rollback of a late fault.

Needs a running Docker engine and the cached base image (built on first use). ``wheels_s`` is
the host wheel build (0-ish when the sources' wheelhouse is cached); "cold" rebuilds every
Dockerfile layer (``--no-cache``) from those wheels, "cached" reuses every layer, and
``build_app_change_s`` is an app-only change on top of a cached runtime layer. Every operation
runs with the default probation window (bioreactor: 20 cycles of its 1 s task = 20 s): the
``*_s`` figures are the whole command, end of probation included. ``late_fault`` is an update
to a build whose program raises after 6 s of app time (after its first healthy check).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.bench._util import BIOREACTOR, app_variant
from tests.containers.conftest import drop_release_tags, fault_after


def run() -> dict[str, Any]:
    from containers._client import connect
    from containers._errors import ContainersError, DeployError
    from containers._image import build_image, build_wheels
    from containers._manager import DeploymentManager
    from containers._rollout import rollback, update

    try:
        client = connect()
    except ContainersError as exc:
        return {"skipped": str(exc)}
    tag = f"vplcbench{uuid.uuid4().hex[:6]}-bioreactor"
    name = f"bench-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="vplc-bench-containers-"))
    quiet = lambda line: None  # noqa: E731
    tags: list[str] = []
    result: dict[str, Any] = {}
    try:
        # One wheelhouse for every build: the sources may change under a running bench (other
        # people edit the tree), which would otherwise turn "cached" into a wheel rebuild.
        t0 = time.perf_counter()
        wheels = build_wheels(progress=quiet)
        result["wheels_s"] = round(time.perf_counter() - t0, 2)
        opts: dict[str, Any] = {"wheelhouse": wheels, "progress": quiet}
        cold = build_image(client, BIOREACTOR, tag=f"{tag}:1.0.0", no_cache=True, **opts)
        tags.append(cold.tag)
        cached = build_image(client, BIOREACTOR, tag=f"{tag}:1.0.0", **opts)
        tags.append(cold.id)  # untagged by the cached build (new build-time label): remove by id
        result["build_cold_s"] = cold.seconds
        result["build_cached_s"] = cached.seconds

        v2_dir = app_variant(BIOREACTOR, lambda m: m.update(version="1.0.1"))
        late_dir = app_variant(BIOREACTOR, lambda m: m.update(version="1.0.2"))
        with (late_dir / "loops.py").open("a") as fh:
            fh.write(fault_after(6.0, "late fault on purpose"))
        v2 = build_image(client, v2_dir, tag=f"{tag}:1.0.1", **opts)
        late = build_image(client, late_dir, tag=f"{tag}:1.0.2", **opts)
        tags += [v2.tag, late.tag]
        result["build_app_change_s"] = v2.seconds["total_s"]

        mgr = DeploymentManager(client, state_dir=work / "state", user="bench", progress=quiet)
        dep_file = work / "dep.yaml"
        dep_file.write_text(yaml.safe_dump({"name": name, "image": cold.tag}))
        t0 = time.perf_counter()
        deployed = mgr.deploy(dep_file)
        result["deploy_s"] = round(time.perf_counter() - t0, 2)
        result["deploy_healthy_after_s"] = deployed["healthy_after_s"]
        result["probation_window_s"] = deployed["probation_s"]

        t0 = time.perf_counter()
        up = update(mgr, name, v2.tag)
        result["update_s"] = round(time.perf_counter() - t0, 2)
        result["update_healthy_after_s"] = up["healthy_after_s"]
        result["update_output_gap_s"] = up["output_gap_s"]
        result["update_output_gap_cycles"] = up["output_gap_cycles"]

        t0 = time.perf_counter()
        back = rollback(mgr, name)
        result["rollback_s"] = round(time.perf_counter() - t0, 2)
        result["rollback_output_gap_cycles"] = back["output_gap_cycles"]

        t0 = time.perf_counter()
        try:
            update(mgr, name, late.tag)
            result["late_fault"] = {"error": "the late fault was not caught"}
        except DeployError:
            failed, rolled = mgr.audit.records()[-2:]
            into = re.search(r"\((\d+\.\d) s into probation\)", failed.get("reason", ""))
            result["late_fault"] = {
                "outcome": rolled["outcome"],
                "update_until_rolled_back_s": round(time.perf_counter() - t0, 2),
                "detected_into_probation_s": float(into.group(1)) if into else None,
                "old_container_healthy_again_s": rolled.get("rollback_healthy_after_s"),
            }
        result["fastest_period_ms"] = 200.0
        return result
    finally:
        for suffix in ("", "-previous"):
            subprocess.run(["docker", "rm", "-f", f"vplc-{name}{suffix}"], capture_output=True)
        drop_release_tags(name)
        subprocess.run(["docker", "volume", "rm", "-f", f"vplc-{name}-state"], capture_output=True)
        for t in tags:
            subprocess.run(["docker", "rmi", "-f", t], capture_output=True)
        prune = ["docker", "image", "prune", "-f", "--filter", "label=org.vplc.stage=install"]
        subprocess.run(prune, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
