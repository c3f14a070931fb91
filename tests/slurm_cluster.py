"""A real single-node Slurm cluster for the tests: slurmctld and slurmd in the foreground, as root, with
their state, spool, logs and ports of their own (tests running beside another cluster do not collide).
SLURM_CONF points every client (sbatch, scontrol, the training process the tests start) at it. The
daemons are stopped by the PIDs recorded here. Debian's slurm-wlm; `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL = "apt-get update && apt-get install -y --no-install-recommends slurm-wlm munge"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(root: Path, host: str) -> str:
    mem_mb = min(4000, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20 // 2)
    return "\n".join(
        [
            "ClusterName=evalstest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "AuthType=auth/none",
            "CredType=cred/none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=3600",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            f"NodeName={host} CPUs=2 RealMemory={mem_mb} State=UNKNOWN",
            f"PartitionName=evals Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The cluster's slurm.conf; SLURM_CONF is set for the session."""
    missing = [t for t in ("slurmctld", "slurmd", "sbatch", "scontrol") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"Slurm is not installed ({', '.join(missing)} missing); as root: {INSTALL} (.ci/run does it)")
    if os.geteuid() != 0:
        pytest.fail("the Slurm tests start slurmctld and slurmd as root (SlurmUser=root); run them as root")
    root = tmp_path_factory.mktemp("slurm")
    for d in ("state", "spool"):
        (root / d).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(config(root, host))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = []
    for cmd in (["slurmctld", "-D", "-i"], ["slurmd", "-D"]):
        out = open(root / f"{cmd[0]}.out", "wb")  # closed in the finally below
        daemons.append((subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT), out))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        deadline = time.monotonic() + 60
        while True:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            if state.strip() == "idle":
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in daemons):
                logs = "".join((root / f).read_text(errors="replace")[-1500:] for f in ("slurmctld.out", "slurmd.out"))
                pytest.fail(f"the test Slurm cluster did not come up (sinfo: {state.strip()!r}): {logs}")
            time.sleep(0.5)
        yield conf
    finally:
        for proc, out in reversed(daemons):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            out.close()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def wait_for(condition, timeout: float, what: str, poll: float = 1.0):
    """Poll `condition()` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
