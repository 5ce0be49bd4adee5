"""Where the SDK finds its server, token and project: the config file and the environment.

``~/.pincompute/config.yaml`` holds three keys, ``server``, ``token`` and
``project`` (``pincompute up`` writes it for the local region, mode 0600 since
the token is a credential).  Each is overridden by ``PINCOMPUTE_SERVER``,
``PINCOMPUTE_TOKEN`` and ``PINCOMPUTE_PROJECT``, and those by what a caller
passes explicitly (the CLI's flags): :func:`load_config` resolves the three
layers in that order, file < environment < arguments.  ``PINCOMPUTE_CONFIG``
names another file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import PinComputeError

DEFAULT_SERVER = "http://127.0.0.1:8443"
ENV_PREFIX = "PINCOMPUTE_"
_KEYS = ("server", "token", "project")


class ConfigError(PinComputeError):
    """The config file cannot be read or is not a mapping of the known keys."""


@dataclass(frozen=True, slots=True)
class Config:
    server: str = DEFAULT_SERVER
    token: str | None = None
    project: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k in _KEYS if (v := getattr(self, k)) is not None}


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file: ``$PINCOMPUTE_CONFIG`` or ``~/.pincompute/config.yaml``."""
    env = os.environ if env is None else env
    if env.get("PINCOMPUTE_CONFIG"):
        return Path(env["PINCOMPUTE_CONFIG"]).expanduser()
    home = env.get("HOME")
    base = Path(home) if home else Path.home()
    return base / ".pincompute" / "config.yaml"


def read_config_file(path: Path) -> dict[str, str]:
    """The file's keys (an absent file is empty); :class:`ConfigError` names what is wrong."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must be a mapping with keys server, token, project")
    out: dict[str, str] = {}
    for key, value in data.items():
        if key not in _KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (known: server, token, project)")
        if value is not None:
            if not isinstance(value, str | int):
                raise ConfigError(f"{path}: {key} must be a string")
            out[str(key)] = str(value)
    return out


def load_config(*, path: Path | None = None, env: Mapping[str, str] | None = None,
                server: str | None = None, token: str | None = None,
                project: str | None = None) -> Config:
    """The effective config: the file, then the environment, then these arguments."""
    env = os.environ if env is None else env
    values: dict[str, str] = read_config_file(path or config_path(env))
    for key in _KEYS:
        if env.get(ENV_PREFIX + key.upper()):
            values[key] = env[ENV_PREFIX + key.upper()]
    for key, value in (("server", server), ("token", token), ("project", project)):
        if value:
            values[key] = value
    config = Config(**values)  # type: ignore[arg-type]
    return replace(config, server=config.server.rstrip("/"))


def write_config(config: Config, *, path: Path | None = None) -> Path:
    """Write ``config`` to ``path`` (default: :func:`config_path`), readable by its owner only.

    The file is created 0600 before anything is written to it (the token never
    sits in a readable file, even for an instant) and replaced atomically.
    """
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config.to_dict(), f, sort_keys=False)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
