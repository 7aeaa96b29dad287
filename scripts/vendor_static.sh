#!/usr/bin/env bash
# Fetches the browser libraries WebChat and the /docs page use, at pinned versions, from the npm
# registry (`npm pack`), and copies the files the pages load, with their licences, into
# services/gateway/static/vendor/. The copies are committed: serving WebChat needs no network and
# no build step. Re-run after changing a version here; review the diff like any other.
set -euo pipefail

MARKED=18.2.1
DOMPURIFY=3.5.0
HIGHLIGHT=11.12.0
SWAGGER_UI=5.32.0
# The languages highlighted in code blocks (others are shown unhighlighted).
LANGUAGES=(bash c cpp css diff go ini java javascript json markdown python rust shell sql typescript xml yaml)

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/services/gateway/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "marked@$MARKED" "dompurify@$DOMPURIFY" "@highlightjs/cdn-assets@$HIGHLIGHT" \
  "swagger-ui-dist@$SWAGGER_UI" >/dev/null
for archive in *.tgz; do
  mkdir -p "${archive%.tgz}"
  tar xzf "$archive" -C "${archive%.tgz}"
done

rm -rf "$out"
mkdir -p "$out/marked" "$out/dompurify" "$out/highlight/languages" "$out/swagger-ui"
cp "marked-$MARKED/package/lib/marked.esm.js" "marked-$MARKED/package/LICENSE" "$out/marked/"
cp "dompurify-$DOMPURIFY/package/dist/purify.min.js" "dompurify-$DOMPURIFY/package/LICENSE" "$out/dompurify/"
highlight="highlightjs-cdn-assets-$HIGHLIGHT/package"
cp "$highlight/es/core.min.js" "$highlight/LICENSE" "$out/highlight/"
cp "$highlight/styles/github.min.css" "$highlight/styles/github-dark.min.css" "$out/highlight/"
for language in "${LANGUAGES[@]}"; do
  cp "$highlight/es/languages/$language.min.js" "$out/highlight/languages/"
done
swagger="swagger-ui-dist-$SWAGGER_UI/package"
cp "$swagger/swagger-ui-bundle.js" "$swagger/swagger-ui-bundle.js.LICENSE.txt" "$swagger/swagger-ui.css" \
  "$swagger/LICENSE" "$swagger/NOTICE" "$out/swagger-ui/"
# Source maps are not shipped; drop the comment pointing at them (the browser would ask for them).
find "$out" -name '*.js' -exec sed -i '/^\/\/# sourceMappingURL=/d' {} +
sed -i 's#/\*\# sourceMappingURL=[^*]*\*/##' "$out/swagger-ui/swagger-ui.css"
cat > "$out/VERSIONS" <<VERSIONS
marked $MARKED
dompurify $DOMPURIFY
@highlightjs/cdn-assets $HIGHLIGHT
swagger-ui-dist $SWAGGER_UI
VERSIONS
echo "vendored into $out"
