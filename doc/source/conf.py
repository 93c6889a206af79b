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
"""Sphinx configuration of the nova-migrate-flows documentation.

The references are generated from the code, so they cannot drift from it:
the options (``oslo_config.sphinxext`` and ``sphinxconfiggen``), the task
plugins (``stevedore.sphinxext``), the command line (``_exts/nmf_reference``,
which builds the real parser) and the Python API (``autodoc``). Build with
warnings as errors::

    sphinx-build -W -b html doc/source doc/build/html
"""

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath("_exts"))

# Importing TaskFlow's SQL persistence imports eventlet where it is installed
# (the sandbox extra brings it), which warns that it is deprecated. Not ours
# to fix, and not a documentation problem: keep the build output clean.
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="eventletutils module is deprecated")

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "oslo_config.sphinxext",
    "oslo_config.sphinxconfiggen",
    "stevedore.sphinxext",
    "openstackdocstheme",
    "nmf_reference",
]

project = "nova-migrate-flows"
copyright = "2026, The nova-migrate-flows Authors"
author = "The nova-migrate-flows Authors"

# The sample configuration file, written to _static/ at every build from
# the same generator configuration as 'tox -e genconfig'.
config_generator_config_file = (
    "../../etc/nova-migrate-flows/nova-migrate-flows-config-generator.conf"
)
sample_config_basename = "_static/nova-migrate-flows"

templates_path = []
exclude_patterns = ["examples/**"]
source_suffix = {".rst": "restructuredtext"}
master_doc = "index"
pygments_style = "native"
add_module_names = False

# Show the class signature with the class, and the members in source order.
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "description"
autodoc_class_signature = "separated"

# -- openstackdocstheme ---------------------------------------------------

openstackdocs_repo_name = "openstack/nova-migrate-flows"
openstackdocs_bug_project = "nova-migrate-flows"
openstackdocs_bug_tag = "doc"
openstackdocs_auto_name = False
openstackdocs_use_storyboard = False

# -- Options for HTML output -------------------------------------------------

html_theme = "openstackdocs"
html_static_path = ["_static"]
html_title = "nova-migrate-flows"
