#!/usr/bin/env bash
# Assemble the static directory Visdom 0.2.4 serves, without its CDN download (which crashes
# offline): Visdom's own page files from the installed package plus the pinned npm files listed
# in /work/shared/notes/visdom.md. Built in a temporary directory and moved into place, so a
# directory holding `version.built` is complete; a second run only checks the files and exits.
#
# Usage: scripts/visdom_assets.sh [DEST]   (DEST defaults to services/visdom_static)
# Environment: PY, the Python that has visdom installed (default .venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/services/visdom_static}"
PY="${PY:-$ROOT/.venv/bin/python}"
VERSION="0.2.4"
MATHJAX="js/mathjax/2.7.5"
SVG_FONT="fonts/glyphicons-halflings-regular.svg"

# npm spec | path inside the tarball's package/ | destination relative to DEST
MANIFEST="
jquery@3.1.1 dist/jquery.min.js js/jquery.min.js
bootstrap@3.3.7 dist/js/bootstrap.min.js js/bootstrap.min.js
bootstrap@3.3.7 dist/css/bootstrap.min.css css/bootstrap.min.css
bootstrap@3.3.7 dist/fonts/glyphicons-halflings-regular.eot fonts/glyphicons-halflings-regular.eot
bootstrap@3.3.7 dist/fonts/glyphicons-halflings-regular.woff2 fonts/glyphicons-halflings-regular.woff2
bootstrap@3.3.7 dist/fonts/glyphicons-halflings-regular.woff fonts/glyphicons-halflings-regular.woff
bootstrap@3.3.7 dist/fonts/glyphicons-halflings-regular.ttf fonts/glyphicons-halflings-regular.ttf
bootstrap@3.3.7 dist/fonts/glyphicons-halflings-regular.svg $SVG_FONT
react@16.2.0 umd/react.production.min.js js/react-react.min.js
react-dom@16.2.0 umd/react-dom.production.min.js js/react-dom.min.js
react-modal@3.1.10 dist/react-modal.min.js js/react-modal.min.js
plotly.js-dist-min@2.11.1 plotly.min.js js/plotly-plotly.min.js
sjcl@1.0.7 sjcl.js js/sjcl.js
layout-bin-packer@1.4.0 dist/layout-bin-packer.js js/layout_bin_packer.js
layout-bin-packer@1.4.0 dist/layout-bin-packer.js.map js/layout-bin-packer.js.map
d3@3.5.17 d3.min.js js/d3.v3.min.js
d3-selection-multi@1.0.1 build/d3-selection-multi.js js/d3-selection-multi.v1.js
save-svg-as-png@1.4.17 lib/saveSvgAsPng.js js/saveSvgAsPng.js
react-resizable@1.4.6 css/styles.css css/react-resizable-styles.css
react-grid-layout@0.16.3 css/styles.css css/react-grid-layout-styles.css
classnames@2.2.5 index.js fonts/classnames
mathjax@2.7.5 MathJax.js $MATHJAX/MathJax.js
mathjax@2.7.5 config/Safe.js $MATHJAX/config/Safe.js
mathjax@2.7.5 config/TeX-AMS-MML_HTMLorMML.js $MATHJAX/config/TeX-AMS-MML_HTMLorMML.js
mathjax@2.7.5 extensions/Safe.js $MATHJAX/extensions/Safe.js
mathjax@2.7.5 jax/output/SVG/config.js $MATHJAX/jax/output/SVG/config.js
mathjax@2.7.5 jax/output/SVG/jax.js $MATHJAX/jax/output/SVG/jax.js
mathjax@2.7.5 jax/output/SVG/fonts/TeX/fontdata.js $MATHJAX/jax/output/SVG/fonts/TeX/fontdata.js
mathjax@2.7.5 jax/output/SVG/fonts/TeX/Size1/Regular/Main.js $MATHJAX/jax/output/SVG/fonts/TeX/Size1/Regular/Main.js
"
OWN_FILES="index.html login.html css/style.css css/login.css css/network.css js/main.js"

complete() {
    [[ "$(cat "$DEST/version.built" 2>/dev/null)" == "$VERSION" ]] || return 1
    local dest
    for dest in $OWN_FILES "$SVG_FONT#glyphicons_halflingsregular" \
        $(awk 'NF { print $3 }' <<<"$MANIFEST"); do
        [[ -s "$DEST/$dest" ]] || return 1
    done
}

if complete; then
    echo "visdom assets: $DEST is complete"
    exit 0
fi

command -v npm >/dev/null || { echo "visdom assets: npm is required (Node 20)" >&2; exit 1; }
VISDOM_DIR="$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("visdom").origin))')"
[[ "$(cat "$VISDOM_DIR/VERSION")" == "$VERSION" ]] || {
    echo "visdom assets: expected visdom $VERSION in $VISDOM_DIR" >&2; exit 1; }

mkdir -p "$(dirname "$DEST")"
WORK="$(mktemp -d)"
BUILD="$(mktemp -d "${DEST%/}.build.XXXXXX")"  # beside DEST, so the final move is a rename
trap 'rm -rf "$WORK" "$BUILD"' EXIT
chmod 755 "$BUILD"
mkdir -p "$WORK/pkg"

mkdir -p "$BUILD/js"
cp -R "$VISDOM_DIR/static/index.html" "$VISDOM_DIR/static/login.html" "$VISDOM_DIR/static/css" "$BUILD/"
cp "$VISDOM_DIR/static/js/main.js" "$BUILD/js/"

SPECS="$(awk 'NF { print $1 }' <<<"$MANIFEST" | sort -u)"
# shellcheck disable=SC2086  # one word per spec
(cd "$WORK/pkg" && npm pack --silent --loglevel=error $SPECS >/dev/null)

for spec in $SPECS; do  # one extraction per tarball: mathjax alone is 20 MB
    name="${spec%@*}"
    mkdir -p "$WORK/x/$spec"
    # shellcheck disable=SC2046  # one word per member
    tar -xzf "$WORK/pkg/${name//\//-}-${spec##*@}.tgz" -C "$WORK/x/$spec" \
        --warning=no-unknown-keyword $(awk -v s="$spec" '$1 == s { print "package/" $2 }' <<<"$MANIFEST")
done
while read -r spec src dest; do
    [[ -n "$spec" ]] || continue
    mkdir -p "$(dirname "$BUILD/$dest")"
    cp "$WORK/x/$spec/package/$src" "$BUILD/$dest"
done <<<"$MANIFEST"
cp "$BUILD/$SVG_FONT" "$BUILD/$SVG_FONT#glyphicons_halflingsregular"
echo "$VERSION" >"$BUILD/version.built"

rm -rf "$DEST"
mv "$BUILD" "$DEST"
complete || { echo "visdom assets: $DEST is incomplete after the build" >&2; exit 1; }
echo "visdom assets: built $DEST"
