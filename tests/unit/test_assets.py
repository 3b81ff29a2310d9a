import zipfile

import pytest

from delbind import assets
from delbind.assets import MOLECULEACE, Asset, fetch_wheel, read_member
from delbind.errors import AssetError


def _fake_wheel(path, member="pkg/data.txt", text=b"hello"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, text)
    return path


def test_local_override_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    fake = _fake_wheel(tmp_path / "MoleculeACE-3.0.0-py3-none-any.whl")
    monkeypatch.setenv(MOLECULEACE.env_var, str(fake))
    with pytest.raises(AssetError, match="sha256 .* != pinned c2028c9a"):
        fetch_wheel(MOLECULEACE)


def test_missing_override_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(MOLECULEACE.env_var, str(tmp_path / "nope.whl"))
    with pytest.raises(AssetError, match="DELBIND_MOLECULEACE_WHEEL=.* does not exist"):
        fetch_wheel(MOLECULEACE)


def test_cached_wheel_is_verified_and_read_without_pip(tmp_path, monkeypatch):
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path))
    wheel = _fake_wheel(tmp_path / "fake.whl")
    asset = Asset("fakepkg", "1.0", assets.sha256_of(wheel), "MIT")
    (tmp_path / "wheels").mkdir()
    wheel.rename(tmp_path / "wheels" / asset.wheel_name)
    monkeypatch.setattr(assets, "_pip_download", lambda *a: pytest.fail("pip must not run for a cached wheel"))
    assert read_member(asset, "pkg/data.txt") == b"hello"
    with pytest.raises(AssetError, match="has no member"):
        read_member(asset, "pkg/missing.txt")


def test_damaged_cached_wheel_is_discarded_and_fetched_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path))
    wheel = _fake_wheel(tmp_path / "fake.whl")
    asset = Asset("fakepkg", "1.0", assets.sha256_of(wheel), "MIT")
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / asset.wheel_name).write_bytes(wheel.read_bytes()[:50])  # a truncated copy
    monkeypatch.setattr(
        assets, "_pip_download", lambda a, dest: wheel.rename(dest / a.wheel_name) or dest / a.wheel_name
    )
    assert read_member(asset, "pkg/data.txt") == b"hello"
    assert "does not match its pinned sha256: discarded, fetching it again" in caplog.text
    assert assets.sha256_of(tmp_path / "wheels" / asset.wheel_name) == asset.sha256


def test_download_with_wrong_hash_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "_pip_download", lambda asset, dest: _fake_wheel(dest / asset.wheel_name))
    with pytest.raises(AssetError, match="sha256"):
        fetch_wheel(MOLECULEACE)
    assert not list((tmp_path / "cache" / "wheels").glob("*.whl"))


def test_no_network_is_one_clear_error(tmp_path, monkeypatch):
    """The real pip call with no index reachable: fails fast and says how to supply the wheel."""
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))  # an empty folder instead of any index
    with pytest.raises(AssetError) as err:
        fetch_wheel(MOLECULEACE)
    msg = str(err.value)
    assert "could not fetch MoleculeACE==3.0.0" in msg
    assert "pip download MoleculeACE==3.0.0 --no-deps" in msg and "DELBIND_MOLECULEACE_WHEEL" in msg
    assert "\n" not in msg
