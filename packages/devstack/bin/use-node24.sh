# Sourced (not run) by the README's commands (demo.sh, test.sh) and .ci/run: puts Node 24 LTS
# first on PATH. When the machine's node is older, installs the npm registry's Node binary package
# (`node@24`, the official binaries repackaged) once into ~/.cache/rebeca/node24; nothing else on
# the machine changes. REBECA_NODE_DIR moves the cache.
rebeca_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(rebeca_node_major)" -lt 24 ]; then
  rebeca_node_dir="${REBECA_NODE_DIR:-$HOME/.cache/rebeca/node24}"
  if ! "$rebeca_node_dir/node_modules/.bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
    echo "==> Node $(node --version 2>/dev/null || echo "(none)") is older than 24: npm install node@24 into $rebeca_node_dir"
    npm install --prefix "$rebeca_node_dir" --no-save --no-audit --no-fund --loglevel=error node@24 >/dev/null
  fi
  # npm run under this Node installs global commands (pnpm) beside it, in node/bin: on PATH too, or a
  # fresh machine's `npm install -g pnpm` lands where no later command finds it.
  export PATH="$rebeca_node_dir/node_modules/node/bin:$rebeca_node_dir/node_modules/.bin:$PATH"
  if [ "$(rebeca_node_major)" -lt 24 ]; then
    echo "could not put Node 24 on PATH (see $rebeca_node_dir)" >&2
    return 1 2>/dev/null || exit 1
  fi
fi
unset -f rebeca_node_major
