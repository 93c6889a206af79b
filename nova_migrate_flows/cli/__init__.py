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
"""The command line of nova-migrate-flows."""

import warnings

# oslo.utils (imported by TaskFlow) probes for eventlet, which warns that
# it is deprecated wherever the sandbox extra installed it. This tool never
# uses eventlet; keep the warning off the operator's terminal.
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
