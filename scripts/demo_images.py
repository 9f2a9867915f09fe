"""Write the demo's content and style images into a folder (nst.web.examples makes them: scikit-image's photo of
Chelsea the cat and a generated swirl painting)."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from nst.web.examples import demo_content, demo_style


def main(out: str) -> None:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(demo_content()).save(d / "content.png")
    Image.fromarray(demo_style()).save(d / "style.png")
    print(f"{d / 'content.png'}  {d / 'style.png'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/demo")
