"""The Harvester data layer behind ``DBProxy``: engine, schema and one module per concern.

Layout: :mod:`engine` (SQLite today; the only module that knows the database), :mod:`schema`
(tables from the specs' ``attributesWithTypes``), :mod:`base` (transactions, error convention),
then one mixin per concern: :mod:`infra`, :mod:`jobs`, :mod:`job_cycles`, :mod:`workers`,
:mod:`worker_cycles`, :mod:`jobs_workers`, :mod:`files`, :mod:`queues`, :mod:`stats`,
:mod:`commands`, :mod:`service`, :mod:`lock_recovery`. ``harvestercore.db_proxy.DBProxy`` combines them.
"""
