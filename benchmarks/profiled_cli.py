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
"""``nova-migrate-flow`` under a wall-clock profile (B4 ``--profile``).

``python profiled_cli.py STATS_FILE ARGS...`` runs the command with ARGS,
its imports included, with every thread under cProfile timed by
``time.perf_counter`` (wall-clock, so time spent waiting counts), and
writes the merged statistics to STATS_FILE as it ends.
"""

import pstats
import sys
import time

import common


def main(stats_file: str, argv: list[str]) -> int:
    with common.every_thread_profiled(time.perf_counter) as (main_profile,
                                                              profiles):
        main_profile.enable()
        try:
            from nova_migrate_flows.cli import main as cli
            code = cli.main(argv)
        finally:
            main_profile.disable()
            stats = pstats.Stats(main_profile)
            for profile in list(profiles):
                # A thread still running has no statistics to give yet.
                try:
                    stats.add(profile)
                except TypeError:
                    continue
            stats.dump_stats(stats_file)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
