"""Images in and out: safe opening, PIL <-> tensor (float32, [0, 1], NCHW), resizing, grids.

Every image that enters artstyle goes through :func:`open_image`, so EXIF rotation, odd modes
(grayscale, CMYK, palette, alpha, 16-bit) and hostile files are handled in one place.

numpy is imported by the functions that need it, not by this module: painting one photo with the
OpenVINO engine needs none of them, and numpy is about 60 ms of such a process's start.
"""

from __future__ import annotations

import errno
import io
import math
import os
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from .errors import ArtstyleError, ImageError, UsageError

if TYPE_CHECKING:  # PyTorch is imported only where a tensor is made: the ONNX/OpenVINO path never needs it
    import numpy as np
    import torch
    from PIL import ImageFont

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_PIXELS = 100_000_000  # larger images are refused as likely decompression bombs
MIN_SIDE = 16  # px: images (and resized images to paint) with a shorter side carry no usable texture
MIN_TILE = 64  # px: smaller tiles are mostly overlap, and their number grows with the square of 1/tile
AUTO_TILE_PIXELS = 6_000_000  # larger images are stylized in tiles unless told otherwise
DEFAULT_TILE = 1024  # px


def open_image(source: str | Path | BinaryIO, max_pixels: int = MAX_PIXELS, max_side: int | None = None
               ) -> Image.Image:
    """Read an image (a file, or bytes in a file object) as an upright 8-bit RGB PIL image, or
    raise ``ImageError``.

    Applies the EXIF orientation, composites alpha over white, converts grayscale, palette,
    CMYK and 16-bit images to RGB, and refuses images over ``max_pixels`` before decoding them.
    ``max_side``: the caller will shrink the image to this longest side (px), so a JPEG may be
    decoded at a reduced scale (1/2, 1/4 or 1/8) that still covers it: several times quicker for a
    large photo painted small. The result is never smaller than that.
    """
    path = Path(source) if isinstance(source, (str, Path)) else "the upload"
    try:
        # Pillow's warnings (a bomb from 89 MP, where artstyle's own limit is the one that counts;
        # skipped TIFF tags) would reach the user raw: what matters is whether the image decodes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(source) as im:
                if im.width * im.height > max_pixels:
                    raise ImageError(
                        f"{path}: {im.width}x{im.height} is over the {max_pixels:,}-pixel limit; "
                        "downscale it first"
                    )
                if max_side is not None and im.format == "JPEG" and max(im.size) > max_side:
                    scale = max_side / max(im.size)
                    wanted = (math.ceil(im.width * scale), math.ceil(im.height * scale))
                    if min(wanted) >= MIN_SIDE:  # else decoded whole, so that "too thin" names its real size
                        im.draft("RGB", wanted)
                im.load()
                rgb = _to_rgb(ImageOps.exif_transpose(im))
    except ArtstyleError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: over Pillow's decompression-bomb limit; downscale it first (artstyle takes "
                         f"up to {max_pixels:,} pixels)") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file PIL can read") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(f"{path}: unreadable image ({err})") from None
    if min(rgb.size) < MIN_SIDE:
        raise ImageError(f"{path}: {rgb.width}x{rgb.height} is too small (min side {MIN_SIDE} px)")
    return rgb


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        # 16/32-bit grayscale: scale to 8 bits by the image's own range, not by clipping.
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if im.mode == "F":
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        finite = np.isfinite(arr)
        lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0.0, 0.0)
        # scaled by the finite pixels' range; NaN and infinite pixels become black
        arr = np.where(finite, (arr - lo) / (hi - lo if hi > lo else 1.0) * 255.0, 0.0)
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "RGB" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")


