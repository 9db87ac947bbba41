-- The writes journal: one row per part (chunk of rows or rejects) of every committed write
-- transaction, written inside that transaction: how many of its rows and rejects it sent, and how
-- many of them were already stored. The writer reads its own rows back as the transaction's
-- answer. When an answer is lost (the connection cut after COMMIT reached the server, or no reply
-- in time), the writer's next transaction for the same batch looks the lost one up by its id,
-- after taking the writer lock: found, it committed and wrote what its rows say; not found, it
-- rolled back. So the counters say what was written, once, even then.
--
-- Rows are small (about 80 bytes) and only added: one per part, so one or two per batch. Keep
-- what you like; a lost answer is looked up within minutes (the next delivery of its batch), so
-- rows older than a day can be deleted at any time:
--   DELETE FROM assets.asset_statistics_writes WHERE written_at < DATEADD(day, -1, SYSUTCDATETIME());
--
-- Design: ROUND_ROBIN with CLUSTERED INDEX (transaction_id): a transaction reads back its own rows
-- and looks up others' by id. The app's `GRANT INSERT, SELECT ON SCHEMA::assets` covers it.
-- On SQL Server (engine edition other than 6) `init-warehouse` drops the WITH clause and creates the
-- same clustered index.
CREATE TABLE assets.asset_statistics_writes
(
    [transaction_id] char(32) NOT NULL,
    [part] int NOT NULL,
    [rows_sent] bigint NOT NULL,
    [rows_existing] bigint NOT NULL,
    [rejects_sent] bigint NOT NULL,
    [rejects_existing] bigint NOT NULL,
    [written_at] datetime2(3) NOT NULL
)
WITH
(
    DISTRIBUTION = ROUND_ROBIN,
    CLUSTERED INDEX ([transaction_id])
);
