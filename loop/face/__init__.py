"""The face: what a person sees and types.

The Typer CLI (`cli`), read-only queries shared by the commands (`commands`), Rich tables and the
overview frame (`views`, `dashboard`), the interactive dashboard (`app`, `app_pair`; its data
`explore`, `model_view`, its terminal plots `plots`), the report with its plots (`report`),
progress lines (`progress`) and quiet library start-up (`quiet`). Nothing here decides anything
about a campaign: it reads the store and starts the agent.
"""
