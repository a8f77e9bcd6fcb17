# Sourced by demo.sh and reproduce.sh: starts a coordinator on 127.0.0.1 (ports chosen by the OS)
# with its database, checkpoints and log in DIR, waits until it listens, and sets `coordinator`
# (its pid), `grpc_port`, `http_port` and SWEEP_COORDINATOR for sweepctl.
#   start_local_coordinator DIR [setsid]    # setsid: the coordinator outlives the script
start_local_coordinator() {
  local dir=$1 detach=${2:-}
  rm -f "$dir/ports.json"
  ${detach:+setsid} build/server/coordinator --listen 127.0.0.1:0 --http 127.0.0.1:0 --db "$dir/sweeps.db" \
    --checkpoint-root "$dir/checkpoints" --ports-file "$dir/ports.json" >"$dir/coordinator.log" 2>&1 &
  coordinator=$!
  for _ in $(seq 100); do [[ -s "$dir/ports.json" ]] && break; sleep 0.1; done
  if [[ ! -s "$dir/ports.json" ]]; then
    echo "the coordinator did not start:" >&2
    cat "$dir/coordinator.log" >&2
    return 1
  fi
  grpc_port=$(sed 's/.*"grpc": \([0-9]*\).*/\1/' "$dir/ports.json")
  http_port=$(sed 's/.*"http": \([0-9]*\).*/\1/' "$dir/ports.json")
  export SWEEP_COORDINATOR=127.0.0.1:$grpc_port
}
