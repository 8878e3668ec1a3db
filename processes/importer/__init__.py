"""The importer: turns exported Zeebe records into the query models (DESIGN §5).

    source (engine log | Redis streams | Elasticsearch)  ->  SourceRecord batches
    projection.apply_batch(): decode -> fold into per-entity final states -> bulk upserts
                              -> derived flags -> positions -> one commit -> Channels events
    runner.Importer: the batching loop behind `manage.py import_records`, one importer per
                     (cluster, partition) at a time across processes (leases.py).

Every source feeds the same projection; see sources/base.py for the source interface.
"""
