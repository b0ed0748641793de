"""The build's retrieval side: the chunked, embedded index (``builder``, ``chunking``) and the SQLite
catalog the service reads (``catalog``). The service only opens what these write
(``server/retrieval/index_loader.py``, ``server/retrieval/store.py``)."""
