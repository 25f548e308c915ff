"""`alloop pool --list`: what an FG pool can be built from (metals, families, molecules), so
that a config's `pool.fg` section is written without guessing names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from alloop.loop.bridges.pool import FGCatalogue
from alloop.loop.face.safe_text import safe_rich

#: how many molecule keys of each family `catalogue_view` shows as examples
EXAMPLES = 3


def catalogue_view(cat: FGCatalogue) -> Group:
    """The catalogue as Rich renderables: the data folder, the metals, one row per family
    (molecules, example keys), and a config line that uses them."""
    n = sum(len(keys) for keys in cat.families.values())
    head = Text.assemble(("FG reference data ", "bold"), safe_rich(str(cat.root)))
    metals = Text.assemble((f"metals ({len(cat.metals)}): ", "bold"), " ".join(cat.metals))
    table = Table(title=f"families ({len(cat.families)}, {n} molecules)", title_justify="left",
                  show_edge=False)  # fmt: skip
    table.add_column("family")
    table.add_column("molecules", justify="right")
    table.add_column("e.g. (adsorbate keys)")
    for family, keys in cat.families.items():
        table.add_row(safe_rich(family), str(len(keys)), safe_rich(", ".join(keys[:EXAMPLES])))
    two = list(cat.families)[:2]
    example = (f"pool: {{fg: {{metals: [{', '.join(cat.metals[:2])}], families: "
               f"[{', '.join(two)}], max_molecules: 20}}}}")  # fmt: skip
    hint = Text.assemble(("in a config: ", "bold"), safe_rich(example))
    note = Text("(leave out metals or families for all of them; a pair is METAL|family/code)")
    return Group(head, metals, table, hint, note)


def pool(
    list_: Annotated[
        bool, typer.Option("--list", "-l", help="List the FG metals and families.")
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="FG data folder (default: $ALLOOP_FG_ROOT, "
            "../shared/data/fg beside the checkout, or the copy alloop ships).",
        ),
    ] = None,
) -> None:
    """List what a pool can be built from: the FG metals and molecule families.

    With example adsorbate keys per family and a config line that uses them.

    Example: [bold]alloop pool --list[/]
    """
    from alloop.loop.bridges.pool import fg_catalogue
    from alloop.loop.face.cli import fail, guard, out

    if not list_:
        raise fail("say what to do: `alloop pool --list` lists the FG metals and families")
    with guard():
        cat = fg_catalogue(root)
    out().print(catalogue_view(cat))
