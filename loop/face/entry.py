"""The `alloop` console script: what must happen before the heavy imports, then the CLI.

Importing the CLI pulls in ASE, SQLAlchemy and friends (a second or more), and a run then
validates its config and imports torch (many seconds). A second `alloop run` or `alloop resume`
on a campaign that another process drives is refused here, from the lock alone, in a fraction
of a second. Everything else goes to `alloop.loop.face.cli.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: commands that drive a campaign (and so take its lock)
DRIVING_COMMANDS = ("run", "resume")


def campaign_file_for(name: str) -> Path:
    """The campaign file a config names when no --campaign is given: NAME.alloop."""
    return Path(f"{name}.alloop")


def refuse_if_running(campaign: str | None, config_path: Path | None = None) -> None:
    """Raise CampaignLockedError when another process holds the campaign's lock (probed, not
    taken). The campaign is `campaign`, else the one `config_path` names; anything unclear
    (unreadable config, a database URL) is left to the full checks that follow."""
    from alloop.store.lock import refuse_if_locked

    target = campaign
    if target is None and config_path is not None:
        target = _campaign_file_in(config_path)
    if target is not None and "://" not in target:
        refuse_if_locked(Path(target))


def _campaign_file_in(config_path: Path) -> str | None:
    import yaml

    from alloop.loop.errors import ConfigError
    from alloop.loop.yaml_guard import MAX_CONFIG_BYTES, load_bounded_yaml

    try:
        with open(config_path, encoding="utf-8") as fh:
            data = load_bounded_yaml(fh.read(MAX_CONFIG_BYTES + 1), str(config_path))
        name = data["campaign"]["name"]
    except (ConfigError, OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None
    return str(campaign_file_for(name)) if isinstance(name, str) else None


def driven_campaign(argv: list[str]) -> tuple[str | None, Path | None] | None:
    """(campaign, config path) of an `alloop run`/`alloop resume` command line, else None."""
    words = [a for a in argv if a not in ("-q", "--quiet")]
    if not words or words[0] not in DRIVING_COMMANDS:
        return None
    campaign, positional, rest = None, [], iter(words[1:])
    for word in rest:
        if word in ("--campaign", "-c"):
            campaign = next(rest, None)
        elif word.startswith("--campaign="):
            campaign = word.split("=", 1)[1]
        elif word.startswith("-"):
            return None  # --help or an option we do not know: the CLI answers it
        else:
            positional.append(word)
    if len(positional) != 1:
        return None
    if words[0] == "resume":
        return positional[0], None
    return campaign, Path(positional[0])


def main() -> None:
    found = driven_campaign(sys.argv[1:])
    if found is not None:
        from alloop.store.errors import CampaignLockedError

        try:
            refuse_if_running(*found)
        except CampaignLockedError as exc:
            from rich.console import Console

            from alloop.loop.face.safe_text import safe_text

            Console(stderr=True).print(
                f"[bold red]error:[/] {safe_text(str(exc))}", highlight=False, soft_wrap=True
            )
            sys.exit(1)
    from alloop.loop.face.cli import main as cli_main

    cli_main()
