"""The Dockerfile template for app images (kept as code so it ships inside the package)."""

from __future__ import annotations

__all__ = ["HEARTBEAT", "STATE_DIR", "UID", "render"]

UID = 10001
STATE_DIR = "/var/lib/vplc"
HEARTBEAT = f"{STATE_DIR}/heartbeat.json"

# Two stages: the wheelhouse only exists in the first, so the runtime image holds the installed
# venv and the app but no wheels and no pip cache. Nothing here touches the network:
# `--no-index --find-links` installs exactly the wheels built on the host.
TEMPLATE = """\
FROM {base} AS install
# Marks this stage's (dangling) cache images: `docker image prune --filter label=org.vplc.stage`.
LABEL org.vplc.stage=install
COPY wheels/ /wheels/
RUN python3 -m venv /opt/vplc \\
 && /opt/vplc/bin/pip install --no-index --find-links /wheels --no-cache-dir \\
        --disable-pip-version-check {requirement}
COPY app/ /app/
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
# Retain files (VPLC_STATE_DIR) and the heartbeat live here; deployments mount a named volume.
VOLUME {state}
WORKDIR {state}
USER {uid}:{uid}
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=2s --timeout=3s --start-period=20s --retries=2 \\
    CMD ["/opt/vplc/bin/python", "-m", "containers.health", "{heartbeat}", "--max-age", "5"]
ENTRYPOINT ["/opt/vplc/bin/vplc", "--log-format", "json", "run", "/app", "--no-view", \\
            "--heartbeat", "{heartbeat}"]
"""


def render(*, base: str, requirement: str) -> str:
    """The Dockerfile for one build: ``requirement`` names the runtime wheel to install."""
    return TEMPLATE.format(
        base=base, requirement=requirement, uid=UID, state=STATE_DIR, heartbeat=HEARTBEAT
    )
