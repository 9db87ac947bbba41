//! The warehouse choice (`warehouseKind`): an Azure SQL Database (the default) or a Synapse
//! dedicated pool, or none for a smoke test that says so. Each choice is "deployed" with the
//! evaluator: which resources it creates, what the app settings and outputs say, and that nothing
//! refers to a resource it does not create.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::arm::{self, Deployment};
use super::{
    ADMIN, SITE, app_settings, conditions, name, parameter_values, read, resources, template,
};

pub(super) const SQL_SERVER: &str = "Microsoft.Sql/servers";
pub(super) const SQL_DATABASE: &str = "Microsoft.Sql/servers/databases";
const SQL_FIREWALL: &str = "Microsoft.Sql/servers/firewallRules";
pub(super) const SQL_API: &str = "2023-08-01";
/// The smoke test that says so: no warehouse, rows to a file on the instance.
pub(super) const SMOKE_TEST: &str = "sqlite:/tmp/coincap.db";

pub(super) fn sql_database(extra: Value) -> Value {
    with(
        json!({"warehouseKind": "sqlDatabase", "sqlAdminObjectId": ADMIN}),
        extra,
    )
}

fn pool(extra: Value) -> Value {
    with(json!({"warehouseKind": "synapsePool"}), extra)
}

/// `parameters` with `extra` on top.
pub(super) fn with(mut parameters: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        parameters[key] = value.clone();
    }
    parameters
}

/// The resource types the template reads with `reference()`.
const REPORTING: [&str; 6] = [
    "Microsoft.Storage/storageAccounts",
    "Microsoft.EventHub/namespaces",
    "Microsoft.Synapse/workspaces",
    SQL_SERVER,
    "Microsoft.Insights/components",
    SITE,
];

/// What a resource of the template reports to `reference()` once deployed in `environment`.
fn reported(kind: &str, name: &str, environment: &Value) -> Value {
    match kind {
        "Microsoft.Storage/storageAccounts" => {
            json!({"primaryEndpoints": {"blob": format!("https://{name}.blob.core.windows.net/")}})
        }
        "Microsoft.EventHub/namespaces" => {
            json!({"serviceBusEndpoint": format!("https://{name}.servicebus.windows.net:443/")})
        }
        "Microsoft.Synapse/workspaces" => json!({
            "connectivityEndpoints": {
                "sql": format!("{name}.sql.azuresynapse.net"),
                "sqlOnDemand": format!("{name}-ondemand.sql.azuresynapse.net")
            },
            "identity": {"principalId": "workspace-principal"}
        }),
        SQL_SERVER => json!({
            "fullyQualifiedDomainName": format!(
                "{name}{}",
                environment["suffixes"]["sqlServerHostname"].as_str().unwrap()
            ),
            "identity": {"principalId": "server-principal"}
        }),
        "Microsoft.Insights/components" => json!({"ConnectionString": "InstrumentationKey=k"}),
        SITE => json!({"identity": {"principalId": "principal"}}),
        other => panic!("{other} reports nothing this test knows"),
    }
}

/// The app settings and outputs of one deployment. `reference()` answers only for resources
/// this deployment creates, so a setting that refers to a resource of the other choice fails
/// here as it would fail in ARM. Every resource's properties are evaluated too, skipped ones
/// included: ARM evaluates `reference()` in a resource "even if the resource isn't deployed"
/// ("Resource functions for ARM templates", reference).
pub(super) fn deploy(parameters: Value) -> Result<HashMap<String, String>, String> {
    let t = template();
    let (deployment, _) = deployment(&t, parameters)?;
    let mut out = HashMap::new();
    for (key, value) in app_settings(&t) {
        let v = deployment.value(&Value::String(value))?;
        out.insert(key, v.as_str().unwrap().to_owned());
    }
    for (key, output) in t["outputs"].as_object().unwrap() {
        let v = deployment.value(&output["value"])?;
        out.insert(format!("output {key}"), v.as_str().unwrap().to_owned());
    }
    Ok(out)
}

/// One deployment of `t` with `parameters` in the public cloud: `reference()` answering for the
/// resources it creates, every resource's properties evaluated (skipped ones too, as ARM does),
/// and the conditional resources it creates (type, name expression).
pub(super) fn deployment(
    t: &Value,
    parameters: Value,
) -> Result<(Deployment<'_>, Vec<(String, String)>), String> {
    let created: Vec<(String, String)> = conditions(t, parameters.clone())?
        .into_iter()
        .filter(|(_, _, created)| *created)
        .map(|(kind, name, _)| (kind, name))
        .collect();
    let mut deployment = Deployment::new(t, parameters);
    let environment = arm::public_cloud();
    for r in t["resources"].as_array().unwrap() {
        let kind = r["type"].as_str().unwrap();
        let unconditional = r.get("condition").is_none();
        let conditional_and_created = created.iter().any(|(k, n)| k == kind && n == name(r));
        let read_by_reference = REPORTING.contains(&kind);
        if read_by_reference && (unconditional || conditional_and_created) {
            let evaluated = deployment.value(&r["name"])?;
            let evaluated = evaluated.as_str().unwrap();
            deployment.references.insert(
                format!("{kind}/{evaluated}"),
                reported(kind, evaluated, &environment),
            );
        }
    }
    for r in t["resources"].as_array().unwrap() {
        deployment
            .value(&r["properties"])
            .map_err(|e| format!("{}: {e}", name(r)))?;
    }
    Ok((deployment, created))
}

