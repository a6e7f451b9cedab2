"""Starting craftlink (or a peer) as a real process on loopback, pinned to a CPU, and stopping it.

Used by the benchmark runner and by the fault tests (kill -9, database outage, two instances).
Every wait is bounded; every process started here is stopped by the same object.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """Prefix ``taskset -c CPU`` when asked and available (it is on Debian: util-linux)."""
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def write_config(path: Path, *, db_url: str, port: int, wecom_api: str, media_dir: Path,
                 instance: str = "", extra: str = "") -> Path:
    from benchmarks.wecom_traffic import AES_KEY, AGENT_ID, CORP_ID, TOKEN

    path.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
instance_name = "{instance or f'127.0.0.1:{port}'}"
max_body_bytes = 65536

[database]
url = "{db_url}"
pool_size = 10

[bot]
media_dir = "{media_dir}"
rate_limit_per_min = 1000

[console]
secret_key = "bench-secret-key-0123456789abcdef"

[wecom]
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
secret = "corpsecret"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base = "{wecom_api}"
timestamp_window_s = 300
{extra}
""", encoding="utf-8")
    return path


class Proc:
    """One server process; ``log`` collects its stdout and stderr."""

    def __init__(self, cmd: list[str], *, port: int, log: Path, cpu: int | None = None,
                 env: dict[str, str] | None = None, ready_path: str = "/healthz") -> None:
        self.cmd = pinned(cmd, cpu)
        self.port = port
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.ready_path = ready_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> Proc:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[0]} exited with {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=1) as r:
                    if r.status < 500:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.cmd} not ready within {timeout_s}s; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 15.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()


def craftlink(config: Path, *, port: int, log: Path, cpu: int | None = None, role: str = "all",
              nice: int = 0, env: dict[str, str] | None = None) -> Proc:
    """``craftlink serve``; ``role`` splits intake from handling, ``nice`` lowers the process's CPU priority,
    ``env`` adds variables (e.g. ``CRAFTLINK_TEST_CLOCK_FILE``, handlers/clock.py::FileClock)."""
    cmd = [str(BIN / "craftlink"), "--config", str(config), "serve", "--role", role]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    return Proc(cmd, port=port, log=log, cpu=cpu, env=env)


def upgrade(config: Path) -> None:
    subprocess.run([str(BIN / "craftlink"), "--config", str(config), "db", "upgrade"], check=True,
                   cwd=ROOT, capture_output=True, timeout=120)
