"""Take docs/options.png: the sample photo by two shipped models at full style, half strength and
with the photo's own colours. Usage: python scripts/options_picture.py docs/options.png expressionism cubism"""

import sys

from artstyle import load
from artstyle.demo import sample_photo_path
from artstyle.image import image_grid, open_image, resize_max, save_image
from artstyle.model_folder import shipped_models


def main(output: str, *movements: str) -> None:
    photo = resize_max(open_image(sample_photo_path()), 512)
    rows = []
    for movement in movements:
        stylizer = load(shipped_models()[movement], engine="torch")
        rows.append([photo, stylizer(photo), stylizer(photo, strength=0.5), stylizer(photo, preserve_color=True)])
    labels = ["photo", "full style", "--strength 0.5", "--preserve-color"]
    save_image(image_grid(rows, labels=labels, cell=320), output)


if __name__ == "__main__":
    main(*sys.argv[1:])
