"""A private Mosquitto broker for tests: install if missing, certificates, config, start/stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests._apt import apt_install

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN)
    return shutil.which(name, path=path)


def ensure_mosquitto() -> tuple[str, str]:
    """Paths of ``mosquitto`` and ``mosquitto_passwd``.

    INSTALLS SOFTWARE: when Mosquitto is missing this runs ``apt-get install -y mosquitto``
    (and ``apt-get update`` first if that fails), because the MQTT tests need a real broker
    and must never be skipped silently. Raises RuntimeError with the apt output if it fails.
    """
    broker, passwd = _which("mosquitto"), _which("mosquitto_passwd")
    if broker and passwd:
        return broker, passwd
    output = apt_install("mosquitto")
    broker, passwd = _which("mosquitto"), _which("mosquitto_passwd")
    if not (broker and passwd):
        raise RuntimeError(
            "could not install mosquitto with apt-get (the MQTT tests need a real broker):\n"
            + output
        )
    return broker, passwd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port that refuses every connection while the block runs: bound, never listening.

    ``free_port()`` only names a port that was free a moment ago; another process (a broker
    of a test before) may take it and close connections instead of refusing them.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (openssl CLI)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=vplc test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    return {"ca": ca_crt, "cert": crt, "key": key}


@dataclass
class Broker:
    """One mosquitto process on a fixed loopback port; restartable on the same port."""

    exe: str
    folder: Path
    port: int
    extra_config: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config_file(self) -> Path:
        return self.folder / "mosquitto.conf"

    def write_config(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # persistence off: after a restart, a retained birth can only be a republished one.
        self.config_file.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            "max_keepalive 60\n"
            # As the shipped runtime/mqtt/examples/mosquitto.conf: no Nagle delay on answers.
            "set_tcp_nodelay true\n"
            + ("user root\n" if os.geteuid() == 0 else "")
            + self.extra_config
            # As root mosquitto would switch to user "mosquitto", who cannot read our 0600 files.
        )

    def start(self, timeout: float = 10.0) -> None:
        self.write_config()
        log = (self.folder / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.config_file)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = (self.folder / "mosquitto.log").read_text(errors="replace")
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{text}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


def plain_broker(exe: str, folder: Path) -> Broker:
    return Broker(exe, folder, free_port(), "allow_anonymous true\n")


def secure_broker(
    exe: str, passwd_exe: str, folder: Path, users: dict[str, str]
) -> tuple[Broker, dict[str, Path]]:
    """A broker that wants a username/password and speaks only TLS."""
    folder.mkdir(parents=True, exist_ok=True)
    certs = make_certificates(folder / "certs")
    pwfile = folder / "passwords"
    for i, (user, password) in enumerate(users.items()):
        flags = ["-c"] if i == 0 else []
        subprocess.run(
            [passwd_exe, *flags, "-b", str(pwfile), user, password], check=True, capture_output=True
        )
    pwfile.chmod(0o600)
    extra = (
        "allow_anonymous false\n"
        f"password_file {pwfile}\n"
        f"cafile {certs['ca']}\n"
        f"certfile {certs['cert']}\n"
        f"keyfile {certs['key']}\n"
        "require_certificate false\n"
    )
    return Broker(exe, folder, free_port(), extra), certs
