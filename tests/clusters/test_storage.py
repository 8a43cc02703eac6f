"""A multi-node sweep refuses storage only one node can reach; network filesystems and one-host clusters pass."""

import socket

import pytest

from clusters import storage
from clusters.errors import ClusterError
from clusters.storage import check_storage_reachable, filesystem_type

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs {root}/tmpfs tmpfs rw 0 0
fs-1.efs.us-west-2.amazonaws.com:/ {root}/shared nfs4 rw,vers=4.1 0 0
bucket {root}/gcs fuse.gcsfuse rw 0 0
//server/share {root}/smb\\040share cifs rw 0 0
/dev/vdb {root}/shared/local ext4 rw 0 0
"""


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A fake /proc/mounts whose mount points are real directories under tmp_path; returns tmp_path."""
    for name in ("tmpfs", "shared/local", "gcs", "smb share", "home/user"):
        (tmp_path / name).mkdir(parents=True)
    mounts_file = tmp_path / "mounts"
    mounts_file.write_text(MOUNTS.format(root=tmp_path))
    monkeypatch.setattr(storage, "MOUNTS_FILE", str(mounts_file))
    return tmp_path


def _node(host: str, address: str, alive: bool = True) -> dict:
    return {"Alive": alive, "NodeManagerHostname": host, "NodeManagerAddress": address}


REMOTE_NODES = [_node("head", "10.0.0.1"), _node("gpu-1", "10.0.0.2")]


def test_filesystem_type_takes_the_longest_mount_prefix_of_the_nearest_existing_parent(root):
    assert filesystem_type(root / "shared/experiments/not-yet") == "nfs4"
    assert filesystem_type(root / "shared/local/x") == "ext4"
    assert filesystem_type(root / "gcs/runs") == "fuse.gcsfuse"
    assert filesystem_type(root / "smb share/runs") == "cifs"  # \\040 in /proc/mounts is a space
    assert filesystem_type(root / "tmpfs/anything") == "tmpfs"
    assert filesystem_type(root / "home/user/experiments") == "ext4"


@pytest.mark.parametrize("path", ["shared/experiments", "gcs/experiments", "smb share/e"])
def test_network_filesystems_pass_on_a_multi_machine_cluster(path, root):
    check_storage_reachable(str(root / path), REMOTE_NODES)


@pytest.mark.parametrize("path", ["{root}/home/user/experiments", "{root}/shared/local/experiments"])
def test_a_node_local_path_on_a_multi_machine_cluster_fails_naming_the_key_and_the_hosts(path, root):
    with pytest.raises(ClusterError) as error:
        check_storage_reachable(path.format(root=root), REMOTE_NODES)
    message = str(error.value)
    assert message.startswith("storage_path: ") and "2 alive nodes on 2 machines (gpu-1, head)" in message
    assert "ext4" in message and "\n" not in message


def test_a_local_path_is_fine_with_one_alive_node(root):
    local = str(root / "home/user/experiments")
    check_storage_reachable(local, [_node("head", "10.0.0.1"), _node("gpu-1", "10.0.0.2", alive=False)])
    check_storage_reachable(local, [])


def test_nodes_that_all_run_on_this_machine_share_its_disk(root):
    here = socket.gethostname()
    same_machine = [_node(here, "127.0.0.1"), _node(here, "127.0.0.1"), _node(here, "127.0.0.1")]
    check_storage_reachable(str(root / "home/user/experiments"), same_machine)


def test_a_node_with_this_hostname_but_another_machines_address_is_not_this_machine(root):
    here = socket.gethostname()
    impostor = [_node(here, "127.0.0.1"), _node(here, "203.0.113.7")]  # TEST-NET-3: never an address of this host
    with pytest.raises(ClusterError, match="node-local"):
        check_storage_reachable(str(root / "home/user/experiments"), impostor)


def test_a_node_elsewhere_with_a_loopback_address_is_not_this_machine(root):
    elsewhere = [_node(socket.gethostname(), "127.0.0.1"), _node("other-host", "127.0.0.1")]
    with pytest.raises(ClusterError):
        check_storage_reachable(str(root / "home/user/experiments"), elsewhere)
