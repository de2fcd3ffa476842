#!/bin/sh
# Renders audio/welcome.wav (media.welcome_prompt) with espeak-ng: 16 kHz mono 16-bit.
# Run from the repository root: scripts/make-welcome-prompt.sh
set -eu
text="Thank you for calling support. Please hold while we look up your account. You can press a key at any time."
tmp=$(mktemp --suffix=.wav)
trap 'rm -f "$tmp"' EXIT
espeak-ng -v en-us -s 160 -w "$tmp" "$text"
sox "$tmp" -r 16000 -c 1 -b 16 audio/welcome.wav
