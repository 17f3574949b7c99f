"""The dashboard's files and routes without a browser: what ships, with which headers, and
that no value can be inserted as HTML (the browser tests check the page itself)."""

import fnmatch
import re
import tomllib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from jobcast import dashboard
from jobcast.settings import Settings

STATIC = resources.files("jobcast.dashboard").joinpath("static")


def files(suffix: str) -> dict[str, str]:
    return {f.name: f.read_text() for f in STATIC.iterdir() if f.name.endswith(suffix)}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(dashboard.router(["steady", "default_fn"]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
        yield client


async def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for name in ["app.js", "style.css", "favicon.svg", *files(".js")]:
        answer = await client.get(f"/dashboard/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["x-content-type-options"] == "nosniff"
        policy = answer.headers["content-security-policy"]
        assert policy.startswith("default-src 'self'")
        assert "unsafe" not in policy
    script = await client.get("/dashboard/app.js")
    assert script.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "name", ["nope.js", "..%2Froutes.py", "__init__.py", "..%2F..%2Fsettings.py"]
)
async def test_nothing_but_the_page_files_is_served(client, name):
    assert (await client.get(f"/dashboard/{name}")).status_code == 404


async def test_pipelines_lists_the_names_sorted(client):
    assert (await client.get("/pipelines")).json() == ["default_fn", "steady"]


def test_the_gateway_offers_the_pipelines_of_its_own_setting():
    settings = Settings(pipelines=["tests.e2e.dashboard_pipelines"])
    assert dashboard.pipeline_names(settings) == [
        "default_fn",
        "fails",
        "hostile",
        "reports",
        "steady",
    ]
    assert dashboard.pipeline_names(Settings()) == ["default_fn"]


def test_a_gateway_that_cannot_import_the_pipelines_still_lists_the_built_in_ones(caplog):
    settings = Settings(pipelines=["no_such_module_of_pipelines"])
    assert dashboard.pipeline_names(settings) == ["default_fn"]
    assert "no_such_module_of_pipelines" in caplog.text


def test_the_page_has_no_inline_script_or_style_and_loads_only_its_own_files():
    html = files(".html")["index.html"]
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert " style=" not in html
    assert "<style" not in html
    assert re.findall(r"\bon[a-z]+=", html) == []
    for url in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert url.startswith("/dashboard/"), url
        assert url.removeprefix("/dashboard/") in {f.name for f in STATIC.iterdir()}


def test_the_scripts_never_insert_html():
    for name, source in files(".js").items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"
        imports = re.findall(r'from "([^"]+)"', source)
        assert all(path.startswith("./") for path in imports), (name, imports)


def test_every_file_of_the_page_ships_in_the_package():
    # NOTE: an editable install reads the source tree; a wheel (the Dockerfile's pip install)
    # carries only what package-data names.
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["jobcast.dashboard"]
    for name in (f.name for f in STATIC.iterdir()):
        assert any(fnmatch.fnmatch(f"static/{name}", pattern) for pattern in patterns), name