def to_array(image: Image.Image) -> np.ndarray:
    """An RGB PIL image as a float32 array of shape (1, 3, H, W) with values in [0, 1]."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"))
    arr = np.empty((1, 3, *pixels.shape[:2]), np.float32)
    arr[0] = pixels.transpose(2, 0, 1)  # converted and reordered in one pass, then scaled in place
    return np.divide(arr, np.float32(255.0), out=arr)


def from_array(arr: np.ndarray) -> Image.Image:
    """A (3, H, W) or (1, 3, H, W) array in [0, 1] (values outside are clipped) as a PIL image."""
    import numpy as np

    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {arr.shape[0]}")
        arr = arr[0]
    scaled = np.multiply(arr, np.float32(255.0))  # one temporary, worked on in place: half the time of
    np.clip(scaled, 0.0, 255.0, out=scaled)  # a chain of new arrays, and the same pixels
    np.rint(scaled, out=scaled)
    pixels = np.empty((*scaled.shape[1:], 3), np.uint8)
    pixels[...] = scaled.transpose(1, 2, 0)
    return Image.fromarray(pixels, "RGB")


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio (dB) between two images with values in [0, 1]: numpy arrays or
    tensors of the same shape; infinite for identical images."""
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float32 tensor of shape (1, 3, H, W) with values in [0, 1]."""
    import torch

    return torch.from_numpy(to_array(image))


def to_uint8(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a uint8 tensor of shape (3, H, W): the compact in-memory form."""
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """A (3, H, W) or (1, 3, H, W) tensor in [0, 1] (values outside are clipped) as a PIL image."""
    return from_array(tensor.detach().float().cpu().numpy())


def bounded_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk so the longest side is at most ``max_side`` px, keeping the aspect ratio."""
    if max_side is None or max(size) <= max_side:
        return size
    scale = max_side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize_max(image: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink so the longest side is at most ``max_side`` px, keeping the aspect ratio."""
    size = bounded_size(image.size, max_side)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def resize_for_painting(image: Image.Image, max_side: int | None) -> Image.Image:
    """:func:`resize_max`, refusing (``ImageError``) a result under ``MIN_SIDE`` px on its short side:
    the network needs a few pixels to pad and downsample, and a sliver shows nothing of a movement."""
    resized = resize_max(image, max_side)
    if min(resized.size) < MIN_SIDE:
        raise ImageError(f"{image.width}x{image.height} is too thin to paint: it would be {resized.width}x"
                         f"{resized.height} px at a longest side of {max_side} px, under {MIN_SIDE} px on the "
                         "short side; crop it, or ask for a larger size")
    return resized


def tile_for(size: tuple[int, int], tile: int | None) -> int:
    """The tile side (px) to paint an image of ``size`` (width, height) with; 0 paints it whole.

    ``tile`` as the user gave it (0: never tile), or None: tiles of ``DEFAULT_TILE`` px for images
    over ``AUTO_TILE_PIXELS``, which bounds memory.
    """
    if tile is not None:
        return tile
    return DEFAULT_TILE if size[0] * size[1] > AUTO_TILE_PIXELS else 0


