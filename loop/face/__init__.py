"""The face: what a person sees and types.

The Typer CLI (`cli`), read-only queries shared by the commands (`commands`), Rich tables and the
dashboard (`views`, `dashboard`), the report with its plots (`report`) and progress lines
(`progress`). Nothing here decides anything about a campaign: it reads the store and starts the
agent.
"""
