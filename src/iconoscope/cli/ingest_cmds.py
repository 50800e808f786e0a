"""``iconoscope ingest [SOURCE ...]``: the sources declared in iconoscope.toml into their named graphs."""

from __future__ import annotations

import click

from iconoscope.cli import Context, pass_ctx

SHOW_ISSUES = 15


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--strict", is_flag=True, help="Stop at the first problem (malformed row, missing image, unknown "
                                             "concept): nothing is written.")
@click.option("--check-images", is_flag=True, help="Decode every local image (slower) instead of only checking "
                                                   "that the file exists.")
@pass_ctx
def ingest(ctx: Context, sources: tuple[str, ...], strict: bool, check_images: bool) -> None:
    """Ingest SOURCES (default: all declared), replacing each source's graph atomically."""
    from iconoscope.ingest import ingest_all

    ws = ctx.ws
    reports = ingest_all(ws, sources or None, strict=strict, check_images="decode" if check_images else None)
    for rep in reports:
        click.echo(rep.summary())
        for kind, n in sorted(rep.issue_counts.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {n:>7}  {kind}", err=True)
        for issue in rep.issues[:SHOW_ISSUES]:
            click.echo(f"warning: {issue}", err=True)
        if rep.n_issues > SHOW_ISSUES:
            click.echo(f"warning: … {rep.n_issues - SHOW_ISSUES} more; see "
                       f"{ws.reports_dir() / f'ingest-{rep.source}.json'}", err=True)
        if rep.ambiguous_texts:
            top = ", ".join(f"{t!r} ×{n}" for t, n in rep.ambiguous_texts.most_common(5))
            click.echo(f"  most frequent ambiguous mentions (settle them in a mapping table): {top}", err=True)
