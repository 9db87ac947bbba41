//! Which database `init-warehouse` prepares: never `master` unless allowed, and a missing one
//! created where that is the login's to do (SQL Server), not on Azure, where a database is a
//! billed resource the template makes.

use super::failure::{InitCause, InitError, Step};
use super::{ENGINE_EDITION_SYNAPSE, catalog, engine_name, run, scalar_i32};
use crate::warehouse::sql::connection::{ConnectError, TdsManager};
use crate::warehouse::sql::literal;

/// What to change when rows would go into `master`.
pub const MASTER_FIX: &str = "name your own database: Database= in SQL_CONNECTION_STRING (or SQL_DATABASE with passwordless login), e.g. Database=coincap, which `handler init-warehouse` creates when it is missing; or pass --allow-master if master is meant";

/// Whether `database` is the server's system database (`None`: not known, so not master).
pub fn is_master(database: Option<&str>) -> bool {
    database.is_some_and(|name| name.eq_ignore_ascii_case("master"))
}

/// The login could not open the database the settings name: it may be missing (SQL Server says
/// 4060 at login; the development engine 911).
pub(super) fn is_missing_database(error: &ConnectError) -> bool {
    matches!(error, ConnectError::CannotOpenDatabase(_)) || error.number() == Some(911)
}

/// `CREATE DATABASE`, from `master`, where the engine is not Azure's.
pub(super) async fn create_database(
    manager: &TdsManager,
    database: &str,
    address: &str,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), InitError> {
    let step = format!("creating database {database}");
    let mut master = manager
        .for_database("master")
        .connect_client()
        .await
        .step(&step)?;
    let edition = scalar_i32(&mut master, catalog::ENGINE_EDITION_QUERY)
        .await
        .step(&step)?;
    if matches!(edition, Some(5) | Some(ENGINE_EDITION_SYNAPSE)) {
        return Err(InitError {
            step,
            error: Box::new(InitCause::Refused(format!(
                "database {database} does not exist on {address}, {}",
                engine_name(edition)
            ))),
            fix: Some(
                "create it with the deployment template or in the Azure portal (on Azure a database is a billed resource, which init-warehouse does not create), or name an existing one in the settings (Database= in SQL_CONNECTION_STRING, or SQL_DATABASE)".into(),
            ),
        });
    }
    let sql = format!("CREATE DATABASE {}", literal::identifier(database));
    if let Err(error) = run(&mut master, &sql).await {
        return Err(InitError {
            step,
            fix: Some(format!(
                "this login may not create databases: ask the server's administrator to run CREATE DATABASE {} (or to give the login the dbcreator role), then run init-warehouse again",
                literal::identifier(database)
            )),
            error: Box::new(error.into()),
        });
    }
    say(format!("Created database {database} on {address}."));
    Ok(())
}
