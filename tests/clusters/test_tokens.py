"""Ray's token file on this machine: created 0600 by us before Ray can write it, tightened when Ray left it open,
and a client without a token told where it was looked for (no cluster needed)."""

import stat

import pytest

from clusters import jobs, tokens
from clusters.errors import ClusterError


@pytest.fixture
def home(monkeypatch, tmp_path):
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_token_is_created_private_in_a_private_directory(home):
    path = tokens.ensure_private_token()
    assert path == home / ".ray" / "auth_token"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    token = path.read_text()
    assert len(token) == 64 and set(token) <= set("0123456789abcdef")  # 32 random bytes as hex
    assert tokens.ensure_private_token() == path and path.read_text() == token  # an existing token is kept
    assert jobs.auth_token() == token


def test_a_token_file_left_world_readable_is_tightened_and_kept(home):
    path = home / ".ray" / "auth_token"
    path.parent.mkdir(parents=True)
    path.write_text("abc123\n")
    path.chmod(0o644)
    assert tokens.ensure_private_token(create=False) == path
    assert _mode(path) == 0o600 and path.read_text() == "abc123\n"


def test_joining_a_cluster_creates_no_token(home):
    assert tokens.ensure_private_token(create=False) == home / ".ray" / "auth_token"
    assert not (home / ".ray").exists()


def test_the_token_path_of_the_environment_is_the_file_made_private(home, tmp_path, monkeypatch):
    custom = tmp_path / "secrets" / "ray-token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(custom))
    assert tokens.ensure_private_token() == custom and _mode(custom) == 0o600
    assert not (home / ".ray").exists()
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert tokens.ensure_private_token() is None  # Ray reads no file then


def test_a_token_path_that_is_a_directory_is_refused(home, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path))
    with pytest.raises(ClusterError, match=f"^{tmp_path}: the Ray token path is not a regular file$"):
        tokens.ensure_private_token()


def test_where_looked_names_each_place_in_rays_order(home, tmp_path, monkeypatch):
    assert tokens.where_looked() == (
        f"$RAY_AUTH_TOKEN (unset), $RAY_AUTH_TOKEN_PATH (unset), {home / '.ray' / 'auth_token'} (no such file)"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(empty))
    assert tokens.read_token() is None
    assert tokens.where_looked() == f"$RAY_AUTH_TOKEN (unset), $RAY_AUTH_TOKEN_PATH={empty} (empty)"
