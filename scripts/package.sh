#!/usr/bin/env bash
# Package the Functions app: a static, stripped x86_64 Linux `handler` next to host.json,
# TimerFetch/ and EventHubSink/, in dist/app/, zipped as dist/coincap-stream.zip for
# `func azure functionapp publish <app> --custom` (run from dist/app) or zip deploy.
#
# Builds for x86_64-unknown-linux-musl (installs the Rust target and musl-gcc for the bundled C
# code: SQLite, aws-lc). If the musl target cannot be installed (rustup's server unreachable), it
# falls back, LOUDLY, to a fully static glibc build (crt-static). Either way the script checks the
# result has no ELF interpreter and no DT_NEEDED entries before packaging it.
#
# Settings: CARGO_TARGET_DIR (default: target/), PACKAGE_TARGET=gnu-static to skip musl.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
target_dir="${CARGO_TARGET_DIR:-target}"
dist=dist
app="$dist/app"
zip_path="$dist/coincap-stream.zip"
musl=x86_64-unknown-linux-musl
gnu=x86_64-unknown-linux-gnu

say() { printf '== %s\n' "$*"; }
loud() { printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!! %s\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  as_root apt-get update -qq >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

musl_target_ready() {
  command -v rustup >/dev/null 2>&1 || return 1
  if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    say "installing the Rust target $musl (time-out 120 s)"
    timeout 120 rustup target add "$musl" >/dev/null 2>&1 || return 1
  fi
  if ! command -v musl-gcc >/dev/null 2>&1; then
    say "installing musl-tools (musl-gcc, for the bundled SQLite and aws-lc C code)"
    apt_install musl-tools || return 1
  fi
  command -v musl-gcc >/dev/null 2>&1
}

kind=musl
if [ "${PACKAGE_TARGET:-musl}" = gnu-static ] || ! musl_target_ready; then
  kind=gnu-static
fi

if [ "$kind" = musl ]; then
  target=$musl
  say "building a static $musl release binary"
  CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --locked --release --bin handler --target "$musl" --target-dir "$target_dir"
else
  target=$gnu
  loud "NOT a musl build (musl target or musl-gcc unavailable, or PACKAGE_TARGET=gnu-static): building a fully static GLIBC binary instead (-C target-feature=+crt-static, $gnu). It has no ELF interpreter and no shared-library dependencies, but it is not a musl build."
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --locked --release --bin handler --target "$gnu" --target-dir "$target_dir"
fi
binary="$target_dir/$target/release/handler"

# The binary must run on any x86_64 Linux: no interpreter (PT_INTERP), no shared libraries.
if command -v readelf >/dev/null 2>&1; then
  if readelf -lW "$binary" | grep -q 'INTERP'; then
    echo "error: $binary asks for an ELF interpreter: it is not static" >&2; exit 1
  fi
  if readelf -dW "$binary" 2>/dev/null | grep -q '(NEEDED)'; then
    echo "error: $binary needs shared libraries:" >&2; readelf -dW "$binary" | grep NEEDED >&2; exit 1
  fi
fi

say "laying out $app"
rm -rf "$app" "$zip_path"
mkdir -p "$app/TimerFetch" "$app/EventHubSink"
install -m 0755 "$binary" "$app/handler"
# Strip again in case a profile override kept symbols; harmless when already stripped.
if command -v strip >/dev/null 2>&1; then strip "$app/handler"; fi
cp host.json "$app/"
cp TimerFetch/function.json "$app/TimerFetch/"
cp EventHubSink/function.json "$app/EventHubSink/"

say "zipping $zip_path"
if command -v zip >/dev/null 2>&1 || apt_install zip; then
  (cd "$app" && zip -q -X -r "../$(basename "$zip_path")" handler host.json TimerFetch EventHubSink)
else
  python3 - "$app" "$zip_path" <<'PY'
import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(folder, name)
            info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, root))
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
PY
fi

size=$(stat -c %s "$app/handler")
zip_size=$(stat -c %s "$zip_path")
echo "$kind" > "$dist/build-kind"
say "built: $kind ($target)"
say "binary: $app/handler $size bytes ($((size / 1024 / 1024)) MiB), stripped, static"
say "package: $zip_path $zip_size bytes"
say "took $(( $(date +%s) - started )) s"
