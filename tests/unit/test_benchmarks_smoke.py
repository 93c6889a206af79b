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
"""The benchmark command runs and writes its figures (never their speed)."""

import json
import pathlib
import subprocess
import sys

RUN = pathlib.Path(__file__).parents[2] / "benchmarks" / "run.py"


def test_quick_b2_writes_valid_json(tmp_path):
    output = tmp_path / "figures.json"

    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "b2", "--json",
         str(output)],
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert done.returncode == 0, done.stderr
    document = json.loads(output.read_text())
    assert document["quick"] is True
    assert set(document["machine"]) >= {"nproc", "cpu", "python"}
    b2 = document["benchmarks"]["b2"]
    contenders = {row["contender"] for row in b2["rows"]}
    assert contenders == {"runner", "runner+sqlite", "single-flow", "loop"}
    for row in b2["rows"]:
        assert row["migrated"] == row["servers"]
    assert b2["goals"]