/// The resources (type, name expression) one set of parameters creates, conditional ones only.
pub(super) fn created(parameters: Value) -> Vec<(String, String)> {
    conditions(&template(), parameters)
        .unwrap()
        .into_iter()
        .filter(|(_, _, created)| *created)
        .map(|(kind, name, _)| (kind, name))
        .collect()
}

pub(super) fn creates(created: &[(String, String)], kind: &str, name_part: &str) -> bool {
    created
        .iter()
        .any(|(k, n)| k == kind && n.contains(name_part))
}

/// The template's one resource of a type that is created under a condition.
pub(super) fn conditional<'a>(t: &'a Value, kind: &str, name_part: &str) -> &'a Value {
    let found: Vec<_> = resources(t, kind)
        .into_iter()
        .filter(|r| name(r).contains(name_part))
        .collect();
    assert_eq!(found.len(), 1, "{kind} {name_part}");
    found[0]
}

#[test]
fn one_parameter_chooses_the_warehouse_and_azure_sql_database_is_the_default() {
    let t = template();
    let kind = &t["parameters"]["warehouseKind"];
    assert_eq!(kind["type"], "string");
    assert_eq!(kind["defaultValue"], "sqlDatabase");
    assert_eq!(kind["allowedValues"], json!(["sqlDatabase", "synapsePool"]));
    let file = read("infra/azuredeploy.parameters.json");
    assert_eq!(file["parameters"]["warehouseKind"]["value"], "sqlDatabase");
    assert_eq!(t["parameters"]["warehouse"]["defaultValue"], "sql");
}

#[test]
fn each_choice_creates_its_own_resources_and_none_of_the_other() {
    let none = created(json!({"warehouse": SMOKE_TEST}));
    assert!(
        none.iter()
            .all(|(k, _)| !k.starts_with("Microsoft.Sql/") && !k.starts_with("Microsoft.Synapse/")),
        "a smoke test that says so creates no warehouse: {none:?}"
    );
    let defaults = created(json!({"sqlAdminObjectId": ADMIN}));
    assert!(
        creates(&defaults, SQL_DATABASE, ""),
        "the defaults create a database: {defaults:?}"
    );

    let made = created(pool(
        json!({"deploySynapse": true, "sqlAdminObjectId": ADMIN}),
    ));
    assert!(creates(&made, "Microsoft.Synapse/workspaces/sqlPools", ""));
    assert!(made.iter().all(|(k, _)| !k.starts_with("Microsoft.Sql/")));
    let refused = conditions(&template(), pool(json!({}))).unwrap_err();
    assert!(
        refused.contains("warehouseKind=synapsePool needs deploySynapse=true (a new dedicated pool) or existingSynapseServer and existingSynapseDatabase"),
        "a pool of nowhere is refused, not replaced by a file: {refused}"
    );

    let sql = created(sql_database(json!({})));
    assert!(creates(&sql, SQL_SERVER, "sqlServerName"));
    assert!(creates(&sql, SQL_DATABASE, "sqlDatabaseName"));
    assert!(creates(&sql, SQL_FIREWALL, "AllowAllWindowsAzureIps"));
    assert!(!creates(&sql, SQL_FIREWALL, "client"), "no IP given");
    assert!(
        sql.iter()
            .all(|(k, _)| !k.starts_with("Microsoft.Synapse/")),
        "{sql:?}"
    );

    let with_ip = created(sql_database(json!({"clientIpAddress": "203.0.113.7"})));
    assert!(creates(&with_ip, SQL_FIREWALL, "client"));

    // Switching a deployment that made a pool: the one parameter wins, no second warehouse.
    let switched = created(sql_database(json!({"deploySynapse": true})));
    assert!(creates(&switched, SQL_DATABASE, ""));
    assert!(
        switched
            .iter()
            .all(|(k, _)| !k.starts_with("Microsoft.Synapse/")),
        "{switched:?}"
    );

    // Every Azure SQL resource hangs on the same condition.
    for r in template()["resources"].as_array().unwrap() {
        if r["type"].as_str().unwrap().starts_with("Microsoft.Sql/") {
            assert!(
                r["condition"]
                    .as_str()
                    .unwrap()
                    .contains("variables('createSqlDatabase')"),
                "{}",
                name(r)
            );
        }
    }
}

#[test]
fn an_azure_sql_database_without_an_entra_administrator_is_refused() {
    let t = template();
    for parameters in [
        json!({"warehouseKind": "sqlDatabase"}),
        json!({"warehouseKind": "sqlDatabase", "sqlAdminObjectId": ""}),
    ] {
        let refused = conditions(&t, parameters).unwrap_err();
        assert!(
            refused.contains("warehouseKind=sqlDatabase needs sqlAdminObjectId"),
            "ARM shows this: {refused}"
        );
    }
}

