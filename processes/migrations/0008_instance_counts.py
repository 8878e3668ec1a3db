"""Instance counters kept by PostgreSQL (processes.models.InstanceCount): the table, the triggers
that keep it exact, and its first fill from the rows already there.

Statement-level AFTER triggers with transition tables, one per event (PostgreSQL refuses transition
tables on a trigger for several events): an INSERT ... ON CONFLICT DO UPDATE fires the INSERT trigger
with the rows it inserted and the UPDATE trigger with those it updated; COPY fires the INSERT one.
Each adds per-(cluster, partition, process id, version, state) deltas in one upsert, in the writer's
transaction, in the order of the grouping columns, so that two statements lock counter rows in one order.

The partition comes from the instance's global key, as routing/keys.py decodes it: the Zeebe key is
the global key's low 58 bits and its partition id is that key shifted right by 51 (Zeebe's
Protocol.KEY_BITS, DESIGN §2). An importer writes only the keys of the partitions it leases, so two
importers of one cluster never update the same counter row. ``cluster_id`` is a plain column, not a
foreign key: deleting a cluster deletes its instances, and their DELETE trigger then updates its
counter rows, which must not have been removed by the same cascade first.

PostgreSQL only: on SQLite (the demo) the table stays empty and the selectors count live.
"""

from django.db import migrations, models

INSTANCES = "processes_processinstance"
COUNTS = "processes_instancecount"
GROUP = "cluster_id, partition_id, bpmn_process_id, version, state"

FORWARD = f"""
-- No instance row may change between the first count and the triggers taking over.
LOCK TABLE {INSTANCES} IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION processes_key_partition(global_key bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT ((global_key & ((1::bigint << 58) - 1)) >> 51)::integer $$;

CREATE FUNCTION processes_instance_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {COUNTS} AS counter ({GROUP}, count)
    SELECT cluster_id, processes_key_partition(key), bpmn_process_id, version, state, count(*)
    FROM inserted_rows
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({GROUP}) DO UPDATE SET count = counter.count + EXCLUDED.count;
    RETURN NULL;
END
$$;

CREATE FUNCTION processes_instance_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- +1 for each row as it is now, -1 as it was: rows whose counted columns did not change
    -- (position, dates, incident flags: most updates) cancel out and lock no counter row.
    INSERT INTO {COUNTS} AS counter ({GROUP}, count)
    SELECT cluster_id, partition_id, bpmn_process_id, version, state, sum(delta)
    FROM (
        SELECT cluster_id, processes_key_partition(key) AS partition_id, bpmn_process_id, version,
               state, 1 AS delta
        FROM updated_rows
        UNION ALL
        SELECT cluster_id, processes_key_partition(key), bpmn_process_id, version, state, -1
        FROM previous_rows
    ) AS changes
    GROUP BY 1, 2, 3, 4, 5
    HAVING sum(delta) <> 0
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({GROUP}) DO UPDATE SET count = counter.count + EXCLUDED.count;
    RETURN NULL;
END
$$;

CREATE FUNCTION processes_instance_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {COUNTS} AS counter ({GROUP}, count)
    SELECT cluster_id, processes_key_partition(key), bpmn_process_id, version, state, -count(*)
    FROM deleted_rows
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({GROUP}) DO UPDATE SET count = counter.count + EXCLUDED.count;
    RETURN NULL;
END
$$;

CREATE FUNCTION processes_instance_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {COUNTS};
    RETURN NULL;
END
$$;

CREATE TRIGGER processes_instance_count_insert AFTER INSERT ON {INSTANCES}
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION processes_instance_count_insert();
CREATE TRIGGER processes_instance_count_update AFTER UPDATE ON {INSTANCES}
    REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
    FOR EACH STATEMENT EXECUTE FUNCTION processes_instance_count_update();
CREATE TRIGGER processes_instance_count_delete AFTER DELETE ON {INSTANCES}
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION processes_instance_count_delete();
CREATE TRIGGER processes_instance_count_truncate AFTER TRUNCATE ON {INSTANCES}
    FOR EACH STATEMENT EXECUTE FUNCTION processes_instance_count_truncate();

-- The rows already there (an existing database is right once migrated).
DELETE FROM {COUNTS};
INSERT INTO {COUNTS} ({GROUP}, count)
SELECT cluster_id, processes_key_partition(key), bpmn_process_id, version, state, count(*)
FROM {INSTANCES}
GROUP BY 1, 2, 3, 4, 5;
"""  # noqa: S608 - constant table names, no input

BACKWARD = f"""
DROP TRIGGER IF EXISTS processes_instance_count_insert ON {INSTANCES};
DROP TRIGGER IF EXISTS processes_instance_count_update ON {INSTANCES};
DROP TRIGGER IF EXISTS processes_instance_count_delete ON {INSTANCES};
DROP TRIGGER IF EXISTS processes_instance_count_truncate ON {INSTANCES};
DROP FUNCTION IF EXISTS processes_instance_count_insert();
DROP FUNCTION IF EXISTS processes_instance_count_update();
DROP FUNCTION IF EXISTS processes_instance_count_delete();
DROP FUNCTION IF EXISTS processes_instance_count_truncate();
DROP FUNCTION IF EXISTS processes_key_partition(bigint);
"""


def install_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def remove_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("processes", "0007_cluster_record_source_help"),
    ]

    operations = [
        migrations.CreateModel(
            name="InstanceCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("cluster_id", models.PositiveSmallIntegerField()),
                ("partition_id", models.PositiveSmallIntegerField()),
                ("bpmn_process_id", models.CharField(max_length=255)),
                ("version", models.IntegerField()),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("completed", "Completed"),
                            ("terminated", "Terminated"),
                        ],
                        max_length=16,
                    ),
                ),
                ("count", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("cluster_id", "partition_id", "bpmn_process_id", "version", "state"),
                        name="instance_count_unique",
                    )
                ],
            },
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
