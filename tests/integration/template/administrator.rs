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