def resize_to(image: Image.Image, longest: int) -> Image.Image:
    """Resize (up or down) so the longest side is exactly ``longest`` px, keeping the aspect ratio."""
    scale = longest / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def resize_short(image: Image.Image, short: int) -> Image.Image:
    """Resize so the shorter side is ``short`` px, keeping the aspect ratio."""
    scale = short / min(image.size)
    size = (max(short, round(image.width * scale)), max(short, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def list_images(folder: str | Path) -> list[Path]:
    """Image files (by suffix) directly in ``folder``, sorted by name; hidden files are ignored."""
    folder = Path(folder)
    if not folder.exists():
        raise UsageError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def save_image(image: Image.Image, path: str | Path) -> None:
    """Write an image atomically; the format follows the suffix (PNG, JPEG, ...)."""
    path = Path(path)
    fmt = _format(path.suffix)
    if fmt is None:
        raise UsageError(f"{path}: unknown image format {path.suffix!r}; use .png or .jpg")
    atomic_write(path, lambda f: _encode(image, f, fmt))


def encode_image(image: Image.Image, kind: str) -> bytes:
    """``image`` as the bytes of a file of ``kind`` (``png``, ``jpeg``, ...), as :func:`save_image`
    would write it."""
    fmt = _format(kind)
    if fmt is None:
        raise UsageError(f"unknown image format {kind!r}; use png or jpeg")
    buffer = io.BytesIO()
    _encode(image, buffer, fmt)
    return buffer.getvalue()


def _format(suffix: str) -> str | None:
    """Pillow's name of the format of a file suffix or kind (``.jpg``, ``jpeg``, ``png``), or None."""
    suffix = "." + suffix.lower().lstrip(".")
    Image.preinit()  # the common formats, which Image.open loads anyway; all of Pillow's plugins take 20 ms
    return Image.EXTENSION.get(suffix) or Image.registered_extensions().get(suffix)


def _encode(image: Image.Image, f: BinaryIO, fmt: str) -> None:
    if fmt == "PNG" and image.mode == "RGB":
        f.write(png_bytes(image))
        return
    image.save(f, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))


PNG_PARTS = 4  # a picture's rows are compressed in this many parts at once (at most one per core)
_png_pool: ThreadPoolExecutor | None = None
try:  # Intel's ISA-L (artstyle[fast]): deflate at level 1 three times quicker than zlib, files as Pillow's
    from isal import isal_zlib
except ImportError:  # zlib's run-length strategy: files as small, or smaller where flat
    isal_zlib = None  # type: ignore[assignment]


def png_bytes(image: Image.Image) -> bytes:
    """An RGB PIL image as a PNG file, written for speed: every row filtered against the one above
    (PNG's "Up" filter, by Pillow), then deflated at level 1 in parts on several threads (by ISA-L
    where it is installed, else by zlib with its run-length strategy), joined into one zlib stream
    as pigz does. A painted picture has little exact repetition for LZ77 to find beyond runs, so
    the file is about as small as Pillow's at zlib level 1, and written several times quicker
    (benchmarks/README.md)."""
    global _png_pool
    w, h = image.size
    above = Image.new("RGB", (w, h))  # each row's row above; zeros above the first
    if h > 1:
        above.paste(image.crop((0, 0, w, h - 1)), (0, 1))
    up = ImageChops.subtract_modulo(image, above).tobytes()  # modulo 256, as PNG wants
    stride = 3 * w
    flat = memoryview(b"".join(b"\x02" + up[y * stride:(y + 1) * stride] for y in range(h)))  # 2: Up
    parts = max(1, min(PNG_PARTS, os.cpu_count() or 1, h // 64))
    bounds = [round(i * h / parts) * (stride + 1) for i in range(parts + 1)]

    def deflate(i: int) -> bytes:
        raw = (isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15) if isal_zlib is not None
               else zlib.compressobj(1, zlib.DEFLATED, -15, 9, zlib.Z_RLE))
        body = raw.compress(flat[bounds[i]: bounds[i + 1]])
        return body + raw.flush(zlib.Z_FINISH if i == parts - 1 else zlib.Z_SYNC_FLUSH)  # ISA-L's are the same

    if parts == 1:
        blocks = [deflate(0)]
    else:
        if _png_pool is None:
            _png_pool = ThreadPoolExecutor(PNG_PARTS, thread_name_prefix="artstyle-png")
        blocks = list(_png_pool.map(deflate, range(parts)))
    checksums = isal_zlib or zlib  # the same sums
    stream = b"\x78\x01" + b"".join(blocks) + struct.pack(">I", checksums.adler32(flat))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksums.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8 bits per channel, RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    A crash or a full disk leaves the old file (if any) untouched and no partial file behind; an
    output that cannot be written raises ``ArtstyleError`` saying why.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        tmp = temporary_beside(path)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # Ctrl-C or SIGTERM too: no temporary file is left behind
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise


def temporary_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty hidden file in ``path``'s folder (made if missing), with the mode a plain new
    file gets; for writing ``path`` atomically. Raises ``ArtstyleError`` if it cannot be made."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as err:
        raise write_error(path, err) from None
    tmp = Path(name)
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException as err:  # Ctrl-C or SIGTERM too: the new file is removed
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise
    return tmp


def write_error(path: Path, err: OSError) -> ArtstyleError:
    """The one-line error for an output that could not be written, naming the likely fix."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return ArtstyleError(f"could not write {path}: {blocker} is a file, not a folder; choose another output path")
    hints = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EDQUOT: "free some space or write elsewhere",
        errno.EROFS: "write elsewhere",
        errno.EACCES: "write to a folder you may write to",
        errno.EPERM: "write to a folder you may write to",
    }
    hint = hints.get(err.errno or 0, "check the disk has space and the folder is writable")
    return ArtstyleError(f"could not write {path} ({err.strerror or err}); {hint}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def image_grid(
    rows: Sequence[Sequence[Image.Image]],
    labels: Sequence[str] | None = None,
    cell: int = 256,
    gap: int = 6,
) -> Image.Image:
    """Paste images into a grid, each scaled to fit inside ``cell`` x ``cell`` px and centred.

    Columns and rows take the size of their largest picture; ``labels`` name the columns and are
    drawn above the first row.
    """
    from PIL import ImageDraw  # here, not at the top: painting a photo draws no text

    thumbs = []
    for row in rows:
        line = []
        for im in row:
            scale = cell / max(im.size)
            line.append(im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                                  Image.Resampling.LANCZOS))
        thumbs.append(line)
    ncols = max(len(r) for r in thumbs)
    col_w = [max(r[c].width for r in thumbs if c < len(r)) for c in range(ncols)]
    row_h = [max(t.height for t in r) for r in thumbs]
    font = _font(max(12, cell // 16))
    label_h = (getattr(font, "size", 11) + 2 * gap) if labels else 0
    width = sum(col_w) + (ncols + 1) * gap
    height = label_h + sum(row_h) + (len(rows) + 1) * gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    xs = [gap + sum(col_w[:c]) + c * gap for c in range(ncols)]
    for c, label in enumerate(list(labels or [])[:ncols]):
        draw.text((xs[c] + col_w[c] // 2, gap + label_h // 2), label, fill=(20, 20, 20), font=font, anchor="mm")
    y = label_h + gap
    for r, row in enumerate(thumbs):
        for c, thumb in enumerate(row):
            sheet.paste(thumb, (xs[c] + (col_w[c] - thumb.width) // 2, y + (row_h[r] - thumb.height) // 2))
        y += row_h[r] + gap
    return sheet


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def iter_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (their images, not recursive) into one list of image paths."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise UsageError(f"{p}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif p.exists():
            paths.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    return paths


def plan_outputs(inputs: Sequence[str | Path], output: str | Path | None, suffix: str = ".png",
                 default_dir: str | Path = "stylized") -> list[tuple[Path, Path]]:
    """Pair each input image with its output path.

    One input file and ``-o FILE`` (with an image suffix): that file. Otherwise ``-o DIR`` (default
    ``stylized/``) receives ``DIR/<input stem>.png`` for each input.
    """
    paths = iter_inputs(inputs)
    single_file = len(paths) == 1 and len(inputs) == 1 and Path(inputs[0]).is_file()
    if output is not None and single_file and Path(output).suffix and not Path(output).is_dir():
        return [(paths[0], Path(output))]
    out_dir = Path(output) if output is not None else Path(default_dir)
    if out_dir.suffix and not out_dir.is_dir() and len(paths) > 1:
        raise UsageError(f"-o {out_dir}: {len(paths)} inputs need an output folder, not a file name")
    pairs = [(p, out_dir / f"{p.stem}{suffix}") for p in paths]
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst in seen:
            raise UsageError(f"{src} and {seen[dst]} would both be written to {dst}; stylize them separately")
        seen[dst] = src
    return pairs
