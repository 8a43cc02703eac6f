"""The experiment lease between real processes on one machine: a second driver refuses naming the first, a stale
lease (frozen holder, dead holder) is taken over, the frozen holder stops when it wakes, racers for one stale lease
produce one winner."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep.storage.lease import LEASE_LOST_EXIT, ExperimentLease, LeaseHeldError

from helpers.clusters import wait_for

HOLDER = """
import sys, time
from sweep.storage.lease import ExperimentLease
lease = ExperimentLease(sys.argv[1], heartbeat_s=0.2, stale_after_s=float(sys.argv[2]))
lease.acquire(wait_s=float(sys.argv[3]))
print("holding", flush=True)
time.sleep(float(sys.argv[4]))
lease.release()
print("released", flush=True)
"""


def start_holder(root: Path, stale_after: float = 2.0, wait: float = 0.0, hold: float = 120.0) -> subprocess.Popen:
    """A process that takes the lease of `root` and holds it for `hold` seconds; returns once it holds it."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), str(stale_after), str(wait), str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "holding", process.stderr.read()
    return process


@pytest.fixture
def holders():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_second_driver_refuses_naming_the_first_and_gets_the_lease_once_it_is_released(tmp_path, holders):
    first = start_holder(tmp_path, hold=1.5)
    holders.append(first)
    with pytest.raises(LeaseHeldError) as refused:
        ExperimentLease(tmp_path, stale_after_s=60).acquire()
    message = str(refused.value)
    assert f"pid {first.pid} on host {socket.gethostname()}" in message and "\n" not in message
    assert "60 s" in message
    # Waiting: the first releases after 1.5 s and the second takes the lease then, long before it could go stale.
    started = time.monotonic()
    second = ExperimentLease(tmp_path, heartbeat_s=0.2, stale_after_s=60).acquire(wait_s=30)
    assert time.monotonic() - started < 30
    assert first.wait(10) == 0 and first.stdout.readline().strip() == "released"
    holder = second.holder()
    assert holder.token == second.token and holder.pid == os.getpid()
    second.release()
    assert second.holder() is None
    assert not (tmp_path / "lease").exists()  # nothing left behind


def test_a_frozen_holder_is_taken_over_after_the_timeout_and_stops_when_it_wakes(tmp_path, holders):
    frozen = start_holder(tmp_path, stale_after=2.0)
    holders.append(frozen)
    os.kill(frozen.pid, signal.SIGSTOP)  # alive, but its heartbeat stops
    try:
        with pytest.raises(LeaseHeldError):  # not stale yet
            ExperimentLease(tmp_path, stale_after_s=2.0).acquire()
        started = time.monotonic()
        taker = ExperimentLease(tmp_path, heartbeat_s=0.2, stale_after_s=2.0).acquire(wait_s=30)
        waited = time.monotonic() - started
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert 0.5 < waited < 10  # taken over once its last heartbeat was 2 s old, not before
    # The woken holder finds driver.json naming another driver at its next beat and stops before writing more.
    assert frozen.wait(10) == LEASE_LOST_EXIT
    assert "lost its experiment lease" in frozen.stderr.read()
    assert taker.holder().token == taker.token
    assert json.loads((tmp_path / "lease" / "driver.json").read_text())["pid"] == os.getpid()  # the taker's record
    taker.release()


def test_the_lease_of_a_killed_driver_on_this_host_is_taken_over_at_once(tmp_path, holders):
    killed = start_holder(tmp_path, stale_after=600.0)
    holders.append(killed)
    killed.kill()
    killed.wait()
    started = time.monotonic()
    lease = ExperimentLease(tmp_path, stale_after_s=600.0).acquire()  # no wait: its pid is gone
    assert time.monotonic() - started < 5
    assert lease.holder().pid == os.getpid()
    lease.release()


RACER = """
import sys
from sweep.storage.lease import ExperimentLease, LeaseHeldError
try:
    ExperimentLease(sys.argv[1], heartbeat_s=0.2, stale_after_s=5.0).acquire()
    print("won", flush=True)
except LeaseHeldError as error:
    print("refused", flush=True)
sys.stdin.read()
"""


def test_drivers_racing_for_one_stale_lease_have_one_winner(tmp_path, holders):
    lease_dir = tmp_path / "lease"
    lease_dir.mkdir()
    stale = {"token": "0123", "owner": "x", "host": "gone-host", "pid": 1, "pid_start": "", "command": "negmargin"}
    (lease_dir / "driver.json").write_text(json.dumps(dict(stale, acquired=time.time() - 100)))
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    holders.extend(racers)
    outcomes = [racer.stdout.readline().strip() for racer in racers]
    assert sorted(outcomes) == ["refused", "refused", "refused", "won"]
    winner = racers[outcomes.index("won")]
    record = wait_for(lambda: json.loads((lease_dir / "driver.json").read_text()), 10, "the winner's record")
    assert record["pid"] == winner.pid
    assert json.loads((lease_dir / "takeover-0123").read_text())["pid"] == winner.pid  # one claim: the winner's
    for racer in racers:
        racer.stdin.close()
        racer.wait(10)
