#!/usr/bin/env bash
# What the benches need beyond npm: their peers' servers (Debian packages).
set -euo pipefail
apt-get update -qq && apt-get install -y -qq redis-server
