"""How close distilled models paint to their teachers: PSNR (dB) on photos, fp32 PyTorch both.

Usage: python scripts/distil_fidelity.py PHOTOS_DIR MODEL [MODEL ...]   (MODEL: a distilled model's
name or folder; its teacher is the one its config.json names, read from where it recorded it or,
for a shipped model, by name)
"""

import statistics
import sys
from pathlib import Path

from artstyle import load
from artstyle.image import list_images, open_image, psnr, resize_max, to_tensor
from artstyle.model_folder import ModelFolder, shipped_models

SIZE = 512


def teacher_of(student: ModelFolder) -> ModelFolder:
    record = student.trained.distilled if student.trained else None
    if record is None:
        raise SystemExit(f"{student.path}: not a distilled model")
    path = Path(record.teacher_path)
    return ModelFolder.read(path if path.exists() else shipped_models()[record.teacher])


def main(photos: str, *models: str) -> None:
    pictures = [to_tensor(resize_max(open_image(p), SIZE)) for p in list_images(Path(photos))]
    for ref in models:
        student = ModelFolder.from_pretrained(ref)
        teacher = teacher_of(student)
        a, b = load(student, engine="torch", precision="fp32"), load(teacher, engine="torch", precision="fp32")
        scores = [psnr(a.stylize_tensor(x), b.stylize_tensor(x)) for x in pictures]
        print(f"{student.name} against {teacher.name}: lowest {min(scores):.1f} dB, median "
              f"{statistics.median(scores):.1f} dB over {len(scores)} photos at {SIZE} px")


if __name__ == "__main__":
    main(*sys.argv[1:])
