#!/usr/bin/env bash
# Installs what the build, the demo and the tests need, with apt-get, when it is missing.
# Idempotent: a second run installs nothing.
set -euo pipefail

packages=(
  pkg-config cmake libopus-dev   # audiopus (links the system libopus)
  sip-tester                     # sipp: scenario and load tests
  baresip-core                   # a real softphone for integration tests
  linphone-cli                   # a second softphone code base (linphonec, headless)
  kamailio                       # dispatcher in front of replicas
  espeak-ng                      # offline text-to-speech
  sox                            # audio measurement and conversion
  tshark                         # RTP captures: bench/ pacing, the Linphone Opus test
  iproute2                       # network namespaces for tests with foreign addresses
  sqlite3                        # inspecting the outbox by hand
  curl                           # the demo reads the simulator's comments
  openssl                        # test CAs and certificates for the TLS tests
  g++                            # libFuzzer (built by cargo-fuzz for the fuzz smoke run)
  fail2ban                       # fail2ban-regex: the security-event filter test
  systemd                        # systemd-analyze: the unit file check
  python3 python3-venv           # a virtual environment for SIPVicious (below)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust from rustup first" >&2; exit 1; }

# SIPVicious (svmap, svwar) for the scanner tests, from PyPI into a virtual environment
# under target/ (kept between runs). A failed install fails the setup.
sipvicious="$(cd "$(dirname "$0")/.." && pwd)/target/sipvicious"
if [ ! -x "$sipvicious/bin/sipvicious_svwar" ]; then
  echo "setup: installing sipvicious into $sipvicious"
  rm -rf "$sipvicious"
  python3 -m venv "$sipvicious"
  "$sipvicious/bin/pip" install -q sipvicious
  [ -x "$sipvicious/bin/sipvicious_svwar" ] || { echo "setup: sipvicious did not install" >&2; exit 1; }
fi
