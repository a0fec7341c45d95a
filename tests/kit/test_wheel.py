"""The macros work from a built wheel, not only from the editable checkout.

Builds the wheel (templates are force-included as ``flask_toucan/templates``),
installs it with ``--no-deps`` into a fresh venv that sees this venv's
site-packages (so no download), and renders the macros there from a directory
where the repo is not importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import flask_toucan, pathlib
    from flask import Flask, render_template_string
    from flask_toucan import Toucan
    import sys
    assert flask_toucan.__file__.startswith(sys.prefix), flask_toucan.__file__  # the wheel's copy
    pkg = pathlib.Path(flask_toucan.__file__).parent
    assert (pkg / "templates/toucan/components.html").is_file()
    assert (pkg / "static/toucan-refresh.js").is_file()
    app = Flask("wheel-host")
    app.config.update(SECRET_KEY="s" * 32, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY="k" * 20)
    Toucan(app)
    with app.test_request_context("/"):
        html = render_template_string(
            '{% from "toucan/components.html" import toucan_scripts, tc_dashboard, tc_ai_assistant %}'
            '{{ toucan_scripts() }}{{ tc_dashboard("d") }}{{ tc_ai_assistant() }}'
        )
    assert 'src="/toucan/static/toucan-refresh.js"' in html, html
    assert html.count('data-toucan-placeholder="logged_out"') == 2, html
    print(app.test_client().get("/toucan/static/toucan-refresh.js").status_code)
    """
)


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def test_macros_render_from_the_installed_wheel(tmp_path):
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    try:  # offline when the backend is already here; else build fetches it (isolated build)
        import hatchling  # noqa: F401

        isolation = ["--no-isolation"]
    except ImportError:
        isolation = []
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    )
    wheel = next(dist.glob("flask_toucan-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # See this venv's dependencies (flask, pyjwt, ...) without installing them again,
    # but not the editable flask_toucan: the wheel's copy must win.
    deps = (
        Path(sys.prefix)
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    (_site_packages(python) / "host-deps.pth").write_text(f"{deps}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    out = subprocess.run(
        [str(python), "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "200"
