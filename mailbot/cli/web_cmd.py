"""`mailbot web`: serve the staff console with uvicorn."""

from __future__ import annotations

import click


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.pass_context
def web(ctx: click.Context, host: str, port: int) -> None:
    """Serve the staff console (sign in with an account from `mailbot users add`)."""
    import threading

    import uvicorn

    from mailbot.services.console_store import open_engine
    from mailbot.services.due_times import keep_filling
    from mailbot.services.manual_reply import setup_from_settings
    from mailbot.services.search_index import keep_indexing
    from mailbot.web.app import build_app

    settings = ctx.find_root().obj.settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_engine(settings.database_url, migrate=True)
    stop = threading.Event()
    # New mail becomes searchable by its words within a minute; the intake pays nothing for it.
    replies = setup_from_settings(settings)
    threading.Thread(
        target=keep_indexing,
        args=(engine, stop, 30.0, replies.subject_prefixes),
        name="search-index",
        daemon=True,
    ).start()
    threading.Thread(
        target=keep_filling, args=(engine, settings.due, stop), name="due-times", daemon=True
    ).start()
    click.echo(f"staff console on http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        uvicorn.run(
            build_app(engine, replies=replies, due=settings.due),
            host=host,
            port=port,
            server_header=False,
            proxy_headers=False,
            log_level="warning",
        )
    finally:
        stop.set()
