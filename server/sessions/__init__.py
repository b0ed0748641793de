"""Conversation memory: each session's recent turns, so a follow-up can refer to what was said before.

``store.py`` defines a :class:`Turn` and two stores behind one interface -- in-process (the embedded default,
``scripts/run.sh``) and Redis (a cluster: every pod reads the same turns). A store outage never fails a chat:
the pipeline answers without memory and says so (``degraded: session_unavailable``).
"""

from server.sessions.store import MemorySessionStore, RedisSessionStore, SessionStore, Turn, build_session_store

__all__ = ["MemorySessionStore", "RedisSessionStore", "SessionStore", "Turn", "build_session_store"]
