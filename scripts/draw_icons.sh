#!/usr/bin/env bash
# Draws the add-on's icon.png (128x128) and logo.png (250x100), as the add-on store shows them:
# a lightning bolt between sound-level bars on the Home Assistant blue. Needs ImageMagick
# (apt-get install imagemagick) and the DejaVu fonts it comes with.
#
#   scripts/draw_icons.sh        # writes icon.png and logo.png at the repository root
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONVERT=${CONVERT:-/usr/bin/convert}
BLUE='#03a9f4'
BOLT='74,10 38,70 60,70 50,118 90,54 68,54 82,10'

"$CONVERT" -size 128x128 xc:none \
    -fill "$BLUE" -draw 'roundrectangle 0,0 127,127 24,24' \
    -fill white \
    -draw 'roundrectangle 12,54 19,74 3,3' -draw 'roundrectangle 24,44 31,84 3,3' \
    -draw 'roundrectangle 97,44 104,84 3,3' -draw 'roundrectangle 109,54 116,74 3,3' \
    -stroke none -fill white -draw "polygon $BOLT" \
    -depth 8 -strip "$ROOT/icon.png"

"$CONVERT" -size 250x100 xc:none \
    \( "$ROOT/icon.png" -resize 84x84 \) -geometry +8+8 -composite \
    -font DejaVu-Sans-Bold -pointsize 24 -fill '#1c1c1c' -annotate +102+44 'Pulse' \
    -font DejaVu-Sans -pointsize 15 -fill '#444444' -annotate +102+68 'speech-to-text' \
    -pointsize 12 -fill "$BLUE" -annotate +102+86 'Smallest.ai' \
    -depth 8 -strip "$ROOT/logo.png"
echo "wrote $ROOT/icon.png and $ROOT/logo.png"
