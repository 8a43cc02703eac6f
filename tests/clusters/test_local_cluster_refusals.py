"""What `cluster up/down --local` refuses or does before starting any process (no cluster needed)."""

import socket

import pytest

from clusters.errors import ClusterError
from clusters.local import cluster as local


def test_a_port_in_use_is_refused_naming_the_option(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ClusterError, match=f"^--dashboard-port {port}: port in use on 127.0.0.1"):
            local.up(0, port=0, dashboard_port=port, state_dir=tmp_path)
    assert not (tmp_path / local.STATE_FILE).exists()


def test_token_authentication_cannot_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(ClusterError, match="^RAY_AUTH_MODE=disabled: this project keeps Ray token authentication on"):
        local.up(0, port=0, dashboard_port=0, state_dir=tmp_path)
    assert not (tmp_path / local.STATE_FILE).exists()


def test_every_node_runs_with_token_auth_and_no_inherited_cluster_address(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.1:8265")
    env = local.node_environment()
    assert env["RAY_AUTH_MODE"] == "token" and "RAY_ADDRESS" not in env


def test_down_without_a_cluster_does_nothing_and_load_names_the_state_file(tmp_path):
    assert local.down(tmp_path) == []
    with pytest.raises(ClusterError, match=f"^{tmp_path / local.STATE_FILE}: no local cluster recorded here"):
        local.load(tmp_path)
