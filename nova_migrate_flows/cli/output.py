# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Printing results: plain tables for people, JSON for scripts.

JSON goes to standard output and nothing else does; tables go to standard
output too, and everything meant for a watching person (progress, logs,
errors) goes to standard error.
"""

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

FORMATS = ("table", "json")


def add_format_argument(parser: Any) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default="table",
        help="Output format: a table for people (default), or JSON for "
        "scripts (on standard output, alone).",
    )


def print_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(data, out, indent=2, sort_keys=False, default=str)
    out.write("\n")
    out.flush()


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: TextIO | None = None,
) -> None:
    """Print a table in the style of the OpenStack clients."""
    out = out or sys.stdout
    text = [[cell(v) for v in row] for row in rows]
    widths = [
        max([len(h)] + [len(r[i]) for r in text])
        for i, h in enumerate(headers)
    ]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(
            v.ljust(w) for v, w in zip(values, widths, strict=True)
        ) + " |"

    out.write(rule + "\n" + line(list(headers)) + "\n" + rule + "\n")
    for row in text:
        out.write(line(row) + "\n")
    out.write(rule + "\n")
    out.flush()


def short_id(value: str | None) -> str:
    return (value or "-")[:13]
