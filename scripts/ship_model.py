"""Copy trained models into the package's shipped models, with their recorded paths made relative.

Usage: python scripts/ship_model.py runs/fast8/baroque-fast [more model folders ...]

Each model folder's model.safetensors and config.json go to src/artstyle/pretrained/<name>/ (its
config's name). The absolute paths training recorded (paintings folders, photo folders, a
teacher's folder) are rewritten relative to the repository root, so the shipped config says where
the data came from without naming this machine's folders. A student shipped in the same call as
its teacher records the teacher's shipped folder, where its weights now are, not the run folder.
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


def shipped_folder(folder: Path) -> Path:
    """Where ``folder``'s model goes: src/artstyle/pretrained/<its config's name>."""
    return PRETRAINED / json.loads((folder / "config.json").read_text())["name"]


def ship(folder: Path, moved: dict[Path, Path]) -> Path:
    """Copy one model folder; ``moved``: run folders shipped in this call, by resolved path, to
    their shipped folders."""
    config = json.loads((folder / "config.json").read_text())
    trained = config.get("trained") or {}
    if trained.get("photos_folder"):
        trained["photos_folder"] = relative(trained["photos_folder"])
    trained["photo_sources"] = [relative(p) for p in trained.get("photo_sources", [])]
    for record in trained.get("paintings", {}).values():
        record["folders"] = [relative(p) for p in record["folders"]]
    if trained.get("distilled"):
        teacher = Path(trained["distilled"]["teacher_path"])
        trained["distilled"]["teacher_path"] = relative(str(moved.get(teacher.resolve(), teacher)))
    target = PRETRAINED / config["name"]
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "model.safetensors", target / "model.safetensors")
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return target


if __name__ == "__main__":
    folders = [Path(arg) for arg in sys.argv[1:]]
    moved = {f.resolve(): shipped_folder(f) for f in folders}
    for f in folders:
        print(ship(f, moved))
