"""Copy trained models into the package's shipped models, with their recorded paths made relative.

Usage: python scripts/ship_model.py runs/fast8/baroque-fast [more model folders ...]

Each model folder's model.safetensors and config.json go to src/artstyle/pretrained/<name>/ (its
config's name). The absolute paths training recorded (paintings folders, photo folders, a
teacher's folder) are rewritten relative to the repository root, so the shipped config says where
the data came from without naming this machine's folders.
"""

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "src" / "artstyle" / "pretrained"


def relative(path: str) -> str:
    """``path`` relative to the repository root (as ``../shared/...`` for the shared data beside it)."""
    return os.path.relpath(path, ROOT) if os.path.isabs(path) else path


def ship(folder: Path) -> Path:
    config = json.loads((folder / "config.json").read_text())
    trained = config.get("trained") or {}
    if trained.get("photos_folder"):
        trained["photos_folder"] = relative(trained["photos_folder"])
    trained["photo_sources"] = [relative(p) for p in trained.get("photo_sources", [])]
    for record in trained.get("paintings", {}).values():
        record["folders"] = [relative(p) for p in record["folders"]]
    if trained.get("distilled"):
        trained["distilled"]["teacher_path"] = relative(trained["distilled"]["teacher_path"])
    target = PRETRAINED / config["name"]
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "model.safetensors", target / "model.safetensors")
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return target


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(ship(Path(arg)))
