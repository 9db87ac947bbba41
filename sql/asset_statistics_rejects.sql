-- Poison events: the raw body, why it could not become a row, and where it sat in Event Hubs.
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
    [enqueued_time] datetime2(3)
)
WITH
(
    DISTRIBUTION = ROUND_ROBIN,
    HEAP
);
