#!/usr/bin/env python3
"""Fails when a function in the folders the house rules name is longer than 120 lines, or a
source file of the coordinator (server/) is longer than 500.

Checked: server/, cli/, worker/, sweep_file/ and trainer_core/train/ (.cpp files). A function is a
definition that starts at column 0 and ends at the next "}" at column 0 (clang-format puts both
there); its length counts the lines from its signature to that brace. Long functions get split
into named steps (one handler per route, one function per subcommand, option groups in mains).
Usage: scripts/check_sizes.py [repository root] [--list N]   (--list: the N longest)
"""
import os
import re
import sys

LIMIT = 120
FILE_LIMIT, FILE_FOLDER = 500, "server"
FOLDERS = ["server", "cli", "worker", "sweep_file", "trainer_core/train"]
NOT_A_FUNCTION = re.compile(r"^(namespace|struct|class|enum|union|extern|template\s*<[^>]*>\s*(struct|class))\b")


def functions(path):
    """(name, first line, length) of each function defined at column 0 of the file."""
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line or line[0].isspace() or line.startswith(("}", "#", "//")) or "(" not in line \
                or NOT_A_FUNCTION.match(line) or "=" in line.split("(")[0]:
            i += 1
            continue
        body = i  # the signature's last line, the one that opens the body
        while body < len(lines) and not lines[body].rstrip().endswith(("{", ";", "}")):
            body += 1
        if body >= len(lines) or not lines[body].rstrip().endswith("{"):
            i = body + 1  # a declaration, or a function on one line
            continue
        end = body + 1
        while end < len(lines) and lines[end] != "}" and not lines[end].startswith("};"):
            end += 1
        name = re.search(r"([A-Za-z_][A-Za-z_0-9:~]*)\s*\(", line)
        yield (name.group(1) if name else line.strip()), i + 1, end - i + 1
        i = end + 1


def main():
    args = sys.argv[1:]
    listing = 0
    if "--list" in args:
        at = args.index("--list")
        listing = int(args[at + 1])
        del args[at:at + 2]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    found = []
    for folder in FOLDERS:
        for directory, _, names in os.walk(os.path.join(root, folder)):
            for name in sorted(names):
                if name.endswith(".cpp"):
                    path = os.path.join(directory, name)
                    for fn, line, length in functions(path):
                        found.append((length, os.path.relpath(path, root), line, fn))
    found.sort(reverse=True)
    for length, path, line, fn in found[:listing]:
        print(f"  {length:4d} lines  {path}:{line}  {fn}")
    long = [f for f in found if f[0] > LIMIT]
    for length, path, line, fn in long:
        print(f"check_sizes: {path}:{line}: {fn} is {length} lines (at most {LIMIT})")
    big = []
    for directory, _, names in os.walk(os.path.join(root, FILE_FOLDER)):
        for name in sorted(names):
            if name.endswith((".cpp", ".h")):
                path = os.path.join(directory, name)
                n = sum(1 for _ in open(path, encoding="utf-8", errors="replace"))
                if n > FILE_LIMIT:
                    big.append(path)
                    print(f"check_sizes: {os.path.relpath(path, root)} is {n} lines (at most {FILE_LIMIT})")
    print(f"check_sizes: {len(found)} functions, {len(long)} over {LIMIT} lines; "
          f"{len(big)} file(s) of {FILE_FOLDER}/ over {FILE_LIMIT} lines")
    return 1 if long or big else 0


if __name__ == "__main__":
    sys.exit(main())
