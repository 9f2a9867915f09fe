#!/usr/bin/env bash
# The demo: export the default model (original VGG19 weights, bundled), make a content/style pair from installed
# packages, stylize it, print where the image is. No ../shared, no download. About 2-4 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f models/vgg19/manifest.json ] || .venv/bin/nst-export
.venv/bin/python scripts/demo_images.py out/demo >/dev/null
.venv/bin/nst-run out/demo/content.png out/demo/style.png -o out/demo/stylized.png --size 320 \
  --log-json out/demo/log.json --report out/demo/report.png
echo "stylized image: $(pwd)/out/demo/stylized.png"
