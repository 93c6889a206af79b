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
"""Run one measurement in this fresh interpreter and print its figures.

``python benchmarks/worker.py MODULE FUNCTION JSON_KWARGS``: calls
``MODULE.FUNCTION(**kwargs)`` (a module of this directory) and prints
:data:`common.RESULT_MARKER` then the JSON document it returned, so that
peak memory and imports of one measurement never mix with another's.
"""

import importlib
import json
import logging
import sys
import warnings

import common


def main(argv: list[str]) -> int:
    module_name, function_name, kwargs = argv[0], argv[1], argv[2]
    # The figures must not pay for log output or deprecation warnings.
    logging.basicConfig(level=logging.CRITICAL)
    warnings.simplefilter("ignore")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**json.loads(kwargs))
    sys.stdout.write(common.RESULT_MARKER + "\n" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
