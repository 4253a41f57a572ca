#!/usr/bin/env bash
# Installs what the VS Code end-to-end test needs, idempotently:
#   Debian: chromium (headless browser), libkrb5-dev (code-server native module), ripgrep (seeds the
#           @vscode/ripgrep download cache, which otherwise fetches from GitHub)
#   npm:    code-server 4.100.3 (a real VS Code 1.100.3 build that runs offline) and playwright-core,
#           both into $CACHE_DIR (default .cache/code-server).
# Exits non-zero with a message saying what could not be installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${CODE_SERVER_CACHE:-$ROOT/.cache/code-server}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.100.3}"
PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION:-1.65.1}"

die() { echo "setup-code-server: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (code-server $CODE_SERVER_VERSION needs Node 20)"
command -v npm >/dev/null || die "npm is not installed"

# --- Debian packages ---------------------------------------------------------------------------
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v rg >/dev/null || missing+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${missing[*]}"
        SUDO="sudo"
    fi
    echo "setup-code-server: apt-get install ${missing[*]}" >&2
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null || die "apt-get install ${missing[*]} failed"
fi

# --- npm packages ------------------------------------------------------------------------------
installed_version() {
    node -p "require('$CACHE_DIR/node_modules/$1/package.json').version" 2>/dev/null || true
}

mkdir -p "$CACHE_DIR"
[[ -f "$CACHE_DIR/package.json" ]] || echo '{"name":"codegen-lsp-e2e-editors","private":true}' >"$CACHE_DIR/package.json"

if [[ "$(installed_version code-server)" != "$CODE_SERVER_VERSION" ]] \
    || [[ ! -x "$CACHE_DIR/node_modules/.bin/code-server" ]]; then
    # @vscode/ripgrep's postinstall downloads rg from GitHub; give it Debian's rg in the tarball it
    # looks for in its cache so it never goes online.
    tmp="${TMPDIR:-/tmp}"
    rg_cache="$tmp/vscode-ripgrep-cache-1.15.11"
    mkdir -p "$rg_cache"
    for asset in ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz \
        ripgrep-v13.0.0-4-x86_64-unknown-linux-musl.tar.gz; do
        if [[ ! -s "$rg_cache/$asset" ]]; then
            stage="$(mktemp -d)"
            cp "$(command -v rg)" "$stage/rg"
            tar -C "$stage" -czf "$rg_cache/$asset" rg
            rm -rf "$stage"
        fi
    done
    echo "setup-code-server: npm install code-server@$CODE_SERVER_VERSION (about a minute)" >&2
    (
        cd "$CACHE_DIR"
        export npm_config_unsafe_perm=true npm_config_yes=true
        npm install --no-save --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" \
            "playwright-core@$PLAYWRIGHT_VERSION"
    ) || die "npm install code-server@$CODE_SERVER_VERSION failed (see the npm output above)"
fi

if [[ "$(installed_version playwright-core)" != "$PLAYWRIGHT_VERSION" ]]; then
    (cd "$CACHE_DIR" && npm install --no-save --no-audit --no-fund --loglevel=error \
        "playwright-core@$PLAYWRIGHT_VERSION") || die "npm install playwright-core failed"
fi

"$CACHE_DIR/node_modules/.bin/code-server" --version >/dev/null 2>&1 \
    || die "code-server was installed but does not run: $CACHE_DIR/node_modules/.bin/code-server --version"
echo "setup-code-server: ok ($CACHE_DIR: code-server $(installed_version code-server)," \
    "playwright-core $(installed_version playwright-core), $(chromium --version 2>/dev/null))" >&2
