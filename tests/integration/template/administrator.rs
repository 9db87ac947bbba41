//! The administrator parameters: one Microsoft Entra principal for the Azure SQL server and the
//! dedicated pool alike, named `sqlAdmin*`; the earlier `synapseAdmin*` names still work for one
//! release.

use serde_json::{Value, json};

use super::arm::Deployment;
use super::warehouse::{SQL_SERVER, conditional};
use super::{ADMIN, template};

/// The administrator the server and the pool are given, evaluated for `parameters`.
fn administrator(parameters: Value) -> Result<(Value, Value), String> {
    let t = template();
    let deployment = Deployment::new(&t, parameters);
    let admin = &conditional(&t, SQL_SERVER, "sqlServerName")["properties"]["administrators"];
    Ok((
        deployment.value(&admin["sid"])?,
        deployment.value(&admin["login"])?,
    ))
}

#[test]
fn the_administrator_parameters_earlier_names_still_work_for_one_release() {
    const OTHER: &str = "00000000-0000-0000-0000-0000000000b2";
    let new = administrator(json!({"sqlAdminObjectId": ADMIN, "sqlAdminLogin": "me@contoso.com"}));
    let old = administrator(
        json!({"synapseAdminObjectId": ADMIN, "synapseAdminLogin": "me@contoso.com"}),
    );
    assert_eq!(new, Ok((json!(ADMIN), json!("me@contoso.com"))));
    assert_eq!(old, new, "the earlier names mean the same");
    assert_eq!(
        administrator(json!({"sqlAdminObjectId": ADMIN, "synapseAdminObjectId": ADMIN})),
        Ok((json!(ADMIN), json!(ADMIN))),
        "both names with one value: that value (the login defaults to the object id)"
    );
    let refused = administrator(json!({"sqlAdminObjectId": ADMIN, "synapseAdminObjectId": OTHER}))
        .unwrap_err();
    assert!(
        refused.contains("sqlAdminObjectId and its earlier name synapseAdminObjectId are both set, to different values"),
        "{refused}"
    );
    let t = template();
    for old in ["synapseAdminObjectId", "synapseAdminLogin"] {
        let description = t["parameters"][old]["metadata"]["description"]
            .as_str()
            .unwrap();
        assert!(
            description.starts_with("Deprecated"),
            "{old}: {description}"
        );
        assert!(
            description.contains("removed in the next"),
            "{old}: {description}"
        );
    }
}

/// Property names of `Microsoft.Sql/servers/administrators` in API version 2023-08-01
/// (Azure/azure-resource-manager-schemas, schemas/2023-08-01/Microsoft.Sql.json,
/// AdministratorProperties): no `principalType` there, unlike the server's create-time property.
const ADMINISTRATOR_PROPERTIES_2023_08_01: [&str; 4] =
    ["administratorType", "login", "sid", "tenantId"];

#[test]
fn the_administrator_follows_every_deployment_through_the_documented_child_resources() {
    let t = template();
    let server = conditional(&t, SQL_SERVER, "sqlServerName");
    let description = server["comments"].as_str().unwrap();
    assert!(
        description.contains("can only be used at server create time"),
        "why the child resources: {description}"
    );
    let child = conditional(
        &t,
        "Microsoft.Sql/servers/administrators",
        "ActiveDirectory",
    );
    assert_eq!(child["condition"], server["condition"]);
    assert_eq!(child["apiVersion"], "2023-08-01");
    assert!(super::name(child).ends_with("/ActiveDirectory', variables('sqlServerName'))]"));
    let properties = child["properties"].as_object().unwrap();
    for key in properties.keys() {
        assert!(
            ADMINISTRATOR_PROPERTIES_2023_08_01.contains(&key.as_str()),
            "{key} is not a property of the 2023-08-01 schema"
        );
    }
    let create_time = &server["properties"]["administrators"];
    for key in ["administratorType", "login", "sid", "tenantId"] {
        assert_eq!(child["properties"][key], create_time[key], "{key}");
    }
    let deployment = Deployment::new(
        &t,
        json!({"sqlAdminObjectId": ADMIN, "sqlAdminLogin": "me@contoso.com"}),
    );
    assert_eq!(
        deployment.value(&child["properties"]["sid"]).unwrap(),
        ADMIN
    );

    let entra_only = conditional(
        &t,
        "Microsoft.Sql/servers/azureADOnlyAuthentications",
        "Default",
    );
    assert_eq!(entra_only["condition"], server["condition"]);
    assert_eq!(
        entra_only["properties"],
        json!({"azureADOnlyAuthentication": true})
    );
    assert_eq!(
        entra_only["dependsOn"],
        json!([
            "[resourceId('Microsoft.Sql/servers/administrators', variables('sqlServerName'), 'ActiveDirectory')]"
        ]),
        "Entra-only needs its administrator first"
    );
}

#[test]
fn the_server_has_its_own_identity_for_an_application_administrator_to_create_users() {
    // "Microsoft Entra service principals with Azure SQL": creating a user on behalf of an
    // application needs the server's identity with Directory Readers (or the Graph permissions),
    // or it fails (error 33134 on the current page; "Server identity is not configured").
    let t = template();
    let server = conditional(&t, SQL_SERVER, "sqlServerName");
    assert_eq!(server["identity"], json!({"type": "SystemAssigned"}));
    let sql = super::warehouse::deploy(super::warehouse::sql_database(json!({}))).unwrap();
    assert_eq!(sql["output sqlServerPrincipalId"], "server-principal");
    let smoke =
        super::warehouse::deploy(json!({"warehouse": super::warehouse::SMOKE_TEST})).unwrap();
    assert_eq!(smoke["output sqlServerPrincipalId"], "");
    let principal = t["parameters"]["sqlAdminPrincipalType"]["metadata"]["description"]
        .as_str()
        .unwrap();
    assert!(
        principal.contains("33134") && principal.contains("sqlServerPrincipalId"),
        "{principal}"
    );
}
