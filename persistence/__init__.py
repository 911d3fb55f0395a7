"""PostgreSQL: the embedded server's lifecycle, migrations, and one module per table family.

Every module here takes a psycopg connection (or a URL) passed in by its owner; nothing holds a
global connection. Database failures are classified once, in ``persistence.errors``.
"""
