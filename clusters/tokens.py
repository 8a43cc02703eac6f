"""Ray's authentication token on this machine: where Ray looks for it, and keeping its file private (mode 0600).

Ray reads the token from $RAY_AUTH_TOKEN, else the file $RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token. When a local
cluster starts with token auth and finds none, Ray writes ~/.ray/auth_token itself with the process umask (0644 on
most machines: every local user could read it and run code on the cluster). So whenever negmargin starts or joins a
cluster it makes the file first (`ensure_private_token`), 0600 in a 0700 directory, or tightens the mode of the one
there. The token is Ray's own format: 32 random bytes as 64 hex digits.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from clusters.errors import ClusterError

TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
PRIVATE_MODE = 0o600


def default_token_file() -> Path:
    """~/.ray/auth_token, Ray's default token file."""
    return Path.home() / ".ray" / "auth_token"


def token_file() -> Path | None:
    """The file Ray reads the token from ($RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token); None when $RAY_AUTH_TOKEN
    is set (Ray then reads no file)."""
    if os.environ.get(TOKEN_ENV):
        return None
    configured = os.environ.get(TOKEN_PATH_ENV)
    return Path(configured).expanduser() if configured else default_token_file()


def where_looked() -> str:
    """The places searched for a token, in Ray's order, and what was found there (for a 'no token' message)."""
    configured = os.environ.get(TOKEN_PATH_ENV)
    path = Path(configured).expanduser() if configured else default_token_file()
    places = [f"${TOKEN_ENV} (unset)"]
    if not configured:
        places.append(f"${TOKEN_PATH_ENV} (unset)")
    label = f"${TOKEN_PATH_ENV}={configured}" if configured else str(path)
    places.append(f"{label} ({'empty' if path.is_file() else 'no such file'})")
    return ", ".join(places)


def read_token() -> str | None:
    """The token Ray would use on this machine, or None if there is none."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    path = token_file()
    if path is None or not path.is_file():
        return None
    try:
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a text file"
        raise ClusterError(f"{path}: cannot read the Ray token ({reason})") from None


def ensure_private_token(create: bool = True) -> Path | None:
    """Make sure Ray's token file is private: create it (0600, `create`) when there is no token, else tighten the
    mode of the file Ray reads to 0600. Return the file (None when the token comes from $RAY_AUTH_TOKEN)."""
    path = token_file()
    if path is None:
        return None
    if not path.exists():
        if not create:
            return path
        _create_token_file(path)
    if not path.is_file():
        raise ClusterError(f"{path}: the Ray token path is not a regular file")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        try:
            path.chmod(PRIVATE_MODE)
        except OSError as error:
            raise ClusterError(
                f"{path}: the Ray token file is readable by other users and its mode cannot be set to 0600 "
                f"({error.strerror})"
            ) from None
    return path


def _create_token_file(path: Path) -> None:
    """Write a fresh token to `path`, created 0600 (in a 0700 directory when the directory is new); a token written
    by a concurrent process first is kept."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return
    except OSError as error:
        raise ClusterError(f"{path}: cannot create the Ray token file ({error.strerror})") from None
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_hex(32))
