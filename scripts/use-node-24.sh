# Source this in the checkout before the README's commands when `node -v` is older than v22:
#   . scripts/use-node-24.sh
# The service runs on Node 24 (the image's Node, and what CI tests); Node 20 reached its end of
# life in April 2026, and better-sqlite3 13 (the SQLite driver) crashes on it. This installs Node 24
# from the npm registry into .node/ (once) and puts it first on PATH for this shell; nothing but the
# npm registry is needed (better-sqlite3 ships its prebuilt binaries in its npm package). With
# Node 22 or newer already on PATH it changes nothing (USAGE_BATCH_EXACT_NODE=1: unless it is 24,
# as CI wants, to test exactly what the image ships). Undo: open a new shell.
USAGE_BATCH_NODE_MAJOR=24
if [ -n "${USAGE_BATCH_EXACT_NODE:-}" ]; then
  usage_batch_node_test="major === $USAGE_BATCH_NODE_MAJOR"
else
  usage_batch_node_test="major >= 22"
fi
if [ ! -f scripts/use-node-24.sh ]; then
  echo "use-node-24.sh: source it from the checkout's root folder" >&2
  return 1 2>/dev/null || exit 1
fi
if command -v node >/dev/null 2>&1 && node -e "const major = Number(process.versions.node.split('.')[0]); process.exit($usage_batch_node_test ? 0 : 1)"; then
  echo "use-node-24.sh: node $(node -v) is supported; nothing to do"
else
  if [ ! -x .node/node_modules/.bin/node ]; then
    echo "use-node-24.sh: installing node@$USAGE_BATCH_NODE_MAJOR from the npm registry into .node/"
    npm install --prefix .node --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node@$USAGE_BATCH_NODE_MAJOR" >&2 ||
      { echo "use-node-24.sh: could not install node@$USAGE_BATCH_NODE_MAJOR" >&2; return 1 2>/dev/null || exit 1; }
  fi
  PATH="$PWD/.node/node_modules/.bin:$PATH"
  export PATH
  echo "use-node-24.sh: using node $(node -v) from .node/"
fi
