"""The config file and its overrides: file < environment < arguments; written 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pincompute.sdk import Config, ConfigError, load_config, write_config
from pincompute.sdk.config import DEFAULT_SERVER, config_path


def test_precedence_file_then_environment_then_arguments(tmp_path: Path) -> None:
    path = write_config(Config(server="http://file:1/", token="from-file", project="p1"),
                        path=tmp_path / "c.yaml")
    env = {"PINCOMPUTE_CONFIG": str(path)}
    assert load_config(env=env) == Config("http://file:1", "from-file", "p1")
    env |= {"PINCOMPUTE_TOKEN": "from-env", "PINCOMPUTE_PROJECT": "p2"}
    assert load_config(env=env) == Config("http://file:1", "from-env", "p2")
    assert load_config(env=env, project="p3", server="http://arg:2") == \
        Config("http://arg:2", "from-env", "p3")


def test_no_file_means_the_local_default(tmp_path: Path) -> None:
    config = load_config(env={"HOME": str(tmp_path)})
    assert config == Config(DEFAULT_SERVER, None, None)
    assert config_path({"HOME": str(tmp_path)}) == tmp_path / ".pincompute" / "config.yaml"


def test_written_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = write_config(Config(token="secret"), path=tmp_path / "dir" / "config.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "secret" in path.read_text()


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "must be a mapping"),
    ("server: [x\n", "not valid YAML"),
    ("sever: http://x\n", "unknown key 'sever'"),
    ("token: {a: 1}\n", "token must be a string"),
])
def test_a_bad_file_is_named_with_what_is_wrong(tmp_path: Path, text: str,
                                                message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_config(env={"PINCOMPUTE_CONFIG": str(path)})
    assert str(path) in str(e.value)
