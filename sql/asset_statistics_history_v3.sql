-- The seed's table (same 14 columns, same names), in a design whose idempotency probe costs what the
-- batch costs, not what the history costs. One deliberate type change: nvarchar instead of varchar,
-- so non-Latin names survive (a varchar column stores them as '?'). The handler also writes into an
-- existing seed table (varchar, ROUND_ROBIN HEAP); `init-warehouse` then warns and docs/sql-warehouse.md
-- shows the migration (CTAS into this design, then RENAME OBJECT).
--
-- The workload: one writer at a time (see asset_statistics_writer_lock.sql) appends 100 to 2,000
-- rows per CoinCap tick, every few minutes; 10 to 210 million rows a year. Before each insert it
-- probes `WHERE t.id = s.id AND t.runtime_timestamp = s.runtime_timestamp AND t.runtime_timestamp
-- >= <earliest in the batch>`. Readers are analytics: per asset over time, per time window.
--
-- Index: CLUSTERED INDEX (runtime_timestamp, id).
--   "Indexing tables in dedicated SQL pool" (https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/sql-data-warehouse-tables-index):
--   a heap suits staging tables, and "Cheat sheet for dedicated SQL pool" (https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/cheat-sheet)
--   says of a heap "any lookup scans the full table": that is the seed's design, where every batch
--   reads all history. A clustered index is the cheat sheet's fit for "tables with up to 100 million
--   rows" and for "large tables (more than 100 million rows) with only 1-2 columns heavily used":
--   the probe uses exactly two, and the index page says clustered indexes "may outperform clustered
--   columnstore tables when a single row needs to be quickly retrieved" with "a highly selective
--   filter on the clustered index column". Leading with runtime_timestamp makes the batch's time
--   bound a range seek that skips all older history, and puts every new row at the end of the
--   index (time only grows), so trickle inserts do not split pages in the middle.
--   Not a clustered columnstore (the default): the same page says columnstore reaches good
--   compression only past 60 million rows and that "small or trickle load operations" leave rows in
--   delta row groups (rowstore, closed at 1,048,576 rows per distribution); at 10 million rows a year
--   over 60 distributions (about 170,000 rows per distribution) our rows would sit in delta stores
--   for years, which the probe scans.
-- Partitioning: none. "Partitioning tables in dedicated SQL pool" (https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/sql-data-warehouse-tables-partition):
--   "a minimum of 1 million rows per distribution and partition" for columnstore, and the cheat
--   sheet: partition "when you have a large fact table (greater than 1 billion rows)". Our index
--   already prunes by time; add monthly or yearly partitions with CTAS when the table nears a billion
--   rows or old data must be switched out.
-- Distribution: HASH(id).
--   "Distributed tables design guidance" (https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/sql-data-warehouse-tables-distribute):
--   hash-distribute when the table "has frequent insert, update, and delete operations" or is over
--   2 GB (about 30 GB a year at 2,000 assets), on a column "used in JOIN, GROUP BY, DISTINCT, OVER,
--   and HAVING clauses", which is not a date ("all data for the same date lands in the same
--   distribution": every row of a tick shares its timestamp) and has no NULLs. id is the probe's
--   join column and the per-asset GROUP BY/OVER (PARTITION BY id ORDER BY runtime_timestamp) column
--   of the analytics, so both run without data movement. The trade-offs, stated: the guidance wants
--   "at least 60 unique values" (100 assets is just above, so distributions are uneven until the
--   asset list grows: check with DBCC PDW_SHOWSPACEUSED), and the cheat sheet says "don't distribute
--   on varchar format"; there is no numeric asset key in the data. The guidance accepts the first:
--   "Sometimes the benefit of having the minimal data movement might outweigh the impact of having
--   data skew." If skew hurts your queries, CTAS to ROUND_ROBIN with the same clustered index: the
--   probe stays bounded (the index bounds it; the distribution only decides where the batch's rows
--   travel).
-- Uniqueness: in a dedicated pool, kept by the writer. A pool enforces no UNIQUE constraint (only
--   NOT ENFORCED ones: "Primary key, foreign key, and unique key using dedicated SQL pool",
--   https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/sql-data-warehouse-table-constraints);
--   the writer's lock and probe keep one row per (id, runtime_timestamp). On SQL Server engines
--   (SQL Server, Azure SQL Database) `init-warehouse` makes the clustered index UNIQUE, so the
--   database itself refuses a second row per key ("CREATE INDEX (Transact-SQL)"); a writer that
--   meets a duplicate-key error (2601, 2627) sends its batch again with the database picking one
--   row per key (see src/warehouse/sql/refusals.rs).
-- CREATE TABLE (Azure Synapse Analytics): https://learn.microsoft.com/sql/t-sql/statements/create-table-azure-sql-data-warehouse
-- On SQL Server engines (engine edition other than 6) `init-warehouse` drops the WITH clause and
-- creates the index with CREATE UNIQUE CLUSTERED INDEX [cix_asset_statistics_history_v3].
CREATE TABLE assets.asset_statistics_history_v3
(
    [id_asset_statistics_history] bigint IDENTITY(1,1),
    [id] nvarchar(255) NOT NULL,
    [asset_rank] bigint,
    [symbol] nvarchar(255),
    [asset_name] nvarchar(255),
    [supply] float,
    [maxSupply] float,
    [marketCapUsd] float,
    [volumeUsd24Hr] float,
    [priceUsd] float,
    [changePercent24Hr] float,
    [vwap24Hr] float,
    [explorer] nvarchar(255),
    [runtime_timestamp] datetime NOT NULL
)
WITH
(
    DISTRIBUTION = HASH([id]),
    CLUSTERED INDEX ([runtime_timestamp], [id])
);
