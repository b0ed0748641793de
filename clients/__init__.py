"""MangaAssist client SDK (sync + asyncio) and the ``mangaassist`` CLI."""

from clients.errors import MangaAssistError
from clients.sdk import AsyncMangaAssistClient, MangaAssistClient

__all__ = ["AsyncMangaAssistClient", "MangaAssistClient", "MangaAssistError"]
