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
"""``nova-migrate-flow``: the command line.

Start-up follows the order of every OpenStack service: oslo.log's options,
then the configuration (``--config-file``, ``--config-dir`` and the usual
default locations), then logging. Errors are mapped to exit codes here and
nowhere else, and printed as one line on standard error (with the trace
only under ``--debug``).

A command imports only what it uses: the command modules define their
parsers with light imports, and each handler imports the engine, the
persistence and openstacksdk when it runs, so that ``--help`` or
``migration-list`` never loads TaskFlow. ``tests/unit/test_cli_imports.py``
keeps it so.
"""

import gc
import logging as std_logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg
from oslo_log import log

import nova_migrate_flows
from nova_migrate_flows import exceptions, opts
from nova_migrate_flows.cli import (
    distributed,
    flows,
    maintenance,
    migrations,
    moves,
    tasks,
)
from nova_migrate_flows.compute import microversions
from nova_migrate_flows.exceptions import ExitCode
from nova_migrate_flows.sandbox import cli as sandbox_cli

PROJECT = opts.PROJECT
PROG = "nova-migrate-flow"
DESCRIPTION = (
    "Move OpenStack Nova instances between compute hosts safely: checked "
    "before, throttled like Nova, watched to a verified end, rolled back on "
    f"failure. Works with {microversions.OLDEST_RELEASE} (compute API "
    f"{microversions.OLDEST_SUPPORTED}) and later."
)
EPILOG = (
    "Exit codes: 0 success; 1 the operation ran but some servers failed "
    "(each was left safe, unless its reason says NOT left safe); 2 bad "
    "input or configuration (nothing was changed); 3 interrupted; 4 Nova "
    "unreachable, or authentication or authorisation failed."
)

COMMAND_MODULES = (moves, maintenance, migrations, flows, distributed,
                   tasks)


def add_command_parsers(subparsers: Any) -> None:
    for module in COMMAND_MODULES:
        module.add_parsers(subparsers)
    sandbox_cli.add_command_parser(subparsers)


def make_conf() -> cfg.ConfigOpts:
    """A ConfigOpts with every option of the tool registered."""
    conf = cfg.ConfigOpts()
    log.register_options(conf)
    conf.set_default("use_stderr", True)
    # keystoneauth warns about what the error line then says anyway.
    log.set_defaults(default_log_levels=log.get_default_log_levels() + [
        "keystoneauth=ERROR",
        "alembic=WARN",
    ])
    opts.register_opts(conf)
    conf.register_cli_opt(cfg.SubCommandOpt(
        "command",
        title="commands",
        help="Run 'nova-migrate-flow COMMAND --help' for a command's "
        "arguments.",
        handler=add_command_parsers,
    ))
    return conf


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nova-migrate-flow`` with ``argv``; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    conf = make_conf()
    debug = "--debug" in args or "-d" in args
    try:
        try:
            conf(args, project=PROJECT, prog=PROG,
                 version=nova_migrate_flows.__version__,
                 description=DESCRIPTION, epilog=EPILOG)
        except cfg.ConfigFilesNotFoundError as exc:
            raise exceptions.ConfigurationError(
                f"configuration file not found: {', '.join(exc.config_files)}"
                "; check --config-file"
            ) from None
        except cfg.ConfigFileParseError as exc:
            raise exceptions.ConfigurationError(
                f"configuration file {exc.config_file} cannot be parsed: "
                f"{exc.msg}"
            ) from None
        except cfg.ConfigDirNotFoundError as exc:
            raise exceptions.ConfigurationError(
                f"configuration directory not found: {exc.config_dir}"
            ) from None
        except (cfg.Error, ValueError) as exc:
            raise exceptions.ConfigurationError(
                f"configuration: {_first_line(exc)}"
            ) from None
        opts.validate(conf)
        log.setup(conf, PROJECT, version=nova_migrate_flows.__version__)
        std_logging.captureWarnings(True)
        return int(conf.command.func(conf, conf.command))
    except exceptions.NovaMigrateFlowsError as exc:
        return _fail(exc, exc.exit_code, debug)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return ExitCode.INTERRUPTED
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    finally:
        conf.reset()


def _fail(exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"{PROG}: error: {_first_line(exc)}\n")
    sys.stderr.flush()
    return code


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split("\n")[0].split())


def block_eventlet() -> None:
    """Make ``import eventlet`` fail in this process, unless it is loaded.

    TaskFlow, futurist and oslo.utils import eventlet when it is installed
    (``taskflow.utils.eventlet_utils``, ``taskflow.engines`` through
    ``oslo_utils.eventletutils``, ``futurist._utils``) only to find out
    whether it is there, and each takes an ``ImportError`` as "not
    installed". The tool never uses green threads, so the command line
    spares itself the import (a fifth of a second) and its side effects.
    Only for a process the command line owns: a service that embeds the
    library decides for itself.
    """
    sys.modules.setdefault("eventlet", None)  # type: ignore[arg-type]


def leave_to_the_system() -> None:
    """Leave what the process built to the operating system at its exit.

    When the interpreter exits it tears its objects down one by one and
    collects the garbage of the modules it clears, a third of a second
    after a command that ran a flow (TaskFlow, SQLAlchemy, openstacksdk
    and oslo build large graphs of objects); frozen, the collector leaves
    them alone and the operating system frees the memory at once. Output
    is flushed and exit handlers run as before. Only for a process the
    command line owns, as it ends.
    """
    gc.freeze()


def console() -> None:
    """The console script's entry point."""
    block_eventlet()
    code = main()
    leave_to_the_system()
    sys.exit(code)
