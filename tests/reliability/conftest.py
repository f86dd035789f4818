"""The reliability matrix's collector: every scenario (one test) records its outcome and figures;
at session end they are written to test-artifacts/reliability.json and, when the whole matrix ran,
rendered into docs/reliability.md by scripts/reliability_report.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from responsys_assets.settings import PROJECT_ROOT

HERE = Path(__file__).parent
ARTIFACT = PROJECT_ROOT / "test-artifacts" / "reliability.json"
REPORT = PROJECT_ROOT / "docs" / "reliability.md"
SCRIPT = PROJECT_ROOT / "scripts" / "reliability_report.py"

_outcomes = pytest.StashKey[list]()
_partial = pytest.StashKey[bool]()
_report = pytest.StashKey[dict]()


@dataclass
class Scenario:
    """One scenario's outcome. Figures stay None where a scenario does not measure them."""

    name: str
    category: str
    status: str = "not run"  # passed | failed | known bug (xfail) | skipped
    passed: bool = False
    events_lost: int | None = None
    events_duplicated: int | None = None
    triggers_twice: int | None = None
    opted_out_contacted: int | None = None
    seconds: float = 0.0
    note: str = ""
    started: float = field(default_factory=time.monotonic, repr=False)

    def figures(
        self,
        *,
        lost: int | None = None,
        duplicated: int | None = None,
        twice: int | None = None,
        opted_out: int | None = None,
    ) -> None:
        """Record measured figures (call before asserting, so failures are counted too)."""
        if lost is not None:
            self.events_lost = lost
        if duplicated is not None:
            self.events_duplicated = duplicated
        if twice is not None:
            self.triggers_twice = twice
        if opted_out is not None:
            self.opted_out_contacted = opted_out


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_outcomes] = []
    config.stash[_partial] = False


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.path)).is_relative_to(HERE):
            item.config.stash[_partial] = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    item.stash.setdefault(_report, {})[report.when] = report


@pytest.fixture(autouse=True)
def scenario(request: pytest.FixtureRequest):
    """The current scenario; the test sets `note` and calls `figures(...)`."""
    item = request.node
    category = getattr(request.module, "CATEGORY", request.module.__name__.rsplit(".", 1)[-1])
    current = Scenario(name=item.name, category=category)
    yield current
    reports = item.stash.get(_report, {})
    call = reports.get("call")
    setup = reports.get("setup")
    if call is None:
        current.status = "skipped" if setup is not None and setup.skipped else "failed"
    elif hasattr(call, "wasxfail"):
        current.status = "known bug (xfail)" if call.skipped else "failed (xpass)"
        current.note = current.note or str(call.wasxfail)
    elif call.skipped:
        current.status = "skipped"
        current.note = current.note or str(call.longrepr[-1] if call.longrepr else "")
    else:
        current.status = "passed" if call.passed else "failed"
    current.passed = current.status == "passed"
    current.seconds = round(time.monotonic() - current.started, 2)
    item.config.stash[_outcomes].append(current)


def pytest_sessionfinish(session: pytest.Session) -> None:
    outcomes: list[Scenario] = session.config.stash.get(_outcomes, [])
    if not outcomes:
        return
    ran_modules = {
        Path(str(i.path)).name for i in session.items if Path(str(i.path)).parent == HERE
    }
    all_modules = {p.name for p in HERE.glob("test_*.py")}
    complete = ran_modules == all_modules and not session.config.stash.get(_partial, False)
    data = {
        "complete": complete,
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "python": sys.version.split()[0],
        "scenarios": [{k: v for k, v in asdict(s).items() if k != "started"} for s in outcomes],
    }
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(data, indent=2))
    if complete:
        subprocess.run(
            [sys.executable, str(SCRIPT), str(ARTIFACT), str(REPORT)],
            check=False,
            timeout=60,
        )
