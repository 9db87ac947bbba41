-- Poison events: the raw body, why it could not become a row, and where it sat in Event Hubs.
-- Bodies over the writer's cap are stored truncated; the reason then gives the full length and the
-- body's SHA-256.
--
-- Key: a reject is the same one again when its hub (event_hub_namespace, event_hub_name), partition,
-- sequence number and enqueued time are all equal: then a redelivery does not store it twice. A
-- recreated hub numbers its events from 0 again (with later enqueued times), and a second hub in
-- the same database has its own numbers (and names), so neither is taken for another's events. A
-- reject missing any part of its key is always stored (NULL equals nothing). The two hub columns
-- came later: `init-warehouse` adds them to an existing table (ALTER TABLE ... ADD), and the writer
-- refuses to write, naming `init-warehouse`, while they are missing.
--
-- Design: ROUND_ROBIN with CLUSTERED INDEX (partition_id, sequence_number). Rejects are few and join
-- nothing, so no hash key ("Distributed tables design guidance": round-robin "if there is no obvious
-- joining key", https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/sql-data-warehouse-tables-distribute).
-- The writer probes (partition_id, sequence_number) before each insert; the clustered index keeps
-- that probe a seek even in a year when a source change turns every event into a reject. Not a
-- clustered columnstore: it does not take nvarchar(max) ("Indexing tables in dedicated SQL pool",
-- https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/sql-data-warehouse-tables-index).
-- On SQL Server `init-warehouse` drops the WITH clause and creates the same clustered index.
CREATE TABLE assets.asset_statistics_rejects
(
    [id_reject] bigint IDENTITY(1,1),
    [received_at] datetime2(3) NOT NULL,
    [reason_code] varchar(32) NOT NULL,
    [reason] nvarchar(4000) NOT NULL,
    [raw_body] nvarchar(max) NOT NULL,
    [partition_id] varchar(64),
    [event_offset] varchar(64),
    [sequence_number] bigint,
    [enqueued_time] datetime2(3),
    [event_hub_namespace] varchar(256),
    [event_hub_name] varchar(256)
)
WITH
(
    DISTRIBUTION = ROUND_ROBIN,
    CLUSTERED INDEX ([partition_id], [sequence_number])
);
