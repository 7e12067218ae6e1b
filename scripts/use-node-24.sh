# Source this in the checkout to put a supported Node first on PATH for this shell:
#   . scripts/use-node-24.sh
# The npm scripts that load the service (start, test, bench, demo…) do this by themselves through
# scripts/supported-node.mjs; this is for a shell of your own (npx, tsx, node -e …) and for CI.
# On Node 22 or newer it changes nothing (USAGE_BATCH_EXACT_NODE=1: unless it is the image's 24, as
# CI wants, to test exactly what the image ships). Undo: open a new shell.
if [ ! -f scripts/supported-node.mjs ]; then
  echo "use-node-24.sh: source it from the checkout's root folder" >&2
  return 1 2>/dev/null || exit 1
fi
if usage_batch_bin=$(node scripts/supported-node.mjs --bin-dir); then
  if [ -n "$usage_batch_bin" ]; then
    PATH="$usage_batch_bin:$PATH"
    export PATH
  fi
  echo "use-node-24.sh: using node $(node -v)"
else
  echo "use-node-24.sh: could not get a supported Node" >&2
  return 1 2>/dev/null || exit 1
fi
