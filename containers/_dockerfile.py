"""The Dockerfile template for app images (kept as code so it ships inside the package)."""

from __future__ import annotations

__all__ = [
    "APP_LISTING",
    "CONFIG_MOUNT",
    "HEARTBEAT",
    "STATE_DIR",
    "UID",
    "VALIDATE_STEP",
    "render",
    "render_plant",
]

UID = 10001
STATE_DIR = "/var/lib/vplc"
CONFIG_MOUNT = "/etc/vplc"  # a deployment's config_dir, read-only
HEARTBEAT = f"{STATE_DIR}/heartbeat.json"
APP_LISTING = "/opt/vplc/app.sha256"  # sha256sum lines of every app file (containers/_digest.py)
# The build's last step: the app is loaded (manifest checked, logic imported and constructed)
# by the runtime in the image, as the user and with the environment it will run with.
VALIDATE_STEP = "/opt/vplc/bin/vplc validate /app"

# Two stages: the wheelhouse only exists in the first, so the runtime image holds the installed
# venv and the app but no wheels and no pip cache. Nothing here touches the network (the build
# runs with network mode none): `--no-index --find-links` installs exactly the host's wheels.
INSTALL = """\
FROM {base} AS install
# Marks this stage's (dangling) cache images: `docker image prune --filter label=org.vplc.stage`.
LABEL org.vplc.stage=install
COPY wheels/ /wheels/
RUN python3 -m venv /opt/vplc \\
 && /opt/vplc/bin/pip install --no-index --find-links /wheels --no-cache-dir \\
        --disable-pip-version-check {requirement}
"""

TEMPLATE = (
    INSTALL
    + """\
COPY app/ /app/
COPY app.sha256 {listing}
# The copy holds exactly the files the org.vplc.app-sha256 label was computed from.
RUN /opt/vplc/bin/python -m containers._digest /app --check {listing}
# Compile now: the root filesystem is read-only at run time.
RUN /opt/vplc/bin/python -m compileall -q /app

FROM {base}
RUN groupadd --system --gid {uid} vplc \\
 && useradd --system --uid {uid} --gid {uid} --home-dir {state} --no-create-home \\
        --shell /usr/sbin/nologin vplc \\
 && mkdir -p {state} && chown {uid}:{uid} {state}
COPY --from=install /opt/vplc /opt/vplc
COPY --from=install /app /app
ENV PATH=/opt/vplc/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    VPLC_STATE_DIR={state}
USER {uid}:{uid}
RUN {validate}
# Retain files (VPLC_STATE_DIR) and the heartbeat live here; deployments mount a named volume.
VOLUME {state}
WORKDIR {state}
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=2s --timeout=3s --start-period=20s --retries=2 \\
    CMD ["/opt/vplc/bin/python", "-m", "containers.health", "{heartbeat}", "--max-age", "5"]
ENTRYPOINT ["/opt/vplc/bin/vplc", "--log-format", "json", "run", "/app", "--no-view", \\
            "--heartbeat", "{heartbeat}"]
"""
)


# The simulated plant in its own container (``vplc sim serve``, sim_hardware/cli.py): the same
# base and wheels as the app images, arguments (broker, prefix, plant) given at `docker run`.
PLANT_TEMPLATE = (
    INSTALL
    + """\

FROM {base}
RUN groupadd --system --gid {uid} vplc \\
 && useradd --system --uid {uid} --gid {uid} --no-create-home --shell /usr/sbin/nologin vplc
COPY --from=install /opt/vplc /opt/vplc
ENV PATH=/opt/vplc/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER {uid}:{uid}
RUN /opt/vplc/bin/vplc sim serve --help >/dev/null
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/vplc/bin/vplc", "--log-format", "json", "sim", "serve"]
"""
)


def render_plant(*, base: str, requirement: str) -> str:
    """The Dockerfile of the plant image (``vplc sim serve`` as its entrypoint)."""
    return PLANT_TEMPLATE.format(base=base, requirement=requirement, uid=UID)


def render(*, base: str, requirement: str) -> str:
    """The Dockerfile for one build: ``requirement`` names the runtime wheel to install."""
    return TEMPLATE.format(
        base=base,
        requirement=requirement,
        uid=UID,
        state=STATE_DIR,
        heartbeat=HEARTBEAT,
        listing=APP_LISTING,
        validate=VALIDATE_STEP,
    )
