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
"""Kinds of move: what a live migration, a cold migration, a resize or an
evacuation is, each in one object, and the plugins that add more.

See :mod:`nova_migrate_flows.moves.base` for what a kind says,
:mod:`nova_migrate_flows.moves.builtin` for the four kinds of Nova that this
project ships, :mod:`nova_migrate_flows.moves.registry` for how kinds are
found (the ``nova_migrate_flows.moves`` entry points) and
:mod:`nova_migrate_flows.moves.planning` for which kind an operation uses
for each server.
"""
