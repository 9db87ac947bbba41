-- The seed's table, in Synapse form. One deliberate change: nvarchar instead of varchar, so
-- non-Latin names survive (a varchar column stores them as '?'). The handler writes into an
-- existing seed table (varchar) just as well.
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
    DISTRIBUTION = ROUND_ROBIN,
    HEAP
);
