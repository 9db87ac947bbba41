-- One row that every writer updates as the FIRST statement of its transaction, so writers run one
-- at a time and no uncommitted write exists while a writer probes for keys already stored.
--
-- Why: a dedicated pool runs READ UNCOMMITTED unless READ_COMMITTED_SNAPSHOT is ON
-- ("Use transactions in dedicated SQL pool",
-- https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/sql-data-warehouse-develop-transactions),
-- so a `WHERE NOT EXISTS` probe sees other sessions' uncommitted rows (skips rows that a failing
-- transaction then rolls back: loss) and two concurrent probes both miss the same key (duplicates;
-- that happens under READ COMMITTED too). No enforced unique key exists there to catch it, and
-- sp_getapplock does not exist there.
--
-- How the UPDATE serializes: "Locking behavior" for SQL Server PDW
-- (https://learn.microsoft.com/sql/analytics-platform-system/locking-behavior) says table-level
-- locks are taken on the control node, that "INSERT and UPDATE use a SharedUpdate lock" (these do
-- not conflict with each other), and that PDW "relies on the underlying SQL Server engine to
-- implement locking and concurrency control". The serializing lock is therefore the row lock: the
-- single row lives in one distribution, whose SQL Server engine gives the first UPDATE an exclusive
-- (X) lock on it (data changes take U/X locks whatever the read isolation) and keeps it until the
-- transaction ends; every other writer's UPDATE waits there. On SQL Server the same row X lock does
-- the same. A writer whose connection died holds the row until the server rolls it back, so its
-- resend waits instead of probing past rows that are about to vanish.
--
-- Exactly one row: `init-warehouse` inserts it when the table is empty and reports any other count.
-- With several rows (several distributions) two writers could each lock one row and wait for the
-- other across nodes.
--
-- Design: ROUND_ROBIN HEAP. The table holds one row, so any design is a one-row scan; not
-- REPLICATE (a replicated table is rebuilt after each write: "Design guidance for replicated
-- tables", https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/design-guidance-for-replicated-tables).
-- The cost: batches commit one after another. At about 26 ms per 1,000-row batch with its rows
-- staged by bulk load (0.7 s as SQL text; measured on a SQL Server-compatible engine) that is about
-- 33,000 rows/s for all writers together (1,300 as text): far more than 2,000 assets every 5
-- minutes need (under 7 rows/s), so the cost shows only when catching up a backlog.
-- On SQL Server (engine edition other than 6) `init-warehouse` drops the WITH clause.
CREATE TABLE assets.asset_statistics_writer_lock
(
    [lock_id] int NOT NULL,
    [last_write_at] datetime2(3) NULL
)
WITH
(
    DISTRIBUTION = ROUND_ROBIN,
    HEAP
);
