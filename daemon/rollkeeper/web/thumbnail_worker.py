"""The thumbnail worker: one photo in on standard input, one small JPEG out on standard output.

Image decoders are attack surface, and the service holds the keys that unlock the whole phone,
so decoding happens here, in a process of its own that :mod:`rollkeeper.web.thumbnails` starts
for each photo, never in the service. Before any decoder is imported the worker limits itself
(``setrlimit``): address space, CPU seconds, no files written, no core dump. The parent opens
the archive file and hands it over as standard input, so the worker is never told a path, and it
enforces a wall-clock limit of its own from outside.

Exit status: 0 with the JPEG on standard output; 2 not an image it can read; 3 refused as too
large (a decompression bomb); 4 out of memory. One word on standard error says which.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import warnings
from collections.abc import Sequence

#: The largest image decoded, in pixels: a 48 MP iPhone ProRAW is 48 million; Pillow's own
#: default (89 million) would refuse less, a bomb asks for billions.
MAX_PIXELS = 120_000_000

EXIT_NOT_AN_IMAGE = 2
EXIT_TOO_LARGE = 3
EXIT_OUT_OF_MEMORY = 4


def limit_resources(memory_bytes: int, cpu_seconds: int) -> None:
    """Cap this process: address space, CPU time, files written (none), core dumps (none)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    # Standard output is a pipe, which RLIMIT_FSIZE does not cover: nothing else may be written.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def make_thumbnail(source: io.BufferedReader, edge: int) -> bytes:
    """A JPEG of at most ``edge`` pixels on its longer side, turned upright (EXIF orientation).

    Raises what Pillow raises: ``Image.DecompressionBombError`` (or its warning, made an
    error) for images past :data:`MAX_PIXELS`, ``OSError``/``ValueError`` for what it cannot read.
    """
    import pillow_heif
    from PIL import Image, ImageOps

    pillow_heif.options.DECODE_THREADS = 1  # one thread: a bounded address space goes further
    pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    with Image.open(source) as image:
        # JPEG decodes straight at 1/2 .. 1/8 of its size; other formats ignore the hint.
        image.draft("RGB", (edge, edge))
        image.thumbnail((edge, edge))
        upright = ImageOps.exif_transpose(image)
        output = io.BytesIO()
        upright.convert("RGB").save(output, format="JPEG", quality=80)
    return output.getvalue()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rollkeeper.web.thumbnail_worker")
    parser.add_argument("--edge", type=int, required=True)
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Read the photo from standard input, write its thumbnail to standard output."""
    arguments = _arguments(argv)
    limit_resources(arguments.memory_bytes, arguments.cpu_seconds)
    from PIL import Image

    # Standard input is the archive file itself (seekable), opened by the parent.
    source = os.fdopen(0, "rb", closefd=False)
    try:
        thumbnail = make_thumbnail(source, arguments.edge)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        print("too_large", file=sys.stderr)
        return EXIT_TOO_LARGE
    except MemoryError:
        print("out_of_memory", file=sys.stderr)
        return EXIT_OUT_OF_MEMORY
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        # SyntaxError and EOFError are what some of Pillow's plugins raise on broken files.
        print(f"not_an_image: {type(error).__name__}", file=sys.stderr)
        return EXIT_NOT_AN_IMAGE
    sys.stdout.buffer.write(thumbnail)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
