"""The asyncio shell: lifecycle, one timer heap, carrying out the core's actions, control socket."""
