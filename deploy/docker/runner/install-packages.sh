#!/bin/sh
# Installs the tools a job may call, in outpost/runner and outpost/agent-runner
# (one list, so the two images cannot drift apart). Run as root during
# `docker build`.
#
# Engines (OpenTofu, Terraform) and providers are not installed here: the
# agent prepares the version each workspace asks for and mounts it into the
# job. These are the tools configurations themselves reach for: git and ssh
# for module sources, curl and jq in local-exec provisioners and hooks, unzip
# for archives, ca-certificates for every HTTPS call.
set -eu

set -- bash ca-certificates curl git jq openssh-client unzip

echo "install-packages: installing $*"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
# Package lists and downloaded .debs are only needed during the install.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
