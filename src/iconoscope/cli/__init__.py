"""The ``iconoscope`` command: one verb per pipeline operation (the CLI contract in ARCHITECTURE.md).

Verbs are loaded lazily, so ``iconoscope sparql`` starts in a fraction of a second and never imports torch.
Each verb module is thin: it parses options, calls the library and prints; the web app calls the same functions.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from iconoscope import __version__
from iconoscope.errors import IconoscopeError

# verb -> "module:attribute" (modules under iconoscope.cli)
COMMANDS: dict[str, str] = {
    "init": "workspace_cmds:init",
    "vocab": "vocab_cmds:vocab",
    "ingest": "ingest_cmds:ingest",
    "sparql": "graph_cmds:sparql",
    "rules": "graph_cmds:rules",
    "labels": "labels_cmds:labels",
    "layers": "learn_cmds:layers",
    "embed": "learn_cmds:embed",
    "train": "learn_cmds:train",
    "eval": "learn_cmds:eval_",
    "predict": "learn_cmds:predict",
    "export": "enrich_cmds:export",
    "search": "enrich_cmds:search",
    "audit": "enrich_cmds:audit",
    "suggest-related": "enrich_cmds:suggest_related",
    "fill": "multimodal_cmds:fill",
    "concepts": "multimodal_cmds:concepts",
    "similar": "explore_cmds:similar",
    "duplicates": "explore_cmds:duplicates",
    "clusters": "explore_cmds:clusters",
    "map": "explore_cmds:map_",
    "feedback": "explore_cmds:feedback",
    "zero-shot": "explore_cmds:zero_shot",
    "index": "explore_cmds:index",
    "serve": "serve_cmds:serve",
    "demo": "demo_cmds:demo",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            mod = importlib.import_module(f"iconoscope.cli.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"iconoscope.cli.{module}":
                return None
            raise
        return getattr(mod, attr, None)


class Context:
    """What every verb gets: the workspace folder, opened on first use."""

    def __init__(self, workspace: Path):
        self.workspace_path = workspace
        self._ws = None

    @property
    def ws(self):  # type: ignore[no-untyped-def]
        from iconoscope.workspace import Workspace

        if self._ws is None:
            self._ws = Workspace(self.workspace_path)
        return self._ws

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()


pass_ctx = click.make_pass_decorator(Context)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-w", "--workspace", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              envvar="ICONOSCOPE_WORKSPACE", show_default=True, help="The workspace folder (holds iconoscope.toml).")
@click.version_option(__version__, prog_name="iconoscope")
@click.pass_context
def cli(ctx: click.Context, workspace: Path) -> None:
    """Iconoscope: enrich image collections with deep learning and knowledge graphs."""
    obj = Context(workspace)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


def _quiet_progress_when_logged() -> None:
    """Progress bars redraw for a person at a terminal; in a log file (CI, cron, nohup) one line every 30 s is
    enough. tqdm reads TQDM_* defaults when it is first imported, so this runs before any verb imports it."""
    import os

    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_MININTERVAL", "30")


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps our errors to exit codes (2 config/usage, 1 failure) with a message on stderr."""
    _quiet_progress_when_logged()
    try:
        cli.main(args=argv, prog_name="iconoscope", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except IconoscopeError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
