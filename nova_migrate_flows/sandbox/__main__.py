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
"""``python -m nova_migrate_flows.sandbox``: the sandbox commands alone.

The same sub-commands as ``nova-migrate-flow sandbox``, for when the
project's command line is not at hand.
"""

import argparse
import sys
from collections.abc import Sequence

from oslo_config import cfg

from nova_migrate_flows import exceptions
from nova_migrate_flows.sandbox import cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sandbox sub-command; answer the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m nova_migrate_flows.sandbox",
        description="Start, inspect and stop a sandbox Nova cloud.")
    cli.add_subcommands(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(cfg.ConfigOpts(), args))
    except exceptions.NovaMigrateFlowsError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)


if __name__ == "__main__":
    sys.exit(main())
