"""Throwaway servers for the tests (and the benchmarks): a PostgreSQL cluster and a Spark
Connect server, each started from what is installed on this machine, in a temp dir, on a
free loopback port, and stopped when the session ends.

`start_postgres()` runs initdb + pg_ctl (from /usr/lib/postgresql/*/bin or PATH) as an
unprivileged user when we are root (initdb refuses root). `start_spark_connect()` runs the
pyspark package's own `sbin/start-connect-server.sh --wait` with a Hive catalog on an
embedded Derby metastore and a warehouse in the temp dir. Both return None with the
reason when this machine cannot (no binaries, no Java): the caller skips, or fails under
CI=true. Polling for readiness has a deadline and checks that the process still lives.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@dataclass
class Server:
    """A started server: `url` to reach it, `stop()` to end it and remove its files."""

    url: str
    proc: subprocess.Popen | None
    home: Path
    stop_cmd: list[str] | None = None
    log: Path | None = None

    def stop(self) -> None:
        if self.stop_cmd:
            subprocess.run(self.stop_cmd, capture_output=True, timeout=60, check=False)
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # the script and its JVM
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        shutil.rmtree(self.home, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen | None, port: int, seconds: float, log: Path) -> str | None:
    """None once the port answers; the reason when the process died or time ran out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(port):
            return None
        if proc is not None and proc.poll() is not None:
            return f"the server exited ({proc.returncode}): {_tail(log)}"
        time.sleep(0.2)  # polling a port with a deadline, not synchronising on time
    return f"the server did not answer on port {port} within {seconds:.0f}s: {_tail(log)}"


def _tail(log: Path | None, lines: int = 15) -> str:
    if not log or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def start_postgres() -> tuple[Server | None, str]:
    """A fresh cluster with trust auth for user postgres: (server, admin DSN) or (None,
    why not)."""
    bindir = _pg_bin()
    if bindir is None:
        return None, "no PostgreSQL binaries (initdb) on this machine: apt-get install postgresql"
    home = Path(tempfile.mkdtemp(prefix="pipe-pg-"))
    data, log = home / "data", home / "server.log"
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as an unprivileged user
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None:
            return None, "running as root and no unprivileged user to run PostgreSQL as"
        pw = pwd.getpwnam(user)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", user, "--"]
    port = free_port()

    def pg(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*run_as, *args], capture_output=True, text=True, check=False, cwd=home, **kw
        )

    done = pg(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
        timeout=120,
    )
    if done.returncode:
        shutil.rmtree(home, ignore_errors=True)
        return None, f"initdb failed: {done.stderr.strip()[-500:]}"
    opts = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {home} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    done = pg(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(log),
        "-o",
        opts,
        "-w",
        "-t",
        "60",
        "start",
        timeout=90,
    )
    if done.returncode:
        text = done.stderr.strip() + _tail(log)
        shutil.rmtree(home, ignore_errors=True)
        return None, f"pg_ctl start failed: {text[-500:]}"
    stop = [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    return (
        Server(f"postgresql://postgres@127.0.0.1:{port}/postgres", None, home, stop, log),
        f"postgresql://postgres@127.0.0.1:{port}/postgres",
    )


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# ---------------------------------------------------------------- Spark Connect


def spark_home() -> Path | None:
    try:
        import pyspark
    except ImportError:
        return None
    return Path(pyspark.__file__).parent


def start_spark_connect(cores: int = 2, memory: str = "2g") -> tuple[Server | None, str]:
    """A local Spark Connect server from the installed pyspark: (server, 'sc://...') or
    (None, why not)."""
    home_spark = spark_home()
    if home_spark is None:
        return None, "pyspark is not installed: pip install -e '.[test]' (or 'pipe[spark]')"
    script = home_spark / "sbin" / "start-connect-server.sh"
    if not script.exists():
        return None, f"{script} is missing from the pyspark package"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return (
            None,
            "no Java runtime (java) for the Spark Connect server: apt-get install "
            "openjdk-17-jre-headless",
        )
    home = Path(tempfile.mkdtemp(prefix="pipe-spark-"))
    port = free_port()
    log = home / "server.log"
    metastore = f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
    confs = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": metastore,
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home}",
        "spark.driver.memory": memory,
        "spark.sql.shuffle.partitions": str(cores),
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
    }
    args = [str(script), "--wait", "--master", f"local[{cores}]"]
    for key, value in confs.items():
        args += ["--conf", f"{key}={value}"]
    env = {
        **os.environ,
        "SPARK_HOME": str(home_spark),
        "SPARK_LOG_DIR": str(home),
        "SPARK_PID_DIR": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(f"sc://127.0.0.1:{port}", proc, home, log=log)
    why = _wait_ready(proc, port, 180, log)
    if why:
        server.stop()
        return None, why
    return server, server.url
