"""CI cannot silently skip the browser: without Chromium the browser tests fail under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import require_browser

ROOT = Path(__file__).resolve().parent.parent


def test_a_missing_browser_fails_the_browser_tests_under_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_browser(str(tmp_path / "chromium"), {"CI": "true"})


def test_a_missing_browser_skips_the_browser_tests_outside_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception):
        require_browser(str(tmp_path / "chromium"), {})


def test_an_installed_browser_runs_the_browser_tests_under_ci(tmp_path: Path) -> None:
    (tmp_path / "chromium").touch()
    require_browser(str(tmp_path / "chromium"), {"CI": "true"})


def test_ci_installs_debian_chromium_unless_usr_bin_chromium_exists() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "if [ ! -x /usr/bin/chromium ]; then" in script
    assert "apt-get install -y -qq chromium" in script
    assert 'export CI="${CI:-true}"' in script
