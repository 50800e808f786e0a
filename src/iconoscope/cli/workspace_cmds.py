"""``iconoscope init DIR``: a new workspace with a commented config and its folders."""

from __future__ import annotations

from pathlib import Path

import click

from iconoscope.config import CONFIG_NAME
from iconoscope.errors import ConfigError
from iconoscope.init_template import TEMPLATE
from iconoscope.workspace import FOLDERS, slug


def init_workspace(root: Path, name: str | None = None, force: bool = False) -> Path:
    """Create ``root/iconoscope.toml`` and the folders; refuses to overwrite an existing config."""
    root = Path(root)
    cfg = root / CONFIG_NAME
    if cfg.exists() and not force:
        raise ConfigError(f"{cfg}: already exists (use --force to overwrite)")
    root.mkdir(parents=True, exist_ok=True)
    for f in FOLDERS:
        (root / f).mkdir(exist_ok=True)
    cfg.write_text(TEMPLATE.format(name=slug(name or root.resolve().name).lower()), encoding="utf-8")
    return cfg


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Collection name (default: the folder name).")
@click.option("--force", is_flag=True, help="Overwrite an existing iconoscope.toml.")
def init(directory: Path, name: str | None, force: bool) -> None:
    """Create a workspace in DIRECTORY: iconoscope.toml (commented) and its folders."""
    cfg = init_workspace(directory, name, force)
    click.echo(f"wrote {cfg}")
