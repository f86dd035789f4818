"""The docs stay true: every variable, config key, asset, job, schedule and sensor is documented,
every relative link resolves, and the YAML examples are valid configs.

When this fails after a code change, update the doc named in the message; when it fails after a
doc change, fix the doc.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from responsys_assets import config as config_module
from responsys_assets import settings as settings_module
from responsys_assets.config import ProjectConfig, parse_config
from responsys_assets.definitions import build_definitions
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.settings import CONNECTION_VARS, PROJECT_ROOT, load_settings
from responsys_assets.validation import validate_project

DOCS = PROJECT_ROOT / "docs"
MARKDOWN = [PROJECT_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
YAML_BLOCK = re.compile(r"^( *)```yaml\n(.*?)^\1```", re.S | re.M)


def _text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _config_models() -> list[type[BaseModel]]:
    return [
        value
        for value in vars(config_module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == config_module.__name__
    ]


def test_every_environment_variable_is_in_configuration_md():
    doc = _text("configuration.md")
    source = Path(settings_module.__file__).read_text(encoding="utf-8")
    names = set(CONNECTION_VARS) | set(re.findall(r'"(RESPONSYS_[A-Z_]+)"', source))
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"docs/configuration.md does not document {missing}"


def test_every_config_key_is_in_configuration_md():
    doc = _text("configuration.md")
    models = _config_models()
    assert ProjectConfig in models and len(models) >= 10
    missing = sorted(
        f"{model.__name__}.{field}"
        for model in models
        for field in model.model_fields
        if f"`{field}`" not in doc
    )
    assert not missing, f"docs/configuration.md does not document {missing}"


def test_every_asset_job_schedule_and_sensor_is_in_assets_md(tmp_path):
    settings = load_settings(
        {
            "RESPONSYS_SANDBOX_DIR": str(tmp_path / "sandbox"),
            "RESPONSYS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "RESPONSYS_LANDING_DIR": str(tmp_path / "landing"),
        }
    )
    defs = build_definitions(settings)
    doc = _text("assets.md")
    names = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    names |= {check.name for check in defs.resolve_asset_graph().asset_check_keys}
    names |= {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    names |= {schedule.name for schedule in defs.schedules}
    names |= {sensor.name for sensor in defs.sensors}
    assert len(names) > 20
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"docs/assets.md does not mention {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {_slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_relative_links_point_to_existing_files(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: broken links {broken}"


def _yaml_configs(name: str) -> list[tuple[int, str]]:
    """YAML blocks of a doc that are (parts of) a project config, with their position."""
    blocks = []
    for match in YAML_BLOCK.finditer(_text(name)):
        raw = yaml.safe_load(match.group(2))
        if isinstance(raw, dict) and set(raw) <= set(ProjectConfig.model_fields):
            blocks.append((match.start(), match.group(2)))
    return blocks


@pytest.mark.parametrize("name", ["configuration.md", "adding.md"])
def test_yaml_examples_are_valid_configs(name: str):
    blocks = _yaml_configs(name)
    assert blocks, f"no config example in {name}"
    kinds = set()
    for position, text in blocks:
        config = parse_config(text, source=f"docs/{name} at offset {position}")
        validate_project(config)
        for export in config.exports:
            handler_for(export)  # the per-type checks made when an export runs
            kinds.add(export.type)
    if name == "configuration.md":
        assert kinds == set(config_module.DEFAULT_CRON), "one example per export type"


def test_the_production_dagster_yaml_matches_dagster_schema():
    """deploy/dagster.yaml, which operating.md points to and tests/deploy runs as shipped."""
    from dagster._config import Shape, validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    assert "](../deploy/dagster.yaml)" in _text("operating.md")
    production = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    assert "postgres" in production["storage"]
    result = validate_config(Shape(dagster_instance_config_schema()), production)
    assert result.success, [error.message for error in result.errors or []]
    shipped = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    assert production["concurrency"]["pools"] == shipped["concurrency"]["pools"], (
        "keep pools in sync"
    )
