"""The local multi-node cluster (a head and two worker `ray start` nodes on 127.0.0.1) and the Jobs API client on it."""

import socket
import urllib.error
from pathlib import Path

import pytest

from clusters import jobs
from clusters.errors import ClusterError
from clusters.local import cluster as local
from sweep.workflows import submission

from helpers.clusters import cli, dashboard_get, nodes, start_cluster, wait_for

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("local-cluster")
    started = start_cluster(state_dir, workers=2, head_cpus=0, worker_cpus=1)
    yield started
    local.down(state_dir)


def test_head_and_two_workers_run_with_their_own_cpus_labels_and_resources(cluster):
    found = nodes(cluster)
    assert set(found) == {"head", "worker-1", "worker-2"}
    assert all(node["state"] == "ALIVE" for node in found.values())
    assert found["head"]["is_head_node"] and not found["worker-1"]["is_head_node"]
    assert found["head"]["resources_total"].get("CPU", 0) == 0
    for name in ("worker-1", "worker-2"):
        assert found[name]["resources_total"]["CPU"] == 1
        assert found[name]["resources_total"][f"node-{name}"] == 1
        assert found[name]["labels"][local.NODE_LABEL] == name
    assert [node.name for node in local.load(cluster.state_dir).nodes] == ["head", "worker-1", "worker-2"]


def test_a_second_cluster_in_the_same_state_dir_is_refused(cluster):
    with pytest.raises(ClusterError, match="already running"):
        local.up(1, port=0, dashboard_port=0, state_dir=cluster.state_dir)


def test_jobs_api_listens_on_loopback_only_and_demands_the_token(cluster):
    assert isinstance(dashboard_get(cluster, "/api/jobs/"), list)
    with pytest.raises(urllib.error.HTTPError) as refused:
        dashboard_get(cluster, "/api/jobs/", token=False)
    assert refused.value.code == 401
    node_ip = nodes(cluster)["head"]["node_ip"]
    port = int(cluster.dashboard_url.rsplit(":", 1)[1])
    if node_ip != "127.0.0.1":  # the machine's own address: nothing listens there
        with pytest.raises(OSError):
            socket.create_connection((node_ip, port), timeout=5).close()


def test_a_job_runs_in_the_shipped_project_and_reads_its_spec(cluster, tmp_path):
    spec = tmp_path / "outside the project.yaml"
    spec.write_text("name: shipped\n")
    probe = (
        "import os, sweep, models, data, evaluation; "
        "print('ok', all(os.path.isfile(p + '/__init__.py') for p in ('sweep', 'models', 'data', 'evaluation'))); "
        "print('excluded', any(os.path.exists(p) for p in ('.venv', '.git', 'experiments'))); "
        f"print('spec', open('{submission.SPEC_NAME}').read().strip()); "
        "print('cwd', os.getcwd())"
    )
    job_id = jobs.submit(f'python -c "{probe}"', cluster.dashboard_url, extra_files={submission.SPEC_NAME: spec})
    assert jobs.wait(job_id, cluster.dashboard_url, timeout=240) == "SUCCEEDED"
    output = jobs.logs(job_id, cluster.dashboard_url)
    assert "ok True" in output and "excluded False" in output and "spec name: shipped" in output
    cwd = next(line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("cwd "))
    assert "working_dir_files" in cwd and not cwd.startswith(str(jobs.project_root()))


def test_cli_reports_a_failed_job_and_exits_non_zero(cluster, capsys):
    job_id = jobs.submit("python -c \"import sys; print('boom'); sys.exit(3)\"", cluster.dashboard_url)
    code, _ = cli(["sweep", "logs", job_id, "--follow", "--address", cluster.dashboard_url])
    assert code == 1
    captured = capsys.readouterr()
    assert "boom" in captured.out and f"job {job_id}: FAILED" in captured.err
    assert cli(["sweep", "status", job_id, "--address", cluster.dashboard_url])[0] == 0
    assert capsys.readouterr().out.startswith("FAILED")
    assert cli(["sweep", "stop", job_id, "--address", cluster.dashboard_url])[0] == 0
    assert "had already ended (FAILED)" in capsys.readouterr().out


def test_cli_stops_a_running_job(cluster, capsys):
    job_id = jobs.submit(
        "python -c \"import time; print('started', flush=True); time.sleep(300)\"", cluster.dashboard_url
    )
    wait_for(lambda: "started" in jobs.logs(job_id, cluster.dashboard_url), 180, "the job to start")
    assert cli(["sweep", "stop", job_id, "--address", cluster.dashboard_url])[0] == 0
    assert f"stop requested for {job_id}" in capsys.readouterr().out
    assert jobs.wait(job_id, cluster.dashboard_url, timeout=60) == "STOPPED"


def test_an_unknown_job_is_one_clear_error(cluster):
    with pytest.raises(ClusterError, match="no job 'no-such-job' on this cluster"):
        jobs.status("no-such-job", cluster.dashboard_url)


def test_killing_one_workers_raylet_leaves_the_other_nodes_running(cluster):
    worker_1 = cluster.node("worker-1")
    local.kill_raylet(cluster, "worker-1")
    wait_for(lambda: not local._group_members(worker_1.pid), 60, "worker-1's `ray start` to end its node")
    wait_for(lambda: nodes(cluster)["worker-1"]["state"] == "DEAD", 120, "the GCS to mark worker-1 dead")
    found = nodes(cluster)
    assert found["head"]["state"] == "ALIVE" and found["worker-2"]["state"] == "ALIVE"
    assert all(local._group_members(cluster.node(name).pid) for name in ("head", "worker-2"))
    job_id = jobs.submit("python -c \"print('still', 'works')\"", cluster.dashboard_url)
    assert jobs.wait(job_id, cluster.dashboard_url, timeout=240) == "SUCCEEDED"
    assert "still works" in jobs.logs(job_id, cluster.dashboard_url)


def test_stopping_one_node_leaves_the_head(cluster):
    local.stop_node(cluster, "worker-2")
    assert not local._group_members(cluster.node("worker-2").pid)
    wait_for(lambda: nodes(cluster)["worker-2"]["state"] == "DEAD", 60, "the GCS to mark worker-2 dead")
    assert nodes(cluster)["head"]["state"] == "ALIVE"


def test_cluster_down_ends_every_process_of_the_cluster(cluster, capsys):
    assert cli(["cluster", "down", "--state-dir", cluster.state_dir])[0] == 0
    assert "stopped head, worker-1, worker-2" in capsys.readouterr().out
    assert local._processes_mentioning(cluster.temp_dir) == []
    assert not any(local._group_members(node.pid) for node in cluster.nodes)
    assert not Path(cluster.temp_dir).exists() and not cluster.state_path.exists()
    assert cli(["cluster", "down", "--state-dir", cluster.state_dir])[0] == 0
    assert "no local cluster recorded" in capsys.readouterr().out
