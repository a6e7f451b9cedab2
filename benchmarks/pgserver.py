"""A PostgreSQL server of the test's own (scripts/pg.sh), which the test may stop and start again."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.serverproc import ROOT, pinned


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")):
        return str(cand)
    return None


def available() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


class OwnPostgres:
    def __init__(self, cpu: int | None = None) -> None:
        self.cpu = cpu  # pin the server (and its children) to this CPU, for benchmarks
        # Directly under /tmp: pytest's tmp folders are 0700 root, which the postgres user can't enter.
        self.base = Path(tempfile.mkdtemp(prefix="craftlink-pg-"))
        self.root = self.base / "pg"
        self.url = ""

    def _as_pg(self, *cmd: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)

    def start(self) -> str:
        out = subprocess.run(["bash", str(ROOT / "scripts/pg.sh"), "start", str(self.root)], check=True,
                             capture_output=True, text=True, timeout=120)
        self.url = out.stdout.strip()
        # pg.sh starts with fsync and synchronous_commit off (fast tests); an outage test needs the
        # durable settings, or commits acknowledged just before the crash are legitimately lost.
        self.pause(mode="fast")
        self.resume()
        return self.url

    def pause(self, mode: str = "immediate") -> None:
        """Stop the server, by default the hard way (as a crash or a network cut looks to clients)."""
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl
        subprocess.run(self._as_pg(pg_ctl, "-D", str(self.root / "data"), "-m", mode, "-w", "stop"),
                       check=True, capture_output=True, timeout=60)

    def resume(self) -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl
        port = (self.root / "port").read_text().strip()
        opts = f"-h 127.0.0.1 -p {port} -k {self.root / 'data'} -c fsync=on -c synchronous_commit=on -c max_connections=200"
        subprocess.run(pinned(self._as_pg(pg_ctl, "-D", str(self.root / "data"), "-l", str(self.root / "data/server.log"),
                                   "-w", "-t", "60", "-o", opts, "start"), self.cpu), check=True, capture_output=True, timeout=90)

    def stop(self) -> None:
        subprocess.run(["bash", str(ROOT / "scripts/pg.sh"), "stop", str(self.root)], capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)