#[test]
fn each_choice_writes_the_settings_and_outputs_of_its_warehouse_and_refers_to_nothing_else() {
    let pool_made = deploy(pool(
        json!({"deploySynapse": true, "sqlAdminObjectId": ADMIN}),
    ))
    .unwrap();
    assert_eq!(pool_made["WAREHOUSE"], "sql");
    assert_eq!(
        pool_made["SQL_SERVER"],
        "synw-coincap-tok3n.sql.azuresynapse.net"
    );
    assert_eq!(pool_made["SQL_DATABASE"], "coincap");
    assert_eq!(
        pool_made["SQL_AUTO_PAUSE_DELAY"], "",
        "a pool does not pause by itself"
    );

    let existing = deploy(pool(json!({
        "existingSynapseServer": "mine.sql.azuresynapse.net",
        "existingSynapseDatabase": "dw"
    })))
    .unwrap();
    assert_eq!(existing["WAREHOUSE"], "sql");
    assert_eq!(existing["SQL_SERVER"], "mine.sql.azuresynapse.net");
    assert_eq!(existing["SQL_DATABASE"], "dw");

    let sql = deploy(sql_database(json!({}))).unwrap();
    assert_eq!(sql["WAREHOUSE"], "sql");
    assert_eq!(sql["SQL_SERVER"], "sql-coincap-tok3n.database.windows.net");
    assert_eq!(sql["SQL_DATABASE"], "coincap");
    assert_eq!(sql["output sqlServer"], sql["SQL_SERVER"]);
    assert_eq!(sql["output sqlDatabase"], "coincap");
    assert_eq!(
        sql["output initWarehouseCommand"],
        "SQL_SERVER=sql-coincap-tok3n.database.windows.net SQL_DATABASE=coincap cargo run --release -- init-warehouse --app-identity coincap-tok3n"
    );

    // A pool's parameters left in place do not leak into the Azure SQL choice.
    let switched = deploy(sql_database(json!({
        "deploySynapse": true,
        "existingSynapseServer": "mine.sql.azuresynapse.net"
    })))
    .unwrap();
    assert_eq!(switched["SQL_SERVER"], sql["SQL_SERVER"]);
    assert_eq!(switched["SQL_DATABASE"], "coincap");

    let smoke = deploy(json!({"warehouse": SMOKE_TEST, "deploySynapse": true})).unwrap();
    assert_eq!(smoke["WAREHOUSE"], SMOKE_TEST);
    assert_eq!(smoke["SQL_SERVER"], "");
    assert_eq!(smoke["SQL_DATABASE"], "");

    let mut file = Value::Object(parameter_values());
    file["sqlAdminObjectId"] = json!(ADMIN);
    let learner = deploy(file).unwrap();
    assert_eq!(
        learner["SQL_SERVER"], sql["SQL_SERVER"],
        "the parameters file plus the administrator deploys Azure SQL"
    );
    assert_eq!(learner["WAREHOUSE"], "sql");
}

#[test]
fn the_server_accepts_only_microsoft_entra_sign_ins_with_the_pool_s_administrator() {
    let t = template();
    let server = conditional(&t, SQL_SERVER, "sqlServerName");
    assert_eq!(server["apiVersion"], SQL_API);
    let properties = &server["properties"];
    assert!(properties.get("administratorLogin").is_none());
    assert!(properties.get("administratorLoginPassword").is_none());
    assert_eq!(properties["minimalTlsVersion"], "1.2");
    let admin = &properties["administrators"];
    assert_eq!(admin["administratorType"], "ActiveDirectory");
    assert_eq!(admin["azureADOnlyAuthentication"], true);
    assert_eq!(admin["sid"], "[variables('adminObjectId')]");
    assert_eq!(
        admin["principalType"],
        "[parameters('sqlAdminPrincipalType')]"
    );
    assert_eq!(admin["tenantId"], "[subscription().tenantId]");
    let pool_admin =
        &conditional(&t, "Microsoft.Synapse/workspaces/administrators", "")["properties"];
    assert_eq!(
        admin["login"], pool_admin["login"],
        "the same administrator"
    );
}

#[test]
fn the_function_app_reaches_the_server_through_the_azure_services_rule() {
    let t = template();
    let rule = conditional(&t, SQL_FIREWALL, "AllowAllWindowsAzureIps");
    assert_eq!(
        rule["properties"],
        json!({"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"})
    );
    let client = conditional(&t, SQL_FIREWALL, "client");
    assert!(
        client["condition"]
            .as_str()
            .unwrap()
            .contains("parameters('clientIpAddress')")
    );
    for r in [rule, client, conditional(&t, SQL_DATABASE, "")] {
        assert_eq!(
            r["dependsOn"],
            json!(["[resourceId('Microsoft.Sql/servers', variables('sqlServerName'))]"]),
            "{}",
            name(r)
        );
    }
}
