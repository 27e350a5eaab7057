"""A throwaway PostgreSQL server for the tests: Debian's binaries, a fresh cluster, loopback only.

``make test`` installs the ``postgresql`` package (``make system-deps``); the server is started
once per test session in a temporary folder (``initdb`` + ``pg_ctl``, trust auth on 127.0.0.1, a free
port) and stopped at the end.  Set ``CHURNGUARD_TEST_PG_URL=postgresql://…`` to use a server of
your own instead (each test still gets a database of its own).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, or ``None``."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in ``folder``; :meth:`new_database` gives each test its own database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql: run `make system-deps`")
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        self.data = folder / "data"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True)

    def start(self) -> PgServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.folder / "server.log"), "-w", "start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        return create_database(self.admin_url)


def create_database(admin_url: str) -> str:
    """Create an empty database next to ``admin_url``'s and return its URL."""
    import psycopg

    name = "cg_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"
