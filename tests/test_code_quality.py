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
    """Importing the package, its CLI, the engine choice and the OpenVINO engine loads no torch and creates
    nothing."""
    code = ("import sys, artstyle, artstyle.cli, artstyle.engines, artstyle.engines.openvino_engine, "
            "artstyle.model_folder; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if "pytest" in line]
    assert len(command) == 1 and f"\n{command[0]}\n" in readme


@pytest.mark.parametrize("module", ["artstyle.engines.torch_engine", "artstyle.engines.onnx_engine", "artstyle.sheet",
                                    "artstyle.video", "artstyle.export", "artstyle.web.app", "artstyle.demo"])
def test_inference_and_the_web_server_never_import_training(module: str) -> None:
    """The engines, the web server and the other inference modules never pull in the training package:
    the loss network, the losses, the data pipeline."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('artstyle.training')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
