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
"""The sandbox cloud: a real Nova on 127.0.0.1, for tests, demos, benchmarks.

:mod:`.control` starts, inspects and stops one from another process (the
command line hook is in :mod:`.cli`); :mod:`.server` is the process that
runs Nova's own code (API, conductor, scheduler, Placement and N
nova-compute services with the fake virt driver of :mod:`.driver`).

Importing this package, :mod:`.control` or :mod:`.cli` does not import
Nova.
"""
