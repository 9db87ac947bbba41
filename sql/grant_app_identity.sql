-- Lets the Function App's managed identity write: run in the dedicated pool's database as an
-- Entra admin. `handler init-warehouse --app-identity <app name>` runs these (idempotently);
-- to run them by hand, replace <app-name> with the Function App's name.
CREATE USER [<app-name>] FROM EXTERNAL PROVIDER;
GRANT INSERT, SELECT ON SCHEMA::assets TO [<app-name>];
