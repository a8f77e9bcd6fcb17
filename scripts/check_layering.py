#!/usr/bin/env python3
"""Fails when the project's folders include each other against the architecture.

Every C++/CUDA file belongs to a folder unit (trainer_core/<part>, server/<room>, sweep_file,
proto, worker, cli/<tool>, ...). A quoted #include of another project file is an edge between
units. Checked: no cycle between units (docs/architecture.md: dependencies point one way), the
coordinator's rooms only include rooms listed before them in server/CMakeLists.txt's order,
sweep_file/ and the clients (cli/, worker/) include nothing of server/ and link none of its
libraries, and the narrow stores stay narrow: only the coordinator's main and the API room may
include the aggregate server/storage/store.h (every other room includes the stores it uses), and
no narrow store includes another (they share only database.h and job_rows.h).
Usage: scripts/check_layering.py [repository root]
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
ROOMS = ["scheduling", "storage", "events", "results", "tuning", "provisioning", "access", "api"]  # server/CMakeLists.txt's order
# server/storage/store.h builds every store; the rooms that may see all of them at once.
STORE_AGGREGATE = "server/storage/store.h"
STORE_AGGREGATE_USERS = {"server", "server/api"}
NARROW_STORES = {"server/storage/" + n for n in
                 ("sweep_store.h", "worker_store.h", "metric_store.h", "audit.h", "allocations.h",
                  "event_store.h", "log_store.h")}
SKIP = {"build", "node_modules", ".git", "fuzz", "tests", "bench"}  # tests and tools may reach anywhere


def unit_of(path):
    parts = path.split("/")
    if parts[0] in ("trainer_core", "server", "cli") and len(parts) > 2:
        return parts[0] + "/" + parts[1]
    return parts[0]


def main():
    files = {}
    for directory, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP and not (directory == ROOT and d.startswith("build"))]
        for name in names:
            if name.endswith((".h", ".cpp", ".cu", ".cuh")):
                rel = os.path.relpath(os.path.join(directory, name), ROOT)
                files[rel] = open(os.path.join(directory, name), encoding="utf-8", errors="replace").read()
    edges, problems = {}, []
    for rel, text in files.items():
        src = unit_of(rel)
        for target in re.findall(r'^#include "([^"]+)"', text, re.M):
            resolved = target if target in files else os.path.normpath(os.path.join(os.path.dirname(rel), target))
            if resolved not in files:
                continue  # generated (orchestrator.pb.h) or a system-like header
            own_header = rel.rsplit(".", 1)[0] + ".h"
            if own_header in NARROW_STORES and resolved in NARROW_STORES and resolved != own_header:
                problems.append(f"{rel}: a narrow store includes {target}, another store")
            if resolved == STORE_AGGREGATE and src.startswith("server") and src not in STORE_AGGREGATE_USERS:
                problems.append(f"{rel}: includes {target}, every store at once: include the narrow "
                                "stores it uses (sweep_store.h, worker_store.h, metric_store.h, ...)")
            dst = unit_of(resolved)
            if dst == src:
                continue
            edges.setdefault(src, {}).setdefault(dst, rel + " -> " + target)
            if src.startswith("server/") and dst.startswith("server/"):
                a, b = src.split("/")[1], dst.split("/")[1]
                if a in ROOMS and b in ROOMS and ROOMS.index(b) > ROOMS.index(a):
                    problems.append(f"{rel}: room {a} includes {target} of room {b}, which comes after it")
            if (src == "sweep_file" or src.startswith("cli") or src == "worker") and dst.startswith("server"):
                problems.append(f"{rel}: {src} includes {target}: clients and the sweep file language use no server code")
    # The clients' targets link no coordinator library (cli/ and worker/ CMakeLists.txt).
    for cmake in ("cli/CMakeLists.txt", "worker/CMakeLists.txt"):
        for line in open(os.path.join(ROOT, cmake), encoding="utf-8"):
            if "target_link_libraries" in line and "coordinator_" in line:
                problems.append(f"{cmake}: a client links a coordinator library: {line.strip()}")
    # Cycles between units (depth-first search, reporting one file per edge of the cycle).
    state, stack = {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(edges.get(u, {})):
            if state.get(v) == "open":
                cycle = stack[stack.index(v):] + [v]
                problems.append("include cycle: " + " -> ".join(cycle) + " (" +
                                "; ".join(edges[a][b] for a, b in zip(cycle, cycle[1:])) + ")")
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for u in sorted(edges):
        if u not in state:
            visit(u)
    for p in problems:
        print("check_layering: " + p)
    print(f"check_layering: {len(files)} files, {len(edges)} folders with includes, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
