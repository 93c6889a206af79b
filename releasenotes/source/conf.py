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
"""Sphinx configuration of the nova-migrate-flows release notes.

reno reads the notes from releasenotes/notes/ in the git history (a note
must be committed to appear). Build with warnings as errors::

    sphinx-build -W -b html releasenotes/source releasenotes/build/html
"""

# -- General configuration ---------------------------------------------------

extensions = [
    "reno.sphinxext",
    "openstackdocstheme",
]

project = "nova-migrate-flows Release Notes"
copyright = "2026, The nova-migrate-flows Authors"
author = "The nova-migrate-flows Authors"

templates_path = []
source_suffix = {".rst": "restructuredtext"}
master_doc = "index"
exclude_patterns = []
pygments_style = "native"

# The release notes are versioned by reno from the git tags, not by pbr.
version = ""
release = ""

# -- openstackdocstheme ---------------------------------------------------

openstackdocs_repo_name = "openstack/nova-migrate-flows"
openstackdocs_bug_project = "nova-migrate-flows"
openstackdocs_bug_tag = "releasenotes"
openstackdocs_auto_name = False
openstackdocs_use_storyboard = False

# -- Options for HTML output -------------------------------------------------

html_theme = "openstackdocs"
html_static_path = []
