"""ruff and mypy stay clean (STYLE.md): run here so CI enforces them with the tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tool,args", [("ruff", ["check", "src", "tests", "scripts", "benchmarks"]),
                                       ("mypy", ["src", "scripts", "benchmarks"])])
def test_clean(tool: str, args: list[str]) -> None:
    if shutil.which(tool, path=str(Path(sys.executable).parent)) is None:
        pytest.fail(f"{tool} is not installed; pip install -e '.[test]'")
    result = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_import_time_work() -> None:
    """Importing the package and its CLI loads no torch and creates nothing."""
    code = "import sys, artstyle, artstyle.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if "pytest" in line]
    assert len(command) == 1 and f"\n{command[0]}\n" in readme


def test_inference_stays_light() -> None:
    """stylize.py never pulls in the training package: the loss network, the losses, the data pipeline."""
    heavy = ("vgg", "losses", "data", "targets", "loop")
    code = (f"import sys, artstyle.stylize; print(sorted(m for m in {heavy} "
            "if f'artstyle.training.{m}' in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
