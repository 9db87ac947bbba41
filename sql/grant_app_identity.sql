-- Lets the Function App's managed identity write: run in the dedicated pool's database as an
-- Entra admin. `handler init-warehouse --app-identity <app name>` runs these (idempotently);
-- to run them by hand, replace <app-name> with the Function App's name.
-- UPDATE on the writer lock table: each batch's transaction starts by updating its one row
-- (sql/asset_statistics_writer_lock.sql); nothing else is updated.
CREATE USER [<app-name>] FROM EXTERNAL PROVIDER;
GRANT INSERT, SELECT ON SCHEMA::assets TO [<app-name>];
GRANT UPDATE ON OBJECT::assets.asset_statistics_writer_lock TO [<app-name>];
