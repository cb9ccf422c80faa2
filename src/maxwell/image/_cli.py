"""`maxwell image build` and `maxwell image show`: the microVM guest image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maxwell.common import Commands


def register(commands: Commands) -> None:
    p = commands.top.add_parser("image", help="the microVM guest image (build, show)")
    sub = p.add_subparsers(dest="image", metavar="ACTION")
    b = sub.add_parser(
        "build",
        help="download linux-image-amd64 and busybox-static and write the guest image",
        description="Fetch the Debian kernel and busybox with `apt-get download`, order the "
        "virtio/9p modules by their dependencies, and write a newc initramfs with Maxwell's "
        "/init into the cache (default ~/.cache/maxwell/image). Needs apt-get and dpkg-deb.",
    )
    b.add_argument("--force", action="store_true", help="rebuild even if an image is cached")
    b.add_argument("--cache-dir", type=Path, default=None, metavar="DIR")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_build)
    s = sub.add_parser("show", help="print the cached image's kernel, packages and modules")
    s.add_argument("--cache-dir", type=Path, default=None, metavar="DIR")
    s.set_defaults(func=_show)
    def needs_action(_: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=needs_action)


def _build(args: argparse.Namespace) -> int:
    from maxwell import image

    try:
        img = image.build(args.cache_dir, force=args.force,
                          log=(lambda s: None) if args.json else print)  # fmt: skip
    except image.ImageError as err:
        print(f"maxwell: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(img.describe()))
    return 0


def _show(args: argparse.Namespace) -> int:
    from maxwell import image

    img = image.find(args.cache_dir)
    if img is None:
        print(f"no guest image in {args.cache_dir or image.default_cache_dir()}: "
              "run `maxwell image build`", file=sys.stderr)
        return 1
    print(json.dumps(img.describe(), indent=1))
    return 0
